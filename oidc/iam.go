package oidc

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/ekslink/ekslink/iamarn"
)

// Contract of the amazon-eks-pod-identity-webhook (and of EKS itself) for IRSA.
const (
	// AnnotationRoleARN on a ServiceAccount names the IAM role its pods assume.
	AnnotationRoleARN = "eks.amazonaws.com/role-arn"
	// AnnotationAudience overrides the projected token's audience (default DefaultAudience).
	AnnotationAudience = "eks.amazonaws.com/audience"
	// AnnotationSTSRegionalEndpoints ("true") makes SDKs use the regional STS endpoint.
	AnnotationSTSRegionalEndpoints = "eks.amazonaws.com/sts-regional-endpoints"
	// AnnotationTokenExpiration is the projected token's lifetime in seconds.
	AnnotationTokenExpiration = "eks.amazonaws.com/token-expiration"
	// EnvRoleARN is the environment variable SDKs read the role ARN from.
	EnvRoleARN = "AWS_ROLE_ARN"
	// EnvWebIdentityTokenFile is the environment variable SDKs read the token path from.
	EnvWebIdentityTokenFile = "AWS_WEB_IDENTITY_TOKEN_FILE"
	// TokenVolumeName is the projected volume the webhook injects.
	TokenVolumeName = "aws-iam-token"
	// TokenMountPath is where the webhook mounts it.
	TokenMountPath = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
	// TokenPath is the token file inside TokenMountPath.
	TokenPath = TokenMountPath + "/token"
)

var (
	accountIDPattern      = regexp.MustCompile(`^[0-9]{12}$`)
	namespacePattern      = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	serviceAccountPattern = regexp.MustCompile(`^[a-z0-9*?]([-a-z0-9.*?]*[a-z0-9*?])?$`)
)

// ProviderARN returns the ARN of the IAM OIDC provider for issuer in the account and partition
// ("aws", "aws-cn", ...; "" means "aws").
func ProviderARN(partition, accountID, issuer string) (string, error) {
	if partition == "" {
		partition = iamarn.PartitionAWS
	}
	if _, ok := iamarn.PartitionByID(partition); !ok {
		return "", fmt.Errorf("oidc: unknown partition %q (known: %v)", partition, iamarn.PartitionIDs())
	}
	if !accountIDPattern.MatchString(accountID) {
		return "", fmt.Errorf("oidc: account id %q is not 12 digits", accountID)
	}
	if _, err := ValidateIssuer(issuer); err != nil {
		return "", err
	}
	return fmt.Sprintf("arn:%s:iam::%s:oidc-provider/%s", partition, accountID, IssuerHostPath(issuer)), nil
}

// TrustPolicyOptions describe who may assume a role through the OIDC provider.
type TrustPolicyOptions struct {
	// ProviderARN is the IAM OIDC provider (see ProviderARN).
	ProviderARN string
	// Issuer is the issuer URL; its host/path prefixes the condition keys.
	Issuer string
	// Namespace and ServiceAccount name the service account ("*" and "?" are allowed in
	// ServiceAccount only, and switch the sub condition to StringLike).
	Namespace      string
	ServiceAccount string
	// Audience is the required aud (default DefaultAudience).
	Audience string
}

type policyDocument struct {
	Version   string            `json:"Version"`
	Statement []policyStatement `json:"Statement"`
}

type policyStatement struct {
	Sid       string                       `json:"Sid,omitempty"`
	Effect    string                       `json:"Effect"`
	Principal map[string]string            `json:"Principal"`
	Action    string                       `json:"Action"`
	Condition map[string]map[string]string `json:"Condition"`
}

// TrustPolicy returns the role trust policy (indented JSON) that lets pods of one service account
// assume the role with AssumeRoleWithWebIdentity, pinning both <issuer>:sub and <issuer>:aud.
func TrustPolicy(o TrustPolicyOptions) ([]byte, error) {
	if o.ProviderARN == "" || o.Namespace == "" || o.ServiceAccount == "" {
		return nil, fmt.Errorf("oidc: trust policy needs the provider ARN, namespace and service account")
	}
	if _, err := ValidateIssuer(o.Issuer); err != nil {
		return nil, err
	}
	aud := o.Audience
	if aud == "" {
		aud = DefaultAudience
	}
	hp := IssuerHostPath(o.Issuer)
	// The policy is only as narrow as its condition values: a wildcard namespace would let
	// whoever can create a namespace assume the role, and ${...} is an IAM policy variable.
	if len(o.Namespace) > 63 || !namespacePattern.MatchString(o.Namespace) {
		return nil, fmt.Errorf("oidc: namespace %q is not a Kubernetes namespace name (wildcards are not allowed in the namespace)", o.Namespace)
	}
	if len(o.ServiceAccount) > 253 || !serviceAccountPattern.MatchString(o.ServiceAccount) {
		return nil, fmt.Errorf("oidc: service account %q is not a Kubernetes name (optionally with * or ?)", o.ServiceAccount)
	}
	if strings.ContainsAny(aud, "$*?") {
		return nil, fmt.Errorf("oidc: audience %q contains a policy variable or wildcard character", aud)
	}
	if !strings.HasSuffix(o.ProviderARN, ":oidc-provider/"+hp) {
		return nil, fmt.Errorf("oidc: provider %q is not the IAM OIDC provider of issuer %q (want an ARN ending in :oidc-provider/%s); its condition keys would never match", o.ProviderARN, o.Issuer, hp)
	}
	sub := ServiceAccountSubject(o.Namespace, o.ServiceAccount)
	cond := map[string]map[string]string{"StringEquals": {hp + ":aud": aud}}
	if strings.ContainsAny(o.ServiceAccount, "*?") {
		cond["StringLike"] = map[string]string{hp + ":sub": sub}
	} else {
		cond["StringEquals"][hp+":sub"] = sub
	}
	doc := policyDocument{Version: "2012-10-17", Statement: []policyStatement{{
		Effect:    "Allow",
		Principal: map[string]string{"Federated": o.ProviderARN},
		Action:    "sts:AssumeRoleWithWebIdentity",
		Condition: cond,
	}}}
	return json.MarshalIndent(doc, "", "  ")
}
