package awsfake

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/ekslink/ekslink/envtest/awstest"
)

// The managed-instance operations of SSM (awsJson1.1, SigV4-signed): DescribeInstanceInformation
// with the Filters list (InstanceIds, ActivationIds, PingStatus, ResourceType keys, as the SSM API
// reference's InstanceInformationStringFilter names them; ids that match nothing are simply not
// listed) and DeregisterManagedInstance (an unknown id is InvalidInstanceId, as SSM answers).
func (s *Set) registerSSMInstances() {
	s.SSM.HandleTarget("AmazonSSM.DescribeInstanceInformation", s.op(s.SSM, "DescribeInstanceInformation", s.signedOnly(s.describeInstanceInformation)))
	s.SSM.HandleTarget("AmazonSSM.DeregisterManagedInstance", s.op(s.SSM, "DeregisterManagedInstance", s.signedOnly(s.deregisterManagedInstance)))
}

// signedOnly refuses anonymous calls: the SSM endpoint accepts them for RegisterManagedInstance only.
func (s *Set) signedOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !awstest.Signed(r) {
			awstest.WriteJSONError(w, 400, "MissingAuthenticationTokenException", "Missing Authentication Token")
			return
		}
		h(w, r)
	}
}

func (s *Set) describeInstanceInformation(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Filters []struct {
			Key    string   `json:"Key"`
			Values []string `json:"Values"`
		} `json:"Filters"`
		MaxResults int    `json:"MaxResults"`
		NextToken  string `json:"NextToken"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		awstest.WriteJSONError(w, 400, "SerializationException", err.Error())
		return
	}
	now := s.opts.Now()
	keys := map[string]func(Instance) string{
		"InstanceIds":   func(i Instance) string { return i.InstanceID },
		"ActivationIds": func(i Instance) string { return i.ActivationID },
		"PingStatus":    func(i Instance) string { return i.pingStatus(now) },
		"ResourceType":  func(Instance) string { return "ManagedInstance" },
	}
	for _, f := range in.Filters {
		if keys[f.Key] == nil {
			awstest.WriteJSONError(w, 400, "InvalidFilterKey", "The specified key is not valid: "+f.Key)
			return
		}
		if len(f.Values) == 0 {
			awstest.WriteJSONError(w, 400, "InvalidInstanceInformationFilterValue", "The filter "+f.Key+" has no values")
			return
		}
	}
	if in.MaxResults == 0 {
		in.MaxResults = 50
	}
	start := 0
	if in.NextToken != "" {
		n, err := strconv.Atoi(in.NextToken)
		if err != nil {
			awstest.WriteJSONError(w, 400, "InvalidNextToken", "The specified token is not valid.")
			return
		}
		start = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var match []map[string]any
	for _, inst := range s.instances {
		ok := true
		for _, f := range in.Filters {
			ok = ok && slices.Contains(f.Values, keys[f.Key](inst))
		}
		if !ok {
			continue
		}
		m := map[string]any{
			"InstanceId": inst.InstanceID, "ActivationId": inst.ActivationID, "PingStatus": inst.pingStatus(now),
			"ResourceType": "ManagedInstance", "RegistrationDate": float64(inst.Registered.Unix()), "PlatformType": "Linux",
			"IsLatestVersion": false,
		}
		if !inst.LastPing.IsZero() {
			m["LastPingDateTime"] = float64(inst.LastPing.Unix())
			m["AgentVersion"] = inst.AgentVersion
		}
		match = append(match, m)
	}
	out := map[string]any{"InstanceInformationList": []map[string]any{}}
	if start < len(match) {
		end := min(start+in.MaxResults, len(match))
		out["InstanceInformationList"] = match[start:end]
		if end < len(match) {
			out["NextToken"] = strconv.Itoa(end)
		}
	}
	awstest.WriteJSON(w, "application/x-amz-json-1.1", out)
}

func (s *Set) deregisterManagedInstance(w http.ResponseWriter, r *http.Request) {
	var in struct {
		InstanceID string `json:"InstanceId"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		awstest.WriteJSONError(w, 400, "SerializationException", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.instances, func(x Instance) bool { return x.InstanceID == in.InstanceID })
	if i < 0 {
		awstest.WriteJSONError(w, 400, "InvalidInstanceId", "Instance Id "+in.InstanceID+" is not valid")
		return
	}
	s.instances = slices.Delete(s.instances, i, i+1)
	awstest.WriteJSON(w, "application/x-amz-json-1.1", map[string]any{})
}

// pingStatus is what SSM reports: Online while the agent pinged within the last five minutes,
// ConnectionLost after that or when it never pinged.
func (i Instance) pingStatus(now time.Time) string {
	if !i.LastPing.IsZero() && now.Sub(i.LastPing) < 5*time.Minute {
		return "Online"
	}
	return "ConnectionLost"
}

// Ping records an agent heartbeat of a managed instance (what the SSM agent's
// UpdateInstanceInformation does), so DescribeInstanceInformation reports it Online with
// agentVersion. It reports whether the instance exists.
func (s *Set) Ping(instanceID, agentVersion string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.instances {
		if s.instances[k].InstanceID == instanceID {
			s.instances[k].LastPing, s.instances[k].AgentVersion = s.opts.Now(), agentVersion
			return true
		}
	}
	return false
}
