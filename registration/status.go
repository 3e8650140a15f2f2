package registration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// SSMAPI is the part of the SSM client ConnectorStatus, Deregister and CleanupOrphans use;
// *ssm.Client implements it.
type SSMAPI interface {
	DescribeInstanceInformation(ctx context.Context, in *ssm.DescribeInstanceInformationInput, optFns ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error)
	DeregisterManagedInstance(ctx context.Context, in *ssm.DeregisterManagedInstanceInput, optFns ...func(*ssm.Options)) (*ssm.DeregisterManagedInstanceOutput, error)
}

// Verdicts of ConnectorStatus.
const (
	// Connected: EKS reports the cluster ACTIVE and every replica's managed instance is Online.
	Connected = "connected"
	// Degraded: at least one replica is Online, but something needs attention (see Reasons).
	Degraded = "degraded"
	// NotConnected: no replica is Online, or EKS does not have the cluster.
	NotConnected = "not connected"
)

// ClusterInfo is what EKS says about a connected cluster.
type ClusterInfo struct {
	Name             string    `json:"name"`
	ARN              string    `json:"arn,omitempty"`
	Status           string    `json:"status"`
	Provider         string    `json:"provider,omitempty"`
	RoleARN          string    `json:"roleArn,omitempty"`
	ActivationID     string    `json:"activationId,omitempty"`
	ActivationExpiry time.Time `json:"activationExpiry,omitzero"`
}

// ReplicaStatus is one replica's registration and its managed instance as SSM sees it.
type ReplicaStatus struct {
	Secret string `json:"secret"`
	// Registration is "registered", "pending" or "none".
	Registration string `json:"registration"`
	InstanceID   string `json:"instanceId,omitempty"`
	// PingStatus is SSM's (Online, ConnectionLost, Inactive), or "unknown to SSM".
	PingStatus   string    `json:"pingStatus,omitempty"`
	LastPing     time.Time `json:"lastPing,omitzero"`
	AgentVersion string    `json:"agentVersion,omitempty"`
	Orphans      int       `json:"recordedOrphans,omitempty"`
}

// ConnectorStatus answers "is my cluster connected?".
type ConnectorStatus struct {
	Verdict  string          `json:"verdict"`
	Reasons  []string        `json:"reasons"`
	Cluster  ClusterInfo     `json:"cluster"`
	Replicas []ReplicaStatus `json:"replicas"`
	// Unowned are managed instances of the cluster's activation that no replica's state holds
	// (left by crashed registrations; "ekslink connector cleanup" deregisters them).
	Unowned []string `json:"unownedInstances,omitempty"`
}

// GetConnectorStatus combines EKS DescribeCluster, the replicas' state and SSM
// DescribeInstanceInformation into one verdict with reasons. replicas may be empty (no access to
// the cluster): the verdict then rests on the managed instances of the activation alone.
func GetConnectorStatus(ctx context.Context, eksAPI ClusterAPI, ssmAPI SSMAPI, name string, replicas []Replica) (*ConnectorStatus, error) {
	st := &ConnectorStatus{Cluster: ClusterInfo{Name: name}, Reasons: []string{}, Replicas: []ReplicaStatus{}}
	out, err := eksAPI.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(name)})
	var nf *ekstypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		st.Cluster.Status = "NOT REGISTERED"
		st.Verdict = NotConnected
		st.Reasons = append(st.Reasons, "EKS has no cluster named "+name+": run \"ekslink connector register\"")
	case err != nil:
		return nil, fmt.Errorf("registration: EKS DescribeCluster %s: %w", name, err)
	default:
		c := out.Cluster
		st.Cluster.ARN, st.Cluster.Status = aws.ToString(c.Arn), string(c.Status)
		if cc := c.ConnectorConfig; cc != nil {
			st.Cluster.Provider, st.Cluster.RoleARN = aws.ToString(cc.Provider), aws.ToString(cc.RoleArn)
			st.Cluster.ActivationID, st.Cluster.ActivationExpiry = aws.ToString(cc.ActivationId), aws.ToTime(cc.ActivationExpiry)
		}
	}
	infos := map[string]ssmtypes.InstanceInformation{}
	if st.Cluster.ActivationID != "" {
		list, err := describeInstances(ctx, ssmAPI, "ActivationIds", []string{st.Cluster.ActivationID})
		if err != nil {
			return nil, err
		}
		for _, i := range list {
			infos[aws.ToString(i.InstanceId)] = i
		}
	}
	var others []string
	for id := range ownedInstances(replicas) {
		if _, ok := infos[id]; !ok {
			others = append(others, id)
		}
	}
	if len(others) > 0 {
		slices.Sort(others)
		list, err := describeInstances(ctx, ssmAPI, "InstanceIds", others)
		if err != nil {
			return nil, err
		}
		for _, i := range list {
			infos[aws.ToString(i.InstanceId)] = i
		}
	}
	online := 0
	for _, r := range replicas {
		rs := ReplicaStatus{Secret: r.Secret, Registration: "none"}
		if r.State != nil {
			rs.Registration, rs.InstanceID, rs.Orphans = string(r.State.Status), r.State.InstanceID, len(r.State.Orphans)
		}
		switch info, ok := infos[rs.InstanceID]; {
		case rs.InstanceID == "":
			st.Reasons = append(st.Reasons, r.Secret+": not registered yet (is the replica running? its init container registers it)")
		case !ok:
			rs.PingStatus = "unknown to SSM"
			st.Reasons = append(st.Reasons, r.Secret+": SSM has no managed instance "+rs.InstanceID+" (deregistered; delete the state Secret so the replica registers again)")
		default:
			rs.PingStatus, rs.LastPing, rs.AgentVersion = string(info.PingStatus), aws.ToTime(info.LastPingDateTime), aws.ToString(info.AgentVersion)
			if info.PingStatus == ssmtypes.PingStatusOnline {
				online++
			} else {
				st.Reasons = append(st.Reasons, fmt.Sprintf("%s: managed instance %s is %s (last ping %s): is the agent container running and can it reach SSM?", r.Secret, rs.InstanceID, rs.PingStatus, pingTime(rs.LastPing)))
			}
			if a := aws.ToString(info.ActivationId); st.Cluster.ActivationID != "" && a != st.Cluster.ActivationID {
				st.Reasons = append(st.Reasons, fmt.Sprintf("%s: registered with activation %s, not the cluster's %s (registered again since?)", r.Secret, a, st.Cluster.ActivationID))
			}
		}
		if rs.Orphans > 0 {
			st.Reasons = append(st.Reasons, fmt.Sprintf("%s: %d orphaned registration(s) recorded: run \"ekslink connector cleanup\"", r.Secret, rs.Orphans))
		}
		st.Replicas = append(st.Replicas, rs)
	}
	owned := ownedInstances(replicas)
	for id, info := range infos {
		if owned[id] != "" || aws.ToString(info.ActivationId) != st.Cluster.ActivationID {
			continue
		}
		if len(replicas) == 0 {
			if info.PingStatus == ssmtypes.PingStatusOnline {
				online++
			}
			continue
		}
		st.Unowned = append(st.Unowned, id)
	}
	slices.Sort(st.Unowned)
	if len(st.Unowned) > 0 {
		st.Reasons = append(st.Reasons, fmt.Sprintf("%d managed instance(s) of the activation belong to no replica: run \"ekslink connector cleanup\"", len(st.Unowned)))
	}
	if st.Verdict == "" {
		if st.Cluster.Status != string(ekstypes.ClusterStatusActive) {
			st.Reasons = append(st.Reasons, "EKS reports the cluster "+st.Cluster.Status+", not ACTIVE")
		}
		switch {
		case online == 0:
			st.Verdict = NotConnected
			if len(replicas) == 0 && len(infos) == 0 {
				st.Reasons = append(st.Reasons, "no managed instance has registered with the cluster's activation: apply the connector")
			}
		case len(st.Reasons) == 0:
			st.Verdict = Connected
		default:
			st.Verdict = Degraded
		}
	}
	return st, nil
}

func pingTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// describeInstances lists the managed instances matching one filter, all pages, in batches of the
// 100 values a filter takes.
func describeInstances(ctx context.Context, api SSMAPI, key string, values []string) ([]ssmtypes.InstanceInformation, error) {
	var out []ssmtypes.InstanceInformation
	for batch := range slices.Chunk(values, 100) {
		p := ssm.NewDescribeInstanceInformationPaginator(api, &ssm.DescribeInstanceInformationInput{
			Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String(key), Values: batch}},
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("registration: SSM DescribeInstanceInformation %s=%v: %w", key, batch, err)
			}
			out = append(out, page.InstanceInformationList...)
		}
	}
	return out, nil
}
