package awsfake

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The condition semantics of the IAM JSON policy reference ("Condition operators", "Multivalued
// context keys"): a missing key fails positive operators and passes negated ones and IfExists;
// an explicit Deny wins over an Allow.
func TestTrustPolicyEvaluation(t *testing.T) {
	const fed = "arn:aws:iam::111122223333:oidc-provider/issuer.example.com"
	pol := func(t *testing.T, doc string) *trustPolicy {
		t.Helper()
		p, err := parseTrustPolicy([]byte(doc))
		require.NoError(t, err)
		return p
	}
	ctx := map[string][]string{"issuer.example.com:sub": {"system:serviceaccount:apps:web"}, "issuer.example.com:aud": {"sts.amazonaws.com"}}
	cases := []struct {
		name, doc string
		want      bool
	}{
		{"StringLike wildcard", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"` + fed + `"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"issuer.example.com:sub":"system:serviceaccount:apps:*"}}}}`, true},
		{"StringLike ? is one character", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"` + fed + `"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"issuer.example.com:sub":"system:serviceaccount:apps:w?"}}}}`, false},
		{"condition key case-insensitive, action wildcard", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":["x","` + fed + `"]},"Action":["sts:Assume*"],"Condition":{"StringEquals":{"ISSUER.example.com:aud":["a","sts.amazonaws.com"]}}}]}`, true},
		{"other principal", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/other"},"Action":"sts:AssumeRoleWithWebIdentity"}}`, false},
		{"other action", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"` + fed + `"},"Action":"sts:AssumeRole"}}`, false},
		{"NotAction", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"` + fed + `"},"NotAction":"sts:AssumeRole"}}`, true},
		{"missing key fails StringEquals", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"` + fed + `"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"issuer.example.com:amr":"x"}}}}`, false},
		{"missing key passes IfExists", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"` + fed + `"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEqualsIfExists":{"issuer.example.com:amr":"x"}}}}`, true},
		{"StringNotEquals", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"` + fed + `"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringNotEquals":{"issuer.example.com:sub":"system:serviceaccount:apps:web"}}}}`, false},
		{"Deny wins", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + fed + `"},"Action":"sts:AssumeRoleWithWebIdentity"},{"Effect":"Deny","Principal":"*","Action":"*","Condition":{"StringLike":{"issuer.example.com:sub":"*:apps:*"}}}]}`, false},
	}
	for _, c := range cases {
		require.Equal(t, c.want, pol(t, c.doc).allows("federated", fed, "sts:AssumeRoleWithWebIdentity", ctx), c.name)
	}
}
