package awsfake

import (
	"encoding/xml"
	"net/http"
	"strings"

	"github.com/ekslink/ekslink/envtest/awstest"
)

func (s *Set) registerSTS() {
	s.STS.HandleAction("GetCallerIdentity", s.op(s.STS, "GetCallerIdentity", s.getCallerIdentity))
	// AssumeRoleWithWebIdentity is unsigned (the SDK resolves it to the anonymous auth scheme), so
	// the endpoint accepts anonymous requests; GetCallerIdentity still insists on a signature.
	s.STS.HandleAction("AssumeRoleWithWebIdentity", s.op(s.STS, "AssumeRoleWithWebIdentity", s.assumeRoleWithWebIdentity))
}

// getCallerIdentity answers for the static credentials (an IAM user) and for credentials EKS Auth
// issued (the assumed role). It answers JSON when asked (aws-iam-authenticator does), XML otherwise.
func (s *Set) getCallerIdentity(w http.ResponseWriter, r *http.Request) {
	akid := accessKeyID(r)
	if akid == "" {
		awstest.WriteQueryError(w, http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token")
		return
	}
	s.mu.Lock()
	role, ok := s.issued[akid]
	s.mu.Unlock()
	// An IAM user's UserId is its AIDA... id; an assumed role's is "<role id>:<session name>", the
	// assumeRoleId EKS Auth returned with the credentials.
	arn, userID := s.CallerARN(), "AIDA"+strings.ToUpper(akid)
	if ok {
		arn, userID = role.arn, role.userID
	}
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		awstest.WriteJSON(w, "application/json", map[string]any{
			"GetCallerIdentityResponse": map[string]any{
				"GetCallerIdentityResult": map[string]string{"Account": s.opts.AccountID, "Arn": arn, "UserId": userID},
				"ResponseMetadata":        map[string]string{"RequestId": "00000000-0000-4000-8000-000000000000"},
			},
		})
		return
	}
	type result struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	}
	type response struct {
		XMLName  xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ GetCallerIdentityResponse"`
		Result   result   `xml:"GetCallerIdentityResult"`
		Metadata struct {
			RequestID string `xml:"RequestId"`
		} `xml:"ResponseMetadata"`
	}
	out := response{Result: result{Arn: arn, UserID: userID, Account: s.opts.AccountID}}
	out.Metadata.RequestID = "00000000-0000-4000-8000-000000000000"
	awstest.WriteXML(w, out)
}

// accessKeyID extracts the signer's access key id from a header or presigned signature.
func accessKeyID(r *http.Request) string {
	cred := r.URL.Query().Get("X-Amz-Credential")
	if cred == "" {
		auth := r.Header.Get("Authorization")
		if i := strings.Index(auth, "Credential="); i >= 0 {
			cred = auth[i+len("Credential="):]
		}
	}
	if i := strings.IndexByte(cred, '/'); i >= 0 {
		return cred[:i]
	}
	return ""
}
