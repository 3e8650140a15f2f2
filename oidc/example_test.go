package oidc_test

import (
	"fmt"

	"github.com/ekslink/ekslink/oidc"
)

// A fixed P-256 public key (PKIX PEM), as --service-account-key-file holds it.
const examplePublicKey = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEK12bEdt4mXesAKnjCOnRt2vVqc4
nsAecHG8tzmQWJGIn5jnpWW/LfvXKKXhT6wo5OLwZ61cfkgY9lbFc2ufwg==
-----END PUBLIC KEY-----
`

func Example() {
	keys, err := oidc.ParseKeys([]byte(examplePublicKey))
	if err != nil {
		fmt.Println(err)
		return
	}
	discovery, jwks, err := oidc.Documents("https://s3.eu-west-1.amazonaws.com/my-issuer", keys, oidc.DocumentOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	// A token is then checked with
	//   claims, err := oidc.Verify(token, jwks, oidc.Expect{Issuer: "https://s3.eu-west-1.amazonaws.com/my-issuer"})
	fmt.Println(string(discovery))
	fmt.Println(string(jwks))
	// Output:
	// {"issuer":"https://s3.eu-west-1.amazonaws.com/my-issuer","jwks_uri":"https://s3.eu-west-1.amazonaws.com/my-issuer/openid/v1/jwks","response_types_supported":["id_token"],"subject_types_supported":["public"],"id_token_signing_alg_values_supported":["ES256"]}
	// {"keys":[{"use":"sig","kty":"EC","kid":"ZtWRi8YI_IUcwGyl1A86rhMKumc_CTSeVHVv02hVWYI","crv":"P-256","alg":"ES256","x":"EK12bEdt4mXesAKnjCOnRt2vVqc4nsAecHG8tzmQWJE","y":"iJ-Y56Vlvy371yil4U-sKOTi8GetXH5IGPZWxXNrn8I"}]}
}

func ExampleTrustPolicy() {
	issuer := "https://s3.eu-west-1.amazonaws.com/my-issuer"
	arn, _ := oidc.ProviderARN("aws", "123456789012", issuer)
	policy, _ := oidc.TrustPolicy(oidc.TrustPolicyOptions{ProviderARN: arn, Issuer: issuer, Namespace: "apps", ServiceAccount: "s3-reader"})
	fmt.Println(string(policy))
	// Output:
	// {
	//   "Version": "2012-10-17",
	//   "Statement": [
	//     {
	//       "Effect": "Allow",
	//       "Principal": {
	//         "Federated": "arn:aws:iam::123456789012:oidc-provider/s3.eu-west-1.amazonaws.com/my-issuer"
	//       },
	//       "Action": "sts:AssumeRoleWithWebIdentity",
	//       "Condition": {
	//         "StringEquals": {
	//           "s3.eu-west-1.amazonaws.com/my-issuer:aud": "sts.amazonaws.com",
	//           "s3.eu-west-1.amazonaws.com/my-issuer:sub": "system:serviceaccount:apps:s3-reader"
	//         }
	//       }
	//     }
	//   ]
	// }
}

func ExampleValidateIssuer() {
	warnings, err := oidc.ValidateIssuer("https://s3-us-west-2.amazonaws.com/aws-irsa-oidc/")
	fmt.Println(err)
	for _, w := range warnings {
		fmt.Println(w)
	}
	_, err = oidc.ValidateIssuer("https://my.bucket.s3.us-west-2.amazonaws.com")
	fmt.Println(err)
	// Output:
	// <nil>
	// issuer "https://s3-us-west-2.amazonaws.com/aws-irsa-oidc/" ends with a slash: it must then end with a slash everywhere (--service-account-issuer, discovery, token iss, IAM provider URL); prefer "https://s3-us-west-2.amazonaws.com/aws-irsa-oidc"
	// host "s3-us-west-2.amazonaws.com" is a legacy S3 endpoint; prefer https://s3.us-west-2.amazonaws.com/aws-irsa-oidc/
	// oidc: invalid issuer "https://my.bucket.s3.us-west-2.amazonaws.com": bucket "my.bucket" has dots and is addressed virtual-hosted style; the S3 wildcard certificate does not cover it, so STS cannot fetch the keys: use path style https://s3.<region>.amazonaws.com/my.bucket
}
