package awsfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ekslink/ekslink/envtest/awstest"
)

// PodIdentityAudience is the audience of the projected tokens EKS Auth accepts.
const PodIdentityAudience = "pods.eks.amazonaws.com"

var podTokenAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512}

func (s *Set) registerEKSAuth() {
	s.EKSAuth.Handle("POST /clusters/{cluster}/assume-role-for-pod-identity", s.op(s.EKSAuth, "AssumeRoleForPodIdentity", s.assumeRoleForPodIdentity))
}

type tokenError struct{ code, msg string }

func (e *tokenError) Error() string { return e.code + ": " + e.msg }

// verifyPodToken checks the token's signature against the cluster's keys, then issuer, audience,
// expiry and subject. It returns namespace and service account.
func (s *Set) verifyPodToken(raw string) (string, string, error) {
	tok, err := jwt.ParseSigned(raw, podTokenAlgs)
	if err != nil {
		return "", "", &tokenError{"InvalidTokenException", "the token is not a signed JWT"}
	}
	var claims jwt.Claims
	verified := false
	for _, k := range s.opts.ServiceAccountKeys {
		if err := tok.Claims(k, &claims); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return "", "", &tokenError{"InvalidTokenException", "the token's signature does not verify"}
	}
	err = claims.ValidateWithLeeway(jwt.Expected{Issuer: s.opts.ServiceAccountIssuer, AnyAudience: jwt.Audience{PodIdentityAudience}, Time: s.opts.Now()}, 0)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return "", "", &tokenError{"ExpiredTokenException", "the token has expired"}
	case err != nil:
		return "", "", &tokenError{"InvalidTokenException", "token rejected: " + err.Error()}
	}
	parts := strings.Split(claims.Subject, ":")
	if len(parts) != 4 || parts[0] != "system" || parts[1] != "serviceaccount" || parts[2] == "" || parts[3] == "" {
		return "", "", &tokenError{"InvalidTokenException", "the token is not a service-account token"}
	}
	return parts[2], parts[3], nil
}

func (s *Set) assumeRoleForPodIdentity(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.authCalls++
	s.mu.Unlock()
	clusterName := r.PathValue("cluster")
	var in struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Token == "" {
		awstest.WriteRESTJSONError(w, 400, "InvalidRequestException", "token is required")
		return
	}
	ns, sa, err := s.verifyPodToken(in.Token)
	if err != nil {
		var te *tokenError
		errors.As(err, &te)
		awstest.WriteRESTJSONError(w, 400, te.code, te.msg)
		return
	}
	s.mu.Lock()
	a, ok := s.associations[clusterName+"/"+ns+"/"+sa]
	s.mu.Unlock()
	if !ok {
		awstest.WriteRESTJSONError(w, 404, "ResourceNotFoundException",
			fmt.Sprintf("no pod identity association for service account %s/%s in cluster %s", ns, sa, clusterName))
		return
	}
	now := s.opts.Now()
	creds := aws.Credentials{
		AccessKeyID:     "ASIA" + strings.ToUpper(randomHex(8)),
		SecretAccessKey: randomHex(20),
		SessionToken:    "IQoJb3JpZ2luX2VjE" + randomHex(32),
		CanExpire:       true,
		Expires:         now.Add(s.opts.CredentialTTL),
	}
	roleName := a.RoleARN[strings.LastIndex(a.RoleARN, "/")+1:]
	session := "eks-" + clusterName + "-" + sa
	if len(session) > 64 {
		session = session[:64]
	}
	assumedARN := fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", s.opts.AccountID, roleName, session)
	s.mu.Lock()
	assumeRoleID := "AROA" + strings.ToUpper(randomHex(8)) + ":" + session
	s.issued[creds.AccessKeyID] = issuedRole{arn: assumedARN, userID: assumeRoleID}
	s.mu.Unlock()
	s.STS.AddCredentials(creds)
	associationID := "a-" + randomHex(8)[:16]
	awstest.WriteJSON(w, "application/json", map[string]any{
		"subject":  map[string]string{"namespace": ns, "serviceAccount": sa},
		"audience": PodIdentityAudience,
		"podIdentityAssociation": map[string]string{
			"associationArn": fmt.Sprintf("arn:aws:eks:%s:%s:podidentityassociation/%s/%s", s.opts.Region, s.opts.AccountID, clusterName, associationID),
			"associationId":  associationID,
		},
		"assumedRoleUser": map[string]string{"arn": assumedARN, "assumeRoleId": assumeRoleID},
		"credentials": map[string]any{
			"accessKeyId":     creds.AccessKeyID,
			"secretAccessKey": creds.SecretAccessKey,
			"sessionToken":    creds.SessionToken,
			"expiration":      float64(creds.Expires.Unix()),
		},
	})
}
