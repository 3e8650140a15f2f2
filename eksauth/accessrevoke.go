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
)

// Access entry types (CreateAccessEntry's type).
const (
	AccessEntryStandard     = "STANDARD"
	AccessEntryEC2Linux     = "EC2_LINUX"
	AccessEntryEC2Windows   = "EC2_WINDOWS"
	AccessEntryFargateLinux = "FARGATE_LINUX"
)

// ErrNodeAccessEntry is wrapped by the error Revoke returns for an entry of a node type (EC2_LINUX,
// FARGATE_LINUX, ...) without Force: nodes using the role could no longer join.
var ErrNodeAccessEntry = errors.New("eksauth: refusing to delete a node access entry (nodes using the role could no longer join; use Force)")

// PolicyAssociation is an access policy associated with an access entry.
type PolicyAssociation struct {
	// PolicyARN is the access policy's ARN.
	PolicyARN string `json:"policyArn"`
	// Namespaces scope the association; empty means the whole cluster.
	Namespaces []string `json:"namespaces,omitempty"`
}

// AccessEntry is an access entry as EKS reports it, with its policy associations.
type AccessEntry struct {
	// PrincipalARN is the IAM role or user the entry is for.
	PrincipalARN string `json:"principalArn"`
	// Type is STANDARD, EC2_LINUX, EC2_WINDOWS, FARGATE_LINUX, ...
	Type string `json:"type"`
	// Username is the Kubernetes user name the principal authenticates as.
	Username string `json:"username,omitempty"`
	// Groups are the entry's Kubernetes groups.
	Groups []string `json:"kubernetesGroups,omitempty"`
	// Policies are the associated access policies, sorted by ARN.
	Policies []PolicyAssociation `json:"policies,omitempty"`
}

// List returns every access entry of the cluster (ListAccessEntries, then DescribeAccessEntry
// and ListAssociatedAccessPolicies for each), sorted by principal. An entry deleted between the
// calls is left out.
func (a *AccessEntries) List(ctx context.Context) ([]AccessEntry, error) {
	var arns []string
	p := eks.NewListAccessEntriesPaginator(a.client, &eks.ListAccessEntriesInput{ClusterName: aws.String(a.cluster.Name)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("eksauth: listing the access entries of %s: %w", a.cluster.Name, err)
		}
		arns = append(arns, out.AccessEntries...)
	}
	slices.Sort(arns)
	entries := make([]AccessEntry, 0, len(arns))
	for _, arn := range arns {
		e, err := a.describe(ctx, arn)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		entries = append(entries, *e)
	}
	return entries, nil
}

func isNotFound(err error) bool {
	var nf *ekstypes.ResourceNotFoundException
	return errors.As(err, &nf)
}

// describe reads one entry and its associations.
func (a *AccessEntries) describe(ctx context.Context, principal string) (*AccessEntry, error) {
	out, err := a.client.DescribeAccessEntry(ctx, &eks.DescribeAccessEntryInput{ClusterName: aws.String(a.cluster.Name), PrincipalArn: aws.String(principal)})
	if err != nil {
		return nil, fmt.Errorf("eksauth: describing the access entry of %s on %s: %w", principal, a.cluster.Name, err)
	}
	if out.AccessEntry == nil {
		return nil, fmt.Errorf("eksauth: DescribeAccessEntry %s on %s returned no entry", principal, a.cluster.Name)
	}
	e := &AccessEntry{PrincipalARN: principal, Type: aws.ToString(out.AccessEntry.Type), Username: aws.ToString(out.AccessEntry.Username), Groups: out.AccessEntry.KubernetesGroups}
	pols, err := a.policies(ctx, principal)
	if err != nil {
		return nil, err
	}
	e.Policies = pols
	return e, nil
}

func (a *AccessEntries) policies(ctx context.Context, principal string) ([]PolicyAssociation, error) {
	var out []PolicyAssociation
	p := eks.NewListAssociatedAccessPoliciesPaginator(a.client, &eks.ListAssociatedAccessPoliciesInput{ClusterName: aws.String(a.cluster.Name), PrincipalArn: aws.String(principal)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("eksauth: listing the access policies of %s on %s: %w", principal, a.cluster.Name, err)
		}
		for _, ap := range page.AssociatedAccessPolicies {
			pa := PolicyAssociation{PolicyARN: aws.ToString(ap.PolicyArn)}
			if ap.AccessScope != nil && ap.AccessScope.Type == ekstypes.AccessScopeTypeNamespace {
				pa.Namespaces = slices.Sorted(slices.Values(ap.AccessScope.Namespaces))
			}
			out = append(out, pa)
		}
	}
	slices.SortFunc(out, func(x, y PolicyAssociation) int { return strings.Compare(x.PolicyARN, y.PolicyARN) })
	return out, nil
}

// AccessRevokeOptions tune Revoke.
type AccessRevokeOptions struct {
	// Policy, when set (a name such as AccessPolicyView or a full ARN), disassociates only this
	// policy and keeps the entry.
	Policy string
	// Force allows deleting an entry of a node type.
	Force bool
}

// AccessRevokeResult says what Revoke did.
type AccessRevokeResult struct {
	// Disassociated are the policy ARNs taken off the entry.
	Disassociated []string
	// Deleted is true when the entry was deleted.
	Deleted bool
}

// Changed reports whether Revoke wrote anything.
func (r *AccessRevokeResult) Changed() bool { return r.Deleted || len(r.Disassociated) > 0 }

// Revoke disassociates the principal's access policies (DisassociateAccessPolicy for each) and
// deletes its access entry (DeleteAccessEntry); with opts.Policy only that policy is
// disassociated. An entry or association that does not exist (ResourceNotFoundException, also
// when it disappears between the calls) is what Revoke wants, so a re-run makes no write and
// returns no error. Node entries are refused without opts.Force (ErrNodeAccessEntry).
func (a *AccessEntries) Revoke(ctx context.Context, principal string, opts AccessRevokeOptions) (*AccessRevokeResult, error) {
	res := &AccessRevokeResult{}
	e, err := a.describe(ctx, principal)
	if isNotFound(err) {
		return res, nil
	}
	if err != nil {
		return res, err
	}
	if opts.Policy == "" && e.Type != "" && e.Type != AccessEntryStandard && !opts.Force {
		return res, fmt.Errorf("%w: %s is a %s entry on %s", ErrNodeAccessEntry, principal, e.Type, a.cluster.Name)
	}
	want := ""
	if opts.Policy != "" {
		want = a.policyARN(principal, opts.Policy)
	}
	for _, p := range e.Policies {
		if want != "" && p.PolicyARN != want {
			continue
		}
		_, err := a.client.DisassociateAccessPolicy(ctx, &eks.DisassociateAccessPolicyInput{ClusterName: aws.String(a.cluster.Name), PrincipalArn: aws.String(principal), PolicyArn: aws.String(p.PolicyARN)})
		if err != nil && !isNotFound(err) {
			return res, fmt.Errorf("eksauth: disassociating %s from %s on %s: %w", p.PolicyARN, principal, a.cluster.Name, err)
		}
		if err == nil {
			res.Disassociated = append(res.Disassociated, p.PolicyARN)
		}
	}
	if want != "" {
		return res, nil
	}
	_, err = a.client.DeleteAccessEntry(ctx, &eks.DeleteAccessEntryInput{ClusterName: aws.String(a.cluster.Name), PrincipalArn: aws.String(principal)})
	if err != nil && !isNotFound(err) {
		return res, fmt.Errorf("eksauth: deleting the access entry of %s on %s: %w", principal, a.cluster.Name, err)
	}
	res.Deleted = err == nil
	return res, nil
}

// policyARN expands a policy name to its ARN in the principal's partition (the cluster's when
// the principal is not an ARN).
func (a *AccessEntries) policyARN(principal, policy string) string {
	if strings.HasPrefix(policy, "arn:") {
		return policy
	}
	partition := "aws"
	if parts := strings.SplitN(principal, ":", 3); len(parts) == 3 && parts[0] == "arn" {
		partition = parts[1]
	} else if parts := strings.SplitN(a.cluster.ARN, ":", 3); len(parts) == 3 {
		partition = parts[1]
	}
	return AccessPolicyARN(partition, policy)
}
