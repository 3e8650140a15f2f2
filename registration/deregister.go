package registration

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// LifecycleResult says what Deregister or CleanupOrphans did.
type LifecycleResult struct {
	// ClusterDeregistered is set when DeregisterCluster removed the cluster from EKS (false when
	// EKS did not have it, or for CleanupOrphans).
	ClusterDeregistered bool `json:"clusterDeregistered"`
	// Deregistered are the managed instances removed from SSM now.
	Deregistered []string `json:"deregisteredInstances"`
	// AlreadyGone are instances named in the state that SSM no longer had (InvalidInstanceId).
	AlreadyGone []string `json:"alreadyGoneInstances"`
}

// Deregister removes a connected cluster from AWS: the managed instances of its activation and
// every instance the replicas' states name (recorded orphans included) are listed first, the
// cluster is deregistered from EKS, then each instance is deregistered from SSM. An instance or a
// cluster that is already gone counts as done, so a second run (or a run after a failure half-way)
// finishes the job without error. Kubernetes objects are left alone.
func Deregister(ctx context.Context, eksAPI ClusterAPI, ssmAPI SSMAPI, name string, replicas []Replica) (*LifecycleResult, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: cluster name is empty", ErrInvalidInput)
	}
	res := &LifecycleResult{Deregistered: []string{}, AlreadyGone: []string{}}
	ids := stateInstances(replicas)
	out, err := eksAPI.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(name)})
	var nf *ekstypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
	case err != nil:
		return nil, fmt.Errorf("registration: EKS DescribeCluster %s: %w", name, err)
	default:
		if cc := out.Cluster.ConnectorConfig; cc != nil && aws.ToString(cc.ActivationId) != "" {
			list, err := describeInstances(ctx, ssmAPI, "ActivationIds", []string{aws.ToString(cc.ActivationId)})
			if err != nil {
				return nil, err
			}
			for _, i := range list {
				ids = appendNew(ids, aws.ToString(i.InstanceId))
			}
		}
		if err := DeregisterCluster(ctx, eksAPI, name); err != nil && !errors.As(err, &nf) {
			return nil, err
		} else if err == nil {
			res.ClusterDeregistered = true
		}
	}
	return res, deregisterInstances(ctx, ssmAPI, ids, res)
}

// CleanupOrphans deregisters, on a live cluster, the managed instances no replica owns: those the
// states record as orphaned, and those of the cluster's activation that no state holds. Instances
// the replicas own are never touched. Already-gone instances count as done, and the orphans dealt
// with are removed from the states that record them (Replica.Store), so a second run calls nothing
// but reads.
func CleanupOrphans(ctx context.Context, eksAPI ClusterAPI, ssmAPI SSMAPI, name string, replicas []Replica) (*LifecycleResult, error) {
	res := &LifecycleResult{Deregistered: []string{}, AlreadyGone: []string{}}
	owned := ownedInstances(replicas)
	ids := recordedOrphans(replicas)
	out, err := eksAPI.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("registration: EKS DescribeCluster %s: %w", name, err)
	}
	if cc := out.Cluster.ConnectorConfig; cc != nil && aws.ToString(cc.ActivationId) != "" {
		list, err := describeInstances(ctx, ssmAPI, "ActivationIds", []string{aws.ToString(cc.ActivationId)})
		if err != nil {
			return nil, err
		}
		for _, i := range list {
			if id := aws.ToString(i.InstanceId); owned[id] == "" {
				ids = appendNew(ids, id)
			}
		}
	}
	if err := deregisterInstances(ctx, ssmAPI, ids, res); err != nil {
		return res, err
	}
	return res, pruneOrphans(ctx, replicas, append(slices.Clone(res.Deregistered), res.AlreadyGone...))
}

func deregisterInstances(ctx context.Context, api SSMAPI, ids []string, res *LifecycleResult) error {
	for _, id := range ids {
		_, err := api.DeregisterManagedInstance(ctx, &ssm.DeregisterManagedInstanceInput{InstanceId: aws.String(id)})
		var gone *ssmtypes.InvalidInstanceId
		switch {
		case errors.As(err, &gone):
			res.AlreadyGone = append(res.AlreadyGone, id)
		case err != nil:
			return fmt.Errorf("registration: SSM DeregisterManagedInstance %s: %w", id, err)
		default:
			res.Deregistered = append(res.Deregistered, id)
		}
	}
	return nil
}

// stateInstances are every instance id the states name: the replicas' own and the recorded orphans.
func stateInstances(replicas []Replica) []string {
	var ids []string
	for _, r := range replicas {
		if r.State.Registered() {
			ids = appendNew(ids, r.State.InstanceID)
		}
	}
	for _, id := range recordedOrphans(replicas) {
		ids = appendNew(ids, id)
	}
	return ids
}

func appendNew(list []string, s string) []string {
	if s == "" || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
