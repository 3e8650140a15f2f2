package registration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
)

// IAMAPI is the part of the IAM client EnsureConnectorIAM uses; *iam.Client implements it.
type IAMAPI interface {
	GetRole(ctx context.Context, in *iam.GetRoleInput, optFns ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	CreateRole(ctx context.Context, in *iam.CreateRoleInput, optFns ...func(*iam.Options)) (*iam.CreateRoleOutput, error)
	UpdateAssumeRolePolicy(ctx context.Context, in *iam.UpdateAssumeRolePolicyInput, optFns ...func(*iam.Options)) (*iam.UpdateAssumeRolePolicyOutput, error)
	GetRolePolicy(ctx context.Context, in *iam.GetRolePolicyInput, optFns ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	PutRolePolicy(ctx context.Context, in *iam.PutRolePolicyInput, optFns ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
	TagRole(ctx context.Context, in *iam.TagRoleInput, optFns ...func(*iam.Options)) (*iam.TagRoleOutput, error)
	CreateServiceLinkedRole(ctx context.Context, in *iam.CreateServiceLinkedRoleInput, optFns ...func(*iam.Options)) (*iam.CreateServiceLinkedRoleOutput, error)
}

// The names seed 001 (the AWS blog post "Connect any Kubernetes cluster to Amazon EKS") uses.
const (
	// ConnectorServiceName is the service principal of the EKS Connector service-linked role.
	ConnectorServiceName = "eks-connector.amazonaws.com"
	// ConnectorServiceLinkedRoleName is the role IAM creates for ConnectorServiceName.
	ConnectorServiceLinkedRoleName = "AWSServiceRoleForAmazonEKSConnector"
	// DefaultAgentRoleName is the role the connector's SSM agent assumes.
	DefaultAgentRoleName = "eks-connector-agent"
	// DefaultAgentPolicyName is the inline policy of the agent role.
	DefaultAgentPolicyName = "eks-connector-agent-policy"
)

// AgentTrustPolicy is the agent role's trust policy from seed 001: SSM may assume the role. (The
// seed's copy shows the principal as "ssm.amazonaws.com.rproxy.goskope.com", an artefact of the
// web page it was saved from; the principal is ssm.amazonaws.com.)
const AgentTrustPolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "SSMAccess",
      "Effect": "Allow",
      "Principal": {
        "Service": [
          "ssm.amazonaws.com"
        ]
      },
      "Action": "sts:AssumeRole"
    }
  ]
}`

// AgentPolicy is the agent role's inline policy from seed 001: the ssmmessages channels the SSM
// agent opens.
const AgentPolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "SsmControlChannel",
      "Effect": "Allow",
      "Action": [
        "ssmmessages:CreateControlChannel"
      ],
      "Resource": "arn:aws:eks:*:*:cluster/*"
    },
    {
      "Sid": "ssmDataplaneOperations",
      "Effect": "Allow",
      "Action": [
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenDataChannel",
        "ssmmessages:OpenControlChannel"
      ],
      "Resource": "*"
    }
  ]
}`

// IAMSpec describes the IAM set-up of the connector. The zero value is seed 001's set-up.
type IAMSpec struct {
	// RoleName is the agent role (default DefaultAgentRoleName).
	RoleName string
	// PolicyName is the agent role's inline policy (default DefaultAgentPolicyName).
	PolicyName string
	// TrustPolicy and Policy are the documents (default AgentTrustPolicy and AgentPolicy).
	TrustPolicy, Policy string
	// Tags are set on the agent role; tags the role has besides these are left alone.
	Tags map[string]string
	// SkipServiceLinkedRole leaves the service-linked role alone (an account where it is managed
	// elsewhere, or a caller without iam:CreateServiceLinkedRole).
	SkipServiceLinkedRole bool
	// DryRun makes only the reads and returns the writes it would make in IAMResult.Calls.
	DryRun bool
}

// IAMCall is one IAM write EnsureConnectorIAM made (or, in a dry run, would make).
type IAMCall struct {
	// Operation is the IAM action ("CreateRole", "PutRolePolicy", ...).
	Operation string `json:"operation"`
	// Parameters are the call's parameters as the AWS CLI names them (documents as JSON text).
	Parameters map[string]string `json:"parameters"`
}

// IAMResult is the outcome of EnsureConnectorIAM.
type IAMResult struct {
	// AgentRoleARN is the agent role's ARN ("" in a dry run that would create the role).
	AgentRoleARN string `json:"agentRoleArn,omitempty"`
	// Calls are the writes made (or planned, in a dry run); none when everything was in place.
	Calls []IAMCall `json:"calls"`
}

// EnsureConnectorIAM makes the IAM set-up of seed 001 exist: the service-linked role of
// eks-connector.amazonaws.com and the agent role with its trust policy, inline policy and tags. It
// reads first and writes only what differs (documents compared by meaning, not by text), so a
// second run makes no write.
func EnsureConnectorIAM(ctx context.Context, api IAMAPI, spec IAMSpec) (*IAMResult, error) {
	setDefault(&spec.RoleName, DefaultAgentRoleName)
	setDefault(&spec.PolicyName, DefaultAgentPolicyName)
	setDefault(&spec.TrustPolicy, AgentTrustPolicy)
	setDefault(&spec.Policy, AgentPolicy)
	for name, doc := range map[string]string{"trust policy": spec.TrustPolicy, "policy": spec.Policy} {
		if _, err := normalizePolicy(doc); err != nil {
			return nil, fmt.Errorf("%w: the %s is not a JSON policy document: %v", ErrInvalidInput, name, err)
		}
	}
	res := &IAMResult{Calls: []IAMCall{}}
	do := func(op string, params map[string]string, call func() error) error {
		res.Calls = append(res.Calls, IAMCall{Operation: op, Parameters: params})
		if spec.DryRun {
			return nil
		}
		if err := call(); err != nil {
			return fmt.Errorf("registration: IAM %s: %w", op, err)
		}
		return nil
	}
	if !spec.SkipServiceLinkedRole {
		if err := ensureServiceLinkedRole(ctx, api, do); err != nil {
			return nil, err
		}
	}
	got, err := api.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(spec.RoleName)})
	var nse *iamtypes.NoSuchEntityException
	switch {
	case errors.As(err, &nse):
		params := map[string]string{"RoleName": spec.RoleName, "AssumeRolePolicyDocument": spec.TrustPolicy}
		for _, k := range slices.Sorted(maps.Keys(spec.Tags)) {
			params["Tags."+k] = spec.Tags[k]
		}
		err = do("CreateRole", params, func() error {
			out, err := api.CreateRole(ctx, &iam.CreateRoleInput{
				RoleName:                 aws.String(spec.RoleName),
				AssumeRolePolicyDocument: aws.String(spec.TrustPolicy),
				Description:              aws.String("EKS Connector agent (SSM) role, managed by ekslink"),
				Tags:                     iamTags(spec.Tags),
			})
			if err == nil {
				res.AgentRoleARN = aws.ToString(out.Role.Arn)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("registration: IAM GetRole %s: %w", spec.RoleName, err)
	default:
		res.AgentRoleARN = aws.ToString(got.Role.Arn)
		same, err := samePolicy(aws.ToString(got.Role.AssumeRolePolicyDocument), spec.TrustPolicy)
		if err != nil {
			return nil, fmt.Errorf("registration: the trust policy of role %s: %w", spec.RoleName, err)
		}
		if !same {
			err := do("UpdateAssumeRolePolicy", map[string]string{"RoleName": spec.RoleName, "PolicyDocument": spec.TrustPolicy}, func() error {
				_, err := api.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(spec.RoleName), PolicyDocument: aws.String(spec.TrustPolicy)})
				return err
			})
			if err != nil {
				return nil, err
			}
		}
		if missing := missingTags(got.Role.Tags, spec.Tags); len(missing) > 0 {
			params := map[string]string{"RoleName": spec.RoleName}
			for _, k := range slices.Sorted(maps.Keys(missing)) {
				params["Tags."+k] = missing[k]
			}
			err := do("TagRole", params, func() error {
				_, err := api.TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String(spec.RoleName), Tags: iamTags(missing)})
				return err
			})
			if err != nil {
				return nil, err
			}
		}
	}
	if err := ensureRolePolicy(ctx, api, spec, got == nil, do); err != nil {
		return nil, err
	}
	return res, nil
}

// ensureServiceLinkedRole creates the connector's service-linked role unless it exists. IAM answers a
// second CreateServiceLinkedRole with InvalidInput "Service role name ... has been taken in this
// account" (there is no EntityAlreadyExists for service-linked roles), which counts as success.
func ensureServiceLinkedRole(ctx context.Context, api IAMAPI, do func(string, map[string]string, func() error) error) error {
	_, err := api.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(ConnectorServiceLinkedRoleName)})
	var nse *iamtypes.NoSuchEntityException
	if err == nil {
		return nil
	}
	if !errors.As(err, &nse) {
		return fmt.Errorf("registration: IAM GetRole %s: %w", ConnectorServiceLinkedRoleName, err)
	}
	return do("CreateServiceLinkedRole", map[string]string{"AWSServiceName": ConnectorServiceName}, func() error {
		_, err := api.CreateServiceLinkedRole(ctx, &iam.CreateServiceLinkedRoleInput{AWSServiceName: aws.String(ConnectorServiceName)})
		if ServiceLinkedRoleTaken(err) {
			return nil
		}
		return err
	})
}

// ServiceLinkedRoleTaken reports whether err is IAM's answer to creating a service-linked role that
// exists: InvalidInput with "has been taken in this account".
func ServiceLinkedRoleTaken(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "InvalidInput" && strings.Contains(ae.ErrorMessage(), "has been taken in this account")
}

// ensureRolePolicy puts the inline policy unless the role has it with the same meaning. A role
// that is about to be created (or would be, in a dry run) has no policy to read.
func ensureRolePolicy(ctx context.Context, api IAMAPI, spec IAMSpec, newRole bool, do func(string, map[string]string, func() error) error) error {
	if !newRole {
		got, err := api.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(spec.RoleName), PolicyName: aws.String(spec.PolicyName)})
		var nse *iamtypes.NoSuchEntityException
		switch {
		case errors.As(err, &nse):
		case err != nil:
			return fmt.Errorf("registration: IAM GetRolePolicy %s/%s: %w", spec.RoleName, spec.PolicyName, err)
		default:
			same, err := samePolicy(aws.ToString(got.PolicyDocument), spec.Policy)
			if err != nil {
				return fmt.Errorf("registration: policy %s of role %s: %w", spec.PolicyName, spec.RoleName, err)
			}
			if same {
				return nil
			}
		}
	}
	return do("PutRolePolicy", map[string]string{"RoleName": spec.RoleName, "PolicyName": spec.PolicyName, "PolicyDocument": spec.Policy}, func() error {
		_, err := api.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(spec.RoleName), PolicyName: aws.String(spec.PolicyName), PolicyDocument: aws.String(spec.Policy)})
		return err
	})
}

// samePolicy compares a document IAM returned (URL-encoded, as GetRole and GetRolePolicy return
// them) with the wanted one by meaning.
func samePolicy(fromIAM, want string) (bool, error) {
	dec, err := url.QueryUnescape(fromIAM)
	if err != nil {
		return false, fmt.Errorf("IAM returned a document that is not URL-encoded: %w", err)
	}
	a, err := normalizePolicy(dec)
	if err != nil {
		return false, fmt.Errorf("IAM returned a document that is not JSON: %w", err)
	}
	b, err := normalizePolicy(want)
	if err != nil {
		return false, err
	}
	return a == b, nil
}

func iamTags(tags map[string]string) []iamtypes.Tag {
	var out []iamtypes.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, iamtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

// missingTags returns the wanted tags the role lacks or has with another value.
func missingTags(have []iamtypes.Tag, want map[string]string) map[string]string {
	got := map[string]string{}
	for _, t := range have {
		got[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	out := map[string]string{}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			out[k] = v
		}
	}
	return out
}

func setDefault(s *string, v string) {
	if *s == "" {
		*s = v
	}
}
