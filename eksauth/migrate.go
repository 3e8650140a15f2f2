package eksauth

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/ekslink/ekslink/eksauth/awsauth"
	"github.com/ekslink/ekslink/iamarn"
)

// Migration actions of a MigrationStep.
const (
	// MigrateCreate creates the access entry (and associates its policies).
	MigrateCreate = "create"
	// MigrateAssociate associates policies with an existing, otherwise equal entry.
	MigrateAssociate = "associate"
	// MigrateUnchanged means an equal entry exists: nothing to do.
	MigrateUnchanged = "unchanged"
	// MigrateConflict means an entry for the principal exists and differs: it already takes
	// precedence over aws-auth for that principal and is left as it is.
	MigrateConflict = "conflict"
)

// MigrationStep is the access entry equivalent to one aws-auth mapping and what to do about it.
type MigrationStep struct {
	// Source is the aws-auth list the mapping comes from (mapRoles or mapUsers).
	Source string
	// Entry is the equivalent access entry and its policy associations.
	Entry AccessEntry
	// Action is MigrateCreate, MigrateAssociate, MigrateUnchanged or MigrateConflict.
	Action string
	// Associate are the policies to associate (all of Entry.Policies for MigrateCreate, the
	// missing ones for MigrateAssociate).
	Associate []PolicyAssociation
	// Existing is the entry EKS already has for the principal (MigrateUnchanged, MigrateConflict,
	// MigrateAssociate).
	Existing *AccessEntry
}

// MigrationPlan is the set of access entries equivalent to an aws-auth ConfigMap, compared with
// the entries a cluster already has. It follows "Migrating existing aws-auth ConfigMap entries to
// access entries" in the Amazon EKS User Guide: one STANDARD entry per mapping with its username
// and groups; system:masters becomes an AmazonEKSClusterAdminPolicy association (EKS refuses
// system: groups in entries); node roles become EC2_LINUX (EC2_WINDOWS with
// eks:kube-proxy-windows, FARGATE_LINUX with system:node-proxier) entries, for which EKS sets the
// username and groups itself.
type MigrationPlan struct {
	// Cluster and AuthenticationMode are the cluster's, as DescribeCluster reported them.
	Cluster, AuthenticationMode string
	// Steps are in aws-auth order (mapRoles, then mapUsers), one per principal (a later duplicate
	// wins, as in aws-iam-authenticator).
	Steps []MigrationStep
	// Warnings are the mappings that cannot be migrated, and why. A mapping that cannot be
	// migrated whole is not migrated at all: a partial entry would take precedence over the
	// aws-auth mapping and silently grant less.
	Warnings []string
}

// Pending reports whether applying the plan would write anything.
func (p *MigrationPlan) Pending() bool {
	return slices.ContainsFunc(p.Steps, func(s MigrationStep) bool {
		return s.Action == MigrateCreate || s.Action == MigrateAssociate
	})
}

// reservedAccessEntryPrefixes are refused by EKS at the start of an access entry's username and
// Kubernetes groups ("Create access entries", Amazon EKS User Guide).
var reservedAccessEntryPrefixes = []string{"system:", "eks:", "aws:", "amazon:", "iam:"}

func reservedName(s string) bool {
	return slices.ContainsFunc(reservedAccessEntryPrefixes, func(p string) bool { return strings.HasPrefix(s, p) })
}

// nodeType returns the access entry type of a node mapping, or "" for other mappings.
func nodeType(groups []string) string {
	switch {
	case !slices.Contains(groups, awsauth.GroupNodes):
		return ""
	case slices.Contains(groups, "eks:kube-proxy-windows"):
		return AccessEntryEC2Windows
	case slices.Contains(groups, "system:node-proxier"):
		return AccessEntryFargateLinux
	}
	return AccessEntryEC2Linux
}

// equivalent returns the access entry of one mapping, or a warning when there is none.
func equivalent(source, arn, username string, groups []string, partition string) (*AccessEntry, string) {
	p, err := iamarn.Parse(strings.TrimSpace(arn))
	if err != nil {
		return nil, fmt.Sprintf("%s %s: not an IAM ARN (%v)", source, arn, err)
	}
	switch p.Kind {
	case iamarn.Role, iamarn.User:
	default:
		return nil, fmt.Sprintf("%s %s: a %s ARN cannot have an access entry (roles and users only)", source, arn, p.Kind)
	}
	if t := nodeType(groups); t != "" {
		if p.Kind != iamarn.Role {
			return nil, fmt.Sprintf("%s %s: node groups on an IAM user; node access entries need a role", source, arn)
		}
		return &AccessEntry{PrincipalARN: p.ARN, Type: t}, ""
	}
	e := &AccessEntry{PrincipalARN: p.ARN, Type: AccessEntryStandard, Username: username}
	var refused []string
	for _, g := range groups {
		switch {
		case g == awsauth.GroupMasters:
			e.Policies = []PolicyAssociation{{PolicyARN: AccessPolicyARN(partition, AccessPolicyClusterAdmin)}}
		case reservedName(g):
			refused = append(refused, g)
		default:
			e.Groups = append(e.Groups, g)
		}
	}
	if len(refused) > 0 {
		return nil, fmt.Sprintf("%s %s: group(s) %s cannot be set on an access entry (EKS refuses names starting with %s); bind the permissions to another group or associate an access policy, then migrate it by hand",
			source, arn, strings.Join(refused, ", "), strings.Join(reservedAccessEntryPrefixes, ", "))
	}
	if reservedName(username) {
		return nil, fmt.Sprintf("%s %s: username %q cannot be set on an access entry (EKS refuses names starting with %s)", source, arn, username, strings.Join(reservedAccessEntryPrefixes, ", "))
	}
	for _, t := range []string{"{{EC2PrivateDNSName}}", "{{AccessKeyID}}"} {
		if strings.Contains(username, t) {
			return nil, fmt.Sprintf("%s %s: username %q uses %s, which access entries do not document ({{SessionName}}, {{SessionNameRaw}} and {{AccountID}} only)", source, arn, username, t)
		}
	}
	slices.Sort(e.Groups)
	e.Groups = slices.Compact(e.Groups)
	return e, ""
}

// PlanMigration computes the access entries equivalent to cfg (a parsed aws-auth ConfigMap) and
// compares them with existing (AccessEntries.List; nil for a cluster that cannot list them yet).
// partition is the cluster's (policy ARNs are per partition). It makes no call.
func PlanMigration(cfg *awsauth.Config, existing []AccessEntry, partition string) *MigrationPlan {
	plan := &MigrationPlan{}
	type mapping struct {
		source, arn, username string
		groups                []string
	}
	var ms []mapping
	for _, r := range cfg.Roles {
		ms = append(ms, mapping{awsauth.KeyMapRoles, r.RoleARN, r.Username, r.Groups})
	}
	for _, u := range cfg.Users {
		ms = append(ms, mapping{awsauth.KeyMapUsers, u.UserARN, u.Username, u.Groups})
	}
	byKey := map[string]int{}
	for _, m := range ms {
		e, warning := equivalent(m.source, m.arn, m.username, m.groups, partition)
		if warning != "" {
			plan.Warnings = append(plan.Warnings, warning)
			continue
		}
		step := MigrationStep{Source: m.source, Entry: *e}
		key := strings.ToLower(e.PrincipalARN)
		if i, ok := byKey[key]; ok {
			plan.Steps[i] = step // aws-iam-authenticator keeps the last duplicate
			continue
		}
		byKey[key] = len(plan.Steps)
		plan.Steps = append(plan.Steps, step)
	}
	for _, a := range cfg.Accounts {
		plan.Warnings = append(plan.Warnings, fmt.Sprintf("mapAccounts %s: no access-entry equivalent (it maps every principal of the account to its ARN); create an entry for each principal that needs access", a))
	}
	for i := range plan.Steps {
		s := &plan.Steps[i]
		j := slices.IndexFunc(existing, func(x AccessEntry) bool { return strings.EqualFold(x.PrincipalARN, s.Entry.PrincipalARN) })
		if j < 0 {
			s.Action, s.Associate = MigrateCreate, s.Entry.Policies
			continue
		}
		ex := existing[j]
		s.Existing = &ex
		if !sameEntry(s.Entry, ex) {
			s.Action = MigrateConflict
			continue
		}
		for _, p := range s.Entry.Policies {
			if !slices.ContainsFunc(ex.Policies, func(x PolicyAssociation) bool {
				return x.PolicyARN == p.PolicyARN && slices.Equal(x.Namespaces, p.Namespaces)
			}) {
				s.Associate = append(s.Associate, p)
			}
		}
		s.Action = MigrateUnchanged
		if len(s.Associate) > 0 {
			s.Action = MigrateAssociate
		}
	}
	return plan
}

// sameEntry compares what a migration sets: type, username (when the mapping names one; EKS
// fills it in otherwise) and groups.
func sameEntry(want, have AccessEntry) bool {
	if want.Type != have.Type {
		return false
	}
	if want.Type != AccessEntryStandard {
		return true
	}
	g := slices.Sorted(slices.Values(have.Groups))
	return (want.Username == "" || want.Username == have.Username) && slices.Equal(want.Groups, slices.Compact(g))
}

func describeEntry(e AccessEntry) string {
	s := e.PrincipalARN + " type " + e.Type
	if e.Username != "" {
		s += " username " + e.Username
	}
	if len(e.Groups) > 0 {
		s += " groups " + strings.Join(e.Groups, ",")
	}
	return s
}

func describePolicy(p PolicyAssociation) string {
	if len(p.Namespaces) == 0 {
		return p.PolicyARN + " (cluster)"
	}
	return p.PolicyARN + " (namespaces " + strings.Join(p.Namespaces, ",") + ")"
}

// Diff renders the plan: "+" what would be created or associated, "=" what already exists, "!"
// conflicts and warnings.
func (p *MigrationPlan) Diff() string {
	var b strings.Builder
	for _, s := range p.Steps {
		switch s.Action {
		case MigrateCreate:
			fmt.Fprintf(&b, "+ access entry %s (from %s)\n", describeEntry(s.Entry), s.Source)
		case MigrateAssociate:
			fmt.Fprintf(&b, "= access entry %s\n", describeEntry(s.Entry))
		case MigrateUnchanged:
			fmt.Fprintf(&b, "= access entry %s\n", describeEntry(s.Entry))
			continue
		case MigrateConflict:
			fmt.Fprintf(&b, "! access entry %s exists as %s; it already takes precedence over aws-auth and is left alone (revoke it and re-run to migrate the mapping)\n", describeEntry(s.Entry), describeEntry(*s.Existing))
			continue
		}
		for _, a := range s.Associate {
			fmt.Fprintf(&b, "+   policy %s\n", describePolicy(a))
		}
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "! not migrated: %s\n", w)
	}
	return b.String()
}

// MigrateOptions tune Migrate.
type MigrateOptions struct {
	// Apply creates the entries and associations; without it Migrate only plans.
	Apply bool
}

// Migrate plans the migration of cfg against the cluster's current entries and, with opts.Apply,
// creates the missing entries and associates the missing policies. Entries that exist and are
// equal are skipped, so a re-run makes no write; conflicting entries are never changed.
func (a *AccessEntries) Migrate(ctx context.Context, cfg *awsauth.Config, opts MigrateOptions) (*MigrationPlan, error) {
	existing, err := a.List(ctx)
	if err != nil {
		return nil, err
	}
	plan := PlanMigration(cfg, existing, a.partition())
	plan.Cluster, plan.AuthenticationMode = a.cluster.Name, a.cluster.AuthenticationMode
	if !opts.Apply {
		return plan, nil
	}
	for _, s := range plan.Steps {
		if s.Action == MigrateCreate {
			in := &eks.CreateAccessEntryInput{ClusterName: aws.String(a.cluster.Name), PrincipalArn: aws.String(s.Entry.PrincipalARN), Type: aws.String(s.Entry.Type), KubernetesGroups: s.Entry.Groups}
			if s.Entry.Username != "" {
				in.Username = aws.String(s.Entry.Username)
			}
			if _, err := a.client.CreateAccessEntry(ctx, in); err != nil {
				return plan, fmt.Errorf("eksauth: creating the access entry of %s on %s: %w", s.Entry.PrincipalARN, a.cluster.Name, err)
			}
		}
		for _, p := range s.Associate {
			scope := &ekstypes.AccessScope{Type: ekstypes.AccessScopeTypeCluster}
			if len(p.Namespaces) > 0 {
				scope = &ekstypes.AccessScope{Type: ekstypes.AccessScopeTypeNamespace, Namespaces: p.Namespaces}
			}
			_, err := a.client.AssociateAccessPolicy(ctx, &eks.AssociateAccessPolicyInput{ClusterName: aws.String(a.cluster.Name), PrincipalArn: aws.String(s.Entry.PrincipalARN), PolicyArn: aws.String(p.PolicyARN), AccessScope: scope})
			if err != nil {
				return plan, fmt.Errorf("eksauth: associating %s with %s on %s: %w", p.PolicyARN, s.Entry.PrincipalARN, a.cluster.Name, err)
			}
		}
	}
	return plan, nil
}

// partition is the cluster's partition, from its ARN (aws when the ARN is missing).
func (a *AccessEntries) partition() string {
	if parts := strings.SplitN(a.cluster.ARN, ":", 3); len(parts) == 3 && parts[1] != "" {
		return parts[1]
	}
	if p, err := iamarn.PartitionForRegion(a.cluster.Region); err == nil {
		return p.ID
	}
	return iamarn.PartitionAWS
}
