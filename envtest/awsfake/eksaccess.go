package awsfake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ekslink/ekslink/envtest/awstest"
)

// EKSCluster is an EKS cluster (not a registered one) the EKS endpoint describes and keeps
// access entries for.
type EKSCluster struct {
	// Name is the cluster name.
	Name string
	// Endpoint is the API server URL DescribeCluster reports (for example an envtest API server).
	Endpoint string
	// CAPEM is the API server's CA; DescribeCluster reports it base64-encoded.
	CAPEM []byte
	// AuthenticationMode is accessConfig.authenticationMode: CONFIG_MAP, API_AND_CONFIG_MAP or
	// API. Empty omits accessConfig, as EKS does for clusters created before access entries.
	AuthenticationMode string
}

// AccessEntry is an access entry of a fake EKS cluster and its associated policies.
type AccessEntry struct {
	// PrincipalARN, Username, Type and Groups are as CreateAccessEntry stored them.
	PrincipalARN, Username, Type string
	Groups                       []string
	// Policies maps each associated policy ARN to its scope: nil for the cluster, else namespaces.
	Policies map[string][]string
}

type eksCluster struct {
	EKSCluster
	arn     string
	created time.Time
	entries map[string]*AccessEntry
}

// reservedPrefixes are the prefixes EKS refuses in an access entry's username and groups
// ("Create access entries" in the Amazon EKS User Guide).
var reservedPrefixes = []string{"system:", "eks:", "aws:", "amazon:", "iam:"}

// AddCluster adds an EKS cluster that DescribeCluster reports ACTIVE and the access-entry
// operations work on.
func (s *Set) AddCluster(c EKSCluster) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eksClusters[c.Name] = &eksCluster{
		EKSCluster: c,
		arn:        fmt.Sprintf("arn:aws:eks:%s:%s:cluster/%s", s.opts.Region, s.opts.AccountID, c.Name),
		created:    s.opts.Now().UTC(),
		entries:    map[string]*AccessEntry{},
	}
}

// AccessEntries returns a copy of the cluster's access entries, sorted by principal.
func (s *Set) AccessEntries(cluster string) []AccessEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.eksClusters[cluster]
	if !ok {
		return nil
	}
	var out []AccessEntry
	for _, e := range c.entries {
		cp := *e
		cp.Groups = slices.Clone(e.Groups)
		cp.Policies = map[string][]string{}
		for k, v := range e.Policies {
			cp.Policies[k] = slices.Clone(v)
		}
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PrincipalARN < out[j].PrincipalARN })
	return out
}

func (s *Set) registerEKSAccess() {
	s.EKS.Handle("POST /clusters/{name}/access-entries", s.eksOp("CreateAccessEntry", s.createAccessEntry))
	s.EKS.Handle("GET /clusters/{name}/access-entries", s.eksOp("ListAccessEntries", s.listAccessEntries))
	s.EKS.Handle("GET /clusters/{name}/access-entries/{principal}", s.eksOp("DescribeAccessEntry", s.describeAccessEntry))
	s.EKS.Handle("DELETE /clusters/{name}/access-entries/{principal}", s.eksOp("DeleteAccessEntry", s.deleteAccessEntry))
	s.EKS.Handle("POST /clusters/{name}/access-entries/{principal}/access-policies", s.eksOp("AssociateAccessPolicy", s.associateAccessPolicy))
	s.EKS.Handle("GET /clusters/{name}/access-entries/{principal}/access-policies", s.eksOp("ListAssociatedAccessPolicies", s.listAssociatedAccessPolicies))
	s.EKS.Handle("DELETE /clusters/{name}/access-entries/{principal}/access-policies/{policy}", s.eksOp("DisassociateAccessPolicy", s.disassociateAccessPolicy))
}

// eksOp counts the call and answers a fault queued with Fail (s.op), or finds the cluster (404
// when missing) and runs h locked.
func (s *Set) eksOp(op string, h func(w http.ResponseWriter, r *http.Request, c *eksCluster)) http.HandlerFunc {
	return s.op(s.EKS, op, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		c, ok := s.eksClusters[r.PathValue("name")]
		if !ok {
			awstest.WriteRESTJSONError(w, 404, "ResourceNotFoundException", "No cluster found for name: "+r.PathValue("name")+".")
			return
		}
		h(w, r, c)
	})
}

func (c *eksCluster) accessEntriesAllowed(w http.ResponseWriter) bool {
	if c.AuthenticationMode == "API" || c.AuthenticationMode == "API_AND_CONFIG_MAP" {
		return true
	}
	awstest.WriteRESTJSONError(w, 400, "InvalidRequestException", "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this operation.")
	return false
}

func (c *eksCluster) entry(w http.ResponseWriter, principal string) (*AccessEntry, bool) {
	e, ok := c.entries[principal]
	if !ok {
		awstest.WriteRESTJSONError(w, 404, "ResourceNotFoundException", fmt.Sprintf("The specified principalArn could not be found. You can view your available access entries with 'list-access-entries'. (principal %s)", principal))
	}
	return e, ok
}

func (c *eksCluster) entryJSON(e *AccessEntry) map[string]any {
	groups := e.Groups
	if groups == nil {
		groups = []string{}
	}
	return map[string]any{
		"clusterName": c.Name, "principalArn": e.PrincipalARN, "kubernetesGroups": groups,
		"accessEntryArn": fmt.Sprintf("%s/access-entry/%s", strings.Replace(c.arn, ":cluster/", ":access-entry/", 1), base64.RawURLEncoding.EncodeToString([]byte(e.PrincipalARN))),
		"createdAt":      float64(c.created.Unix()), "modifiedAt": float64(c.created.Unix()),
		"tags": map[string]string{}, "username": e.Username, "type": e.Type,
	}
}

func reserved(s string) bool {
	return slices.ContainsFunc(reservedPrefixes, func(p string) bool { return strings.HasPrefix(s, p) })
}

func (s *Set) createAccessEntry(w http.ResponseWriter, r *http.Request, c *eksCluster) {
	if !c.accessEntriesAllowed(w) {
		return
	}
	var in struct {
		PrincipalARN     string   `json:"principalArn"`
		Username         string   `json:"username"`
		KubernetesGroups []string `json:"kubernetesGroups"`
		Type             string   `json:"type"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.PrincipalARN == "" {
		awstest.WriteRESTJSONError(w, 400, "InvalidParameterException", "principalArn is required")
		return
	}
	if in.Type == "" {
		in.Type = "STANDARD"
	}
	if _, ok := c.entries[in.PrincipalARN]; ok {
		awstest.WriteRESTJSONError(w, 409, "ResourceInUseException", "The specified access entry resource is already in use on this cluster.")
		return
	}
	switch {
	case strings.Contains(in.PrincipalARN, ":assumed-role/"):
		awstest.WriteRESTJSONError(w, 400, "InvalidParameterException", "The principalArn can't be an STS session ARN.")
		return
	case in.Type != "STANDARD" && (in.Username != "" || len(in.KubernetesGroups) > 0):
		awstest.WriteRESTJSONError(w, 400, "InvalidParameterException", "username and kubernetesGroups can't be specified for access entries of type "+in.Type+".")
		return
	case in.Type != "STANDARD" && !strings.Contains(in.PrincipalARN, ":role/"):
		awstest.WriteRESTJSONError(w, 400, "InvalidParameterException", "Access entries of type "+in.Type+" need an IAM role ARN.")
		return
	case reserved(in.Username) || slices.ContainsFunc(in.KubernetesGroups, reserved):
		awstest.WriteRESTJSONError(w, 400, "InvalidParameterException", "username and kubernetesGroups can't start with system:, eks:, aws:, amazon: or iam:.")
		return
	}
	e := &AccessEntry{PrincipalARN: in.PrincipalARN, Username: in.Username, Type: in.Type, Groups: in.KubernetesGroups, Policies: map[string][]string{}}
	if e.Username == "" {
		// What EKS picks: the ARN for users, a session-qualified name for roles.
		e.Username = in.PrincipalARN
		if strings.Contains(in.PrincipalARN, ":role/") {
			e.Username = strings.Replace(in.PrincipalARN, ":iam:", ":sts:", 1) + "/{{SessionName}}"
			e.Username = strings.Replace(e.Username, ":role/", ":assumed-role/", 1)
		}
		if in.Type != "STANDARD" {
			e.Username = "system:node:{{EC2PrivateDNSName}}"
		}
	}
	c.entries[in.PrincipalARN] = e
	awstest.WriteJSON(w, "application/json", map[string]any{"accessEntry": c.entryJSON(e)})
}

func page(items []string, r *http.Request) (out []string, next string) {
	start, _ := strconv.Atoi(r.URL.Query().Get("nextToken"))
	max, _ := strconv.Atoi(r.URL.Query().Get("maxResults"))
	if max <= 0 {
		max = 100
	}
	if start > len(items) {
		start = len(items)
	}
	end := min(start+max, len(items))
	if end < len(items) {
		next = strconv.Itoa(end)
	}
	return items[start:end], next
}

func (s *Set) listAccessEntries(w http.ResponseWriter, r *http.Request, c *eksCluster) {
	if !c.accessEntriesAllowed(w) {
		return
	}
	var arns []string
	for k := range c.entries {
		arns = append(arns, k)
	}
	slices.Sort(arns)
	items, next := page(arns, r)
	out := map[string]any{"accessEntries": append([]string{}, items...)}
	if next != "" {
		out["nextToken"] = next
	}
	awstest.WriteJSON(w, "application/json", out)
}

func (s *Set) describeAccessEntry(w http.ResponseWriter, r *http.Request, c *eksCluster) {
	if e, ok := c.entry(w, r.PathValue("principal")); ok {
		awstest.WriteJSON(w, "application/json", map[string]any{"accessEntry": c.entryJSON(e)})
	}
}

func (s *Set) deleteAccessEntry(w http.ResponseWriter, r *http.Request, c *eksCluster) {
	if _, ok := c.entry(w, r.PathValue("principal")); ok {
		delete(c.entries, r.PathValue("principal"))
		awstest.WriteJSON(w, "application/json", map[string]any{})
	}
}

func scopeJSON(ns []string) map[string]any {
	if ns == nil {
		return map[string]any{"type": "cluster", "namespaces": []string{}}
	}
	return map[string]any{"type": "namespace", "namespaces": ns}
}

func (s *Set) associateAccessPolicy(w http.ResponseWriter, r *http.Request, c *eksCluster) {
	e, ok := c.entry(w, r.PathValue("principal"))
	if !ok {
		return
	}
	var in struct {
		PolicyARN   string `json:"policyArn"`
		AccessScope struct {
			Type       string   `json:"type"`
			Namespaces []string `json:"namespaces"`
		} `json:"accessScope"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || !strings.Contains(in.PolicyARN, ":cluster-access-policy/") {
		awstest.WriteRESTJSONError(w, 400, "InvalidParameterException", "policyArn must be an EKS cluster access policy")
		return
	}
	var ns []string
	switch in.AccessScope.Type {
	case "cluster":
	case "namespace":
		if len(in.AccessScope.Namespaces) == 0 {
			awstest.WriteRESTJSONError(w, 400, "InvalidParameterException", "accessScope of type namespace needs namespaces")
			return
		}
		ns = in.AccessScope.Namespaces
	default:
		awstest.WriteRESTJSONError(w, 400, "InvalidParameterException", "accessScope.type must be cluster or namespace")
		return
	}
	if e.Type != "STANDARD" {
		awstest.WriteRESTJSONError(w, 400, "InvalidParameterException", "Access policies can only be associated with access entries of type STANDARD.")
		return
	}
	e.Policies[in.PolicyARN] = ns
	awstest.WriteJSON(w, "application/json", map[string]any{"clusterName": c.Name, "principalArn": e.PrincipalARN,
		"associatedAccessPolicy": map[string]any{"policyArn": in.PolicyARN, "accessScope": scopeJSON(ns), "associatedAt": float64(c.created.Unix()), "modifiedAt": float64(c.created.Unix())}})
}

func (s *Set) listAssociatedAccessPolicies(w http.ResponseWriter, r *http.Request, c *eksCluster) {
	e, ok := c.entry(w, r.PathValue("principal"))
	if !ok {
		return
	}
	var arns []string
	for k := range e.Policies {
		arns = append(arns, k)
	}
	slices.Sort(arns)
	items, next := page(arns, r)
	list := []map[string]any{}
	for _, p := range items {
		list = append(list, map[string]any{"policyArn": p, "accessScope": scopeJSON(e.Policies[p]), "associatedAt": float64(c.created.Unix()), "modifiedAt": float64(c.created.Unix())})
	}
	out := map[string]any{"clusterName": c.Name, "principalArn": e.PrincipalARN, "associatedAccessPolicies": list}
	if next != "" {
		out["nextToken"] = next
	}
	awstest.WriteJSON(w, "application/json", out)
}

func (s *Set) disassociateAccessPolicy(w http.ResponseWriter, r *http.Request, c *eksCluster) {
	e, ok := c.entry(w, r.PathValue("principal"))
	if !ok {
		return
	}
	if _, ok := e.Policies[r.PathValue("policy")]; !ok {
		awstest.WriteRESTJSONError(w, 404, "ResourceNotFoundException", "The specified policy is not associated with the access entry.")
		return
	}
	delete(e.Policies, r.PathValue("policy"))
	awstest.WriteJSON(w, "application/json", map[string]any{})
}

// describeEKSCluster answers DescribeCluster for a cluster added with AddCluster; the caller holds s.mu.
func (s *Set) describeEKSCluster(w http.ResponseWriter, c *eksCluster) {
	out := map[string]any{
		"name": c.Name, "arn": c.arn, "status": "ACTIVE", "createdAt": float64(c.created.Unix()),
		"endpoint": c.Endpoint, "certificateAuthority": map[string]any{"data": base64.StdEncoding.EncodeToString(c.CAPEM)},
		"version": "1.31", "platformVersion": "eks.1", "tags": map[string]string{},
	}
	if c.AuthenticationMode != "" {
		out["accessConfig"] = map[string]any{"authenticationMode": c.AuthenticationMode}
	}
	awstest.WriteJSON(w, "application/json", map[string]any{"cluster": out})
}
