package oidc

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/ekslink/ekslink/internal/awspartition"
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

var accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

// ProviderARN returns the ARN of the IAM OIDC provider for issuer in the account and partition
// ("aws", "aws-cn", ...; "" means "aws").
func ProviderARN(partition, accountID, issuer string) (string, error) {
	if partition == "" {
		partition = "aws"
	}
	if _, ok := awspartition.ByID(partition); !ok {
		return "", fmt.Errorf("oidc: unknown partition %q (known: %v)", partition, awspartition.IDs())
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
	// Namespace and ServiceAccount name the service account ("*" allowed in ServiceAccount, which
	// switches the sub condition to StringLike).
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
	sub := ServiceAccountSubject(o.Namespace, o.ServiceAccount)
	cond := map[string]map[string]string{"StringEquals": {hp + ":aud": aud}}
	if regexp.MustCompile(`[*?]`).MatchString(o.Namespace + o.ServiceAccount) {
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
