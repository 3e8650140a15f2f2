package eksauth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/ekslink/ekslink/iamarn"
)

// Well-known EKS access policies (the partition is filled in by AccessPolicyARN).
const (
	AccessPolicyClusterAdmin = "AmazonEKSClusterAdminPolicy"
	AccessPolicyAdmin        = "AmazonEKSAdminPolicy"
	AccessPolicyEdit         = "AmazonEKSEditPolicy"
	AccessPolicyView         = "AmazonEKSViewPolicy"
)

// AccessPolicyARN returns the ARN of an EKS access policy in a partition.
func AccessPolicyARN(partition, policy string) string {
	return fmt.Sprintf("arn:%s:eks::aws:cluster-access-policy/%s", partition, policy)
}

// ErrAccessEntriesUnsupported is returned for clusters in CONFIG_MAP mode.
var ErrAccessEntriesUnsupported = errors.New("eksauth: the cluster's authentication mode is CONFIG_MAP: access entries are not read; switch to API_AND_CONFIG_MAP or edit aws-auth")

// AccessGrant is one principal's access entry and optional policy association.
type AccessGrant struct {
	// PrincipalARN is the IAM role or user ARN (not an assumed-role session).
	PrincipalARN string
	// Username is the entry's Kubernetes user name (optional; EKS picks a default).
	Username string
	// Groups are the entry's Kubernetes groups (optional).
	Groups []string
	// Policy is an access policy name (AccessPolicyView, ...) or full ARN; empty means no association.
	Policy string
	// Namespaces scope the policy; empty means the whole cluster.
	Namespaces []string
}

// AccessEntriesAPI is the part of the EKS client AccessEntries uses; *eks.Client implements it.
type AccessEntriesAPI interface {
	EKSAPI
	ListAccessEntries(ctx context.Context, in *eks.ListAccessEntriesInput, optFns ...func(*eks.Options)) (*eks.ListAccessEntriesOutput, error)
	DescribeAccessEntry(ctx context.Context, in *eks.DescribeAccessEntryInput, optFns ...func(*eks.Options)) (*eks.DescribeAccessEntryOutput, error)
	ListAssociatedAccessPolicies(ctx context.Context, in *eks.ListAssociatedAccessPoliciesInput, optFns ...func(*eks.Options)) (*eks.ListAssociatedAccessPoliciesOutput, error)
	DisassociateAccessPolicy(ctx context.Context, in *eks.DisassociateAccessPolicyInput, optFns ...func(*eks.Options)) (*eks.DisassociateAccessPolicyOutput, error)
	DeleteAccessEntry(ctx context.Context, in *eks.DeleteAccessEntryInput, optFns ...func(*eks.Options)) (*eks.DeleteAccessEntryOutput, error)
}

// AccessEntries grants, lists and revokes access through the EKS access entry API.
type AccessEntries struct {
	client  AccessEntriesAPI
	cluster *Cluster
}

// NewAccessEntries returns helpers for the cluster (as returned by DescribeCluster). It fails for
// clusters that do not read access entries (ErrAccessEntriesUnsupported).
func NewAccessEntries(client AccessEntriesAPI, cluster *Cluster) (*AccessEntries, error) {
	if !cluster.AccessEntriesSupported() {
		return nil, fmt.Errorf("%w (cluster %s)", ErrAccessEntriesUnsupported, cluster.Name)
	}
	return &AccessEntries{client: client, cluster: cluster}, nil
}

// Grant creates the access entry unless the principal has one (an existing entry is kept as it
// is: its username and groups are not changed) and associates the policy unless it is already
// associated with the same scope, so a re-run makes no write.
func (a *AccessEntries) Grant(ctx context.Context, g AccessGrant) error {
	p, err := iamarn.Parse(g.PrincipalARN)
	if err != nil {
		return fmt.Errorf("eksauth: access entry principal: %w", err)
	}
	if p.Kind != iamarn.Role && p.Kind != iamarn.User {
		return fmt.Errorf("eksauth: access entry principal %s is a %s ARN; use the IAM role or user ARN", g.PrincipalARN, p.Kind)
	}
	existing, err := a.describe(ctx, p.ARN)
	if err != nil && !isNotFound(err) {
		return err
	}
	if existing == nil {
		in := &eks.CreateAccessEntryInput{ClusterName: aws.String(a.cluster.Name), PrincipalArn: aws.String(p.ARN), KubernetesGroups: g.Groups}
		if g.Username != "" {
			in.Username = aws.String(g.Username)
		}
		if _, err := a.client.CreateAccessEntry(ctx, in); err != nil {
			var inUse *ekstypes.ResourceInUseException
			if !errors.As(err, &inUse) { // created meanwhile by someone else: kept as it is
				return fmt.Errorf("eksauth: creating the access entry of %s on %s: %w", p.ARN, a.cluster.Name, err)
			}
		}
	}
	if g.Policy == "" {
		return nil
	}
	policy := g.Policy
	if !strings.HasPrefix(policy, "arn:") {
		policy = AccessPolicyARN(p.Partition, policy)
	}
	namespaces := slices.Sorted(slices.Values(g.Namespaces))
	if existing != nil && slices.ContainsFunc(existing.Policies, func(x PolicyAssociation) bool {
		return x.PolicyARN == policy && slices.Equal(x.Namespaces, namespaces)
	}) {
		return nil
	}
	scope := &ekstypes.AccessScope{Type: ekstypes.AccessScopeTypeCluster}
	if len(g.Namespaces) > 0 {
		scope = &ekstypes.AccessScope{Type: ekstypes.AccessScopeTypeNamespace, Namespaces: g.Namespaces}
	}
	_, err = a.client.AssociateAccessPolicy(ctx, &eks.AssociateAccessPolicyInput{
		ClusterName: aws.String(a.cluster.Name), PrincipalArn: aws.String(p.ARN), PolicyArn: aws.String(policy), AccessScope: scope,
	})
	if err != nil {
		return fmt.Errorf("eksauth: associating %s with %s on %s: %w", policy, p.ARN, a.cluster.Name, err)
	}
	return nil
}
