package awsfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/google/uuid"

	"github.com/ekslink/ekslink/envtest/awstest"
)

type cluster struct {
	name, arn, provider, roleARN string
	tags                         map[string]string
	created                      time.Time
	activation                   *activation
	deleting                     bool
}

type activation struct {
	id, code string
	expiry   time.Time
	cluster  string
}

// clusterNameRE is EKS's rule for cluster names.
var clusterNameRE = regexp.MustCompile(`^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$`)

var connectorProviders = map[string]bool{
	"EKS_ANYWHERE": true, "ANTHOS": true, "GKE": true, "AKS": true, "OPENSHIFT": true, "TANZU": true,
	"RANCHER": true, "EC2": true, "OTHER": true,
}

func (s *Set) registerEKS() {
	s.EKS.Handle("POST /cluster-registrations", s.op(s.EKS, "RegisterCluster", s.registerCluster))
	s.EKS.Handle("DELETE /cluster-registrations/{name}", s.op(s.EKS, "DeregisterCluster", s.deregisterCluster))
	s.EKS.Handle("GET /clusters/{name}", s.op(s.EKS, "DescribeCluster", s.describeCluster))
}

func (s *Set) registerCluster(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name               string `json:"name"`
		ClientRequestToken string `json:"clientRequestToken"`
		ConnectorConfig    *struct {
			Provider string `json:"provider"`
			RoleARN  string `json:"roleArn"`
		} `json:"connectorConfig"`
		Tags map[string]string `json:"tags"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		awstest.WriteRESTJSONError(w, 400, "InvalidParameterException", "malformed request body: "+err.Error())
		return
	}
	switch {
	case !clusterNameRE.MatchString(in.Name):
		awstest.WriteRESTJSONError(w, 400, "InvalidParameterException", fmt.Sprintf("invalid cluster name %q", in.Name))
		return
	case in.ConnectorConfig == nil || in.ConnectorConfig.RoleARN == "":
		awstest.WriteRESTJSONError(w, 400, "InvalidParameterException", "connectorConfig.roleArn is required")
		return
	case !connectorProviders[in.ConnectorConfig.Provider]:
		awstest.WriteRESTJSONError(w, 400, "InvalidParameterException", fmt.Sprintf("invalid connectorConfig.provider %q", in.ConnectorConfig.Provider))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clusters[in.Name]; ok {
		awstest.WriteRESTJSONError(w, 409, "ResourceInUseException", fmt.Sprintf("Cluster already exists with name: %s", c.name))
		return
	}
	now := s.opts.Now().UTC()
	act := &activation{
		id:      uuid.NewString(),
		code:    randomHex(10) + "ABCDEFGHIJ",
		expiry:  now.Add(72 * time.Hour),
		cluster: in.Name,
	}
	c := &cluster{
		name:       in.Name,
		arn:        fmt.Sprintf("arn:aws:eks:%s:%s:cluster/%s", s.opts.Region, s.opts.AccountID, in.Name),
		provider:   in.ConnectorConfig.Provider,
		roleARN:    in.ConnectorConfig.RoleARN,
		tags:       in.Tags,
		created:    now,
		activation: act,
	}
	s.clusters[in.Name] = c
	s.activations[act.id] = act
	awstest.WriteJSON(w, "application/json", map[string]any{"cluster": s.clusterJSON(c, true)})
}

func (s *Set) deregisterCluster(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clusters[name]
	if !ok {
		awstest.WriteRESTJSONError(w, 404, "ResourceNotFoundException", "No cluster found for name: "+name+".")
		return
	}
	c.deleting = true
	out := s.clusterJSON(c, false)
	delete(s.clusters, name)
	delete(s.activations, c.activation.id)
	awstest.WriteJSON(w, "application/json", map[string]any{"cluster": out})
}

func (s *Set) describeCluster(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clusters[name]
	if !ok {
		if ec, ok := s.eksClusters[name]; ok {
			s.describeEKSCluster(w, ec)
			return
		}
		awstest.WriteRESTJSONError(w, 404, "ResourceNotFoundException", "No cluster found for name: "+name+".")
		return
	}
	awstest.WriteJSON(w, "application/json", map[string]any{"cluster": s.clusterJSON(c, false)})
}

// clusterJSON renders a registered cluster; the activation code appears only in the
// RegisterCluster answer, as in EKS.
func (s *Set) clusterJSON(c *cluster, withCode bool) map[string]any {
	status := "PENDING"
	for _, in := range s.instances {
		if in.ActivationID == c.activation.id {
			status = "ACTIVE"
		}
	}
	if c.deleting {
		status = "DELETING"
	}
	cc := map[string]any{
		"activationId":     c.activation.id,
		"activationExpiry": float64(c.activation.expiry.Unix()),
		"provider":         c.provider,
		"roleArn":          c.roleARN,
	}
	if withCode {
		cc["activationCode"] = c.activation.code
	}
	out := map[string]any{
		"name":            c.name,
		"arn":             c.arn,
		"createdAt":       float64(c.created.Unix()),
		"status":          status,
		"connectorConfig": cc,
		"tags":            c.tags,
	}
	if c.tags == nil {
		out["tags"] = map[string]string{}
	}
	return out
}
