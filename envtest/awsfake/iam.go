package awsfake

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ekslink/ekslink/envtest/awstest"
)

// Role is a stored IAM role. The roles made through the IAM endpoint (CreateRole), with
// Set.CreateRole and with Set.PutRole are one set: STS AssumeRoleWithWebIdentity evaluates their
// trust policies.
type Role struct {
	// Name, Path and ARN identify the role.
	Name, Path, ARN string
	// TrustPolicy is the assume-role policy document as it was sent (IAM returns it URL-encoded).
	TrustPolicy string
	// Policies are the inline policies by name.
	Policies map[string]string
	// Tags are the role's tags.
	Tags map[string]string
	// ServiceLinked is set for roles made by CreateServiceLinkedRole.
	ServiceLinked bool
	id            string // AROA..., the RoleId IAM returns and STS puts before the session name
	created       time.Time
}

// serviceLinkedRoleNames are the role names IAM gives the service-linked roles this project needs
// (IAM's documentation: "Using service-linked roles for Amazon EKS", AmazonEKSConnectorServiceRolePolicy).
var serviceLinkedRoleNames = map[string]string{
	"eks-connector.amazonaws.com": "AWSServiceRoleForAmazonEKSConnector",
	"eks.amazonaws.com":           "AWSServiceRoleForAmazonEKS",
}

// roleNameRE is IAM's rule for role names.
//
// IAM answers a trust policy it cannot parse with MalformedPolicyDocument; this fake also refuses,
// with the same code, a trust policy it could not evaluate (parseTrustPolicy), so that a role never
// grants more here than in IAM.
var roleNameRE = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)

const iamNS = "https://iam.amazonaws.com/doc/2010-05-08/"

type iamMeta struct {
	RequestID string `xml:"RequestId"`
}

type iamTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type iamRole struct {
	Path                     string   `xml:"Path"`
	RoleName                 string   `xml:"RoleName"`
	RoleID                   string   `xml:"RoleId"`
	Arn                      string   `xml:"Arn"`
	CreateDate               string   `xml:"CreateDate"`
	AssumeRolePolicyDocument string   `xml:"AssumeRolePolicyDocument"`
	Tags                     []iamTag `xml:"Tags>member,omitempty"`
}

// registerIAM serves the IAM role actions of awsQuery (form-encoded POST, XML answers, documents
// URL-encoded in answers as IAM returns them). Error codes and messages follow the IAM API
// reference: NoSuchEntity (404), EntityAlreadyExists (409), InvalidInput (400), MalformedPolicyDocument.
func (s *Set) registerIAM() {
	s.IAM.HandleAction("GetRole", s.op(s.IAM, "GetRole", s.getRole))
	s.IAM.HandleAction("CreateRole", s.op(s.IAM, "CreateRole", s.createRole))
	s.IAM.HandleAction("UpdateAssumeRolePolicy", s.op(s.IAM, "UpdateAssumeRolePolicy", s.updateAssumeRolePolicy))
	s.IAM.HandleAction("GetRolePolicy", s.op(s.IAM, "GetRolePolicy", s.getRolePolicy))
	s.IAM.HandleAction("PutRolePolicy", s.op(s.IAM, "PutRolePolicy", s.putRolePolicy))
	s.IAM.HandleAction("TagRole", s.op(s.IAM, "TagRole", s.tagRole))
	s.IAM.HandleAction("CreateServiceLinkedRole", s.op(s.IAM, "CreateServiceLinkedRole", s.createServiceLinkedRole))
	s.registerIAMOIDC()
}

func form(r *http.Request) url.Values {
	b, _ := io.ReadAll(r.Body)
	v, _ := url.ParseQuery(string(b))
	return v
}

// formTags reads an awsQuery tag list: Tags.member.N.Key / Tags.member.N.Value.
func formTags(f url.Values) map[string]string {
	out := map[string]string{}
	for i := 1; ; i++ {
		k, ok := f["Tags.member."+strconv.Itoa(i)+".Key"]
		if !ok {
			return out
		}
		out[k[0]] = f.Get("Tags.member." + strconv.Itoa(i) + ".Value")
	}
}

func (s *Set) roleXML(r *Role) iamRole {
	out := iamRole{Path: r.Path, RoleName: r.Name, RoleID: r.id, Arn: r.ARN,
		CreateDate: r.created.UTC().Format(time.RFC3339), AssumeRolePolicyDocument: url.QueryEscape(r.TrustPolicy)}
	for k, v := range r.Tags {
		out.Tags = append(out.Tags, iamTag{k, v})
	}
	return out
}

func (s *Set) noSuchRole(w http.ResponseWriter, name string) {
	awstest.WriteQueryError(w, http.StatusNotFound, "NoSuchEntity", "The role with name "+name+" cannot be found.")
}

// validPolicy checks what IAM's MalformedPolicyDocument checks first: JSON with a Statement.
func validPolicy(w http.ResponseWriter, doc string) bool {
	if doc == "" || doc[0] != '{' {
		awstest.WriteQueryError(w, http.StatusBadRequest, "MalformedPolicyDocument", "Syntax errors in policy.")
		return false
	}
	return true
}

// validTrustPolicy refuses, as MalformedPolicyDocument, a trust policy that is not JSON or that
// this fake could not evaluate for STS.
func validTrustPolicy(w http.ResponseWriter, doc string) bool {
	if !validPolicy(w, doc) {
		return false
	}
	if _, err := parseTrustPolicy([]byte(doc)); err != nil {
		awstest.WriteQueryError(w, http.StatusBadRequest, "MalformedPolicyDocument", err.Error())
		return false
	}
	return true
}

func newRoleID() string { return "AROA" + strings.ToUpper(randomHex(8)) }

// roleByARN finds the role an ARN names (role names are unique in an account whatever the path);
// the caller holds s.mu.
func (s *Set) roleByARN(arn string) *Role {
	i := strings.LastIndex(arn, "/")
	if i < 0 {
		return nil
	}
	r := s.roles[arn[i+1:]]
	if r == nil || r.ARN != arn {
		return nil
	}
	return r
}

func (s *Set) getRole(w http.ResponseWriter, r *http.Request) {
	f := form(r)
	s.withRole(w, f.Get("RoleName"), func(role *Role) {
		type resp struct {
			XMLName xml.Name `xml:"GetRoleResponse"`
			Xmlns   string   `xml:"xmlns,attr"`
			Role    iamRole  `xml:"GetRoleResult>Role"`
			Meta    iamMeta  `xml:"ResponseMetadata"`
		}
		awstest.WriteXML(w, resp{Xmlns: iamNS, Role: s.roleXML(role), Meta: iamMeta{"r"}})
	})
}

func (s *Set) createRole(w http.ResponseWriter, r *http.Request) {
	f := form(r)
	name := f.Get("RoleName")
	if !roleNameRE.MatchString(name) {
		awstest.WriteQueryError(w, http.StatusBadRequest, "ValidationError", "1 validation error detected: Value at 'roleName' failed to satisfy constraint")
		return
	}
	if !validTrustPolicy(w, f.Get("AssumeRolePolicyDocument")) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.roles[name] != nil {
		awstest.WriteQueryError(w, http.StatusConflict, "EntityAlreadyExists", "Role with name "+name+" already exists.")
		return
	}
	path := f.Get("Path")
	if path == "" {
		path = "/"
	}
	role := &Role{Name: name, Path: path, ARN: "arn:aws:iam::" + s.opts.AccountID + ":role" + path + name,
		TrustPolicy: f.Get("AssumeRolePolicyDocument"), Policies: map[string]string{}, Tags: formTags(f), id: newRoleID(), created: s.opts.Now()}
	s.roles[name] = role
	type resp struct {
		XMLName xml.Name `xml:"CreateRoleResponse"`
		Xmlns   string   `xml:"xmlns,attr"`
		Role    iamRole  `xml:"CreateRoleResult>Role"`
		Meta    iamMeta  `xml:"ResponseMetadata"`
	}
	awstest.WriteXML(w, resp{Xmlns: iamNS, Role: s.roleXML(role), Meta: iamMeta{"r"}})
}

func (s *Set) emptyIAMAnswer(w http.ResponseWriter, action string) {
	w.Header().Set("Content-Type", "text/xml")
	_, _ = io.WriteString(w, `<`+action+`Response xmlns="`+iamNS+`"><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></`+action+`Response>`)
}

func (s *Set) updateAssumeRolePolicy(w http.ResponseWriter, r *http.Request) {
	f := form(r)
	if !validTrustPolicy(w, f.Get("PolicyDocument")) {
		return
	}
	s.withRole(w, f.Get("RoleName"), func(role *Role) {
		if role.ServiceLinked {
			awstest.WriteQueryError(w, http.StatusBadRequest, "UnmodifiableEntity", "Cannot perform the operation on the protected role '"+role.Name+"' - this role is only modifiable by AWS")
			return
		}
		role.TrustPolicy = f.Get("PolicyDocument")
		s.emptyIAMAnswer(w, "UpdateAssumeRolePolicy")
	})
}

func (s *Set) getRolePolicy(w http.ResponseWriter, r *http.Request) {
	f := form(r)
	s.withRole(w, f.Get("RoleName"), func(role *Role) {
		doc, ok := role.Policies[f.Get("PolicyName")]
		if !ok {
			awstest.WriteQueryError(w, http.StatusNotFound, "NoSuchEntity", "The role policy with name "+f.Get("PolicyName")+" cannot be found.")
			return
		}
		type resp struct {
			XMLName        xml.Name `xml:"GetRolePolicyResponse"`
			Xmlns          string   `xml:"xmlns,attr"`
			RoleName       string   `xml:"GetRolePolicyResult>RoleName"`
			PolicyName     string   `xml:"GetRolePolicyResult>PolicyName"`
			PolicyDocument string   `xml:"GetRolePolicyResult>PolicyDocument"`
			Meta           iamMeta  `xml:"ResponseMetadata"`
		}
		awstest.WriteXML(w, resp{Xmlns: iamNS, RoleName: role.Name, PolicyName: f.Get("PolicyName"), PolicyDocument: url.QueryEscape(doc), Meta: iamMeta{"r"}})
	})
}

func (s *Set) putRolePolicy(w http.ResponseWriter, r *http.Request) {
	f := form(r)
	if !validPolicy(w, f.Get("PolicyDocument")) {
		return
	}
	s.withRole(w, f.Get("RoleName"), func(role *Role) {
		role.Policies[f.Get("PolicyName")] = f.Get("PolicyDocument")
		s.emptyIAMAnswer(w, "PutRolePolicy")
	})
}

func (s *Set) tagRole(w http.ResponseWriter, r *http.Request) {
	f := form(r)
	s.withRole(w, f.Get("RoleName"), func(role *Role) {
		for k, v := range formTags(f) {
			role.Tags[k] = v
		}
		s.emptyIAMAnswer(w, "TagRole")
	})
}

// createServiceLinkedRole answers a role that exists as IAM does: InvalidInput, "Service role name
// <name> has been taken in this account, please try a different suffix." (not EntityAlreadyExists).
func (s *Set) createServiceLinkedRole(w http.ResponseWriter, r *http.Request) {
	f := form(r)
	svc := f.Get("AWSServiceName")
	name, ok := serviceLinkedRoleNames[svc]
	if !ok {
		awstest.WriteQueryError(w, http.StatusBadRequest, "InvalidInput", "Service name "+svc+" is not a valid service name.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.roles[name] != nil {
		awstest.WriteQueryError(w, http.StatusBadRequest, "InvalidInput", "Service role name "+name+" has been taken in this account, please try a different suffix.")
		return
	}
	path := "/aws-service-role/" + svc + "/"
	role := &Role{Name: name, Path: path, ARN: "arn:aws:iam::" + s.opts.AccountID + ":role" + path + name, ServiceLinked: true,
		TrustPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["` + svc + `"]},"Action":["sts:AssumeRole"]}]}`,
		Policies:    map[string]string{}, Tags: map[string]string{}, id: newRoleID(), created: s.opts.Now()}
	s.roles[name] = role
	type resp struct {
		XMLName xml.Name `xml:"CreateServiceLinkedRoleResponse"`
		Xmlns   string   `xml:"xmlns,attr"`
		Role    iamRole  `xml:"CreateServiceLinkedRoleResult>Role"`
		Meta    iamMeta  `xml:"ResponseMetadata"`
	}
	awstest.WriteXML(w, resp{Xmlns: iamNS, Role: s.roleXML(role), Meta: iamMeta{"r"}})
}

// PutRole stores a role as if made elsewhere (a console, another tool), for tests of drift.
func (s *Set) PutRole(r Role) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Path == "" {
		r.Path = "/"
	}
	if r.ARN == "" {
		r.ARN = "arn:aws:iam::" + s.opts.AccountID + ":role" + r.Path + r.Name
	}
	if r.Policies == nil {
		r.Policies = map[string]string{}
	}
	if r.Tags == nil {
		r.Tags = map[string]string{}
	}
	r.id, r.created = newRoleID(), s.opts.Now()
	s.roles[r.Name] = &r
}

// CreateRole creates a role with a trust policy (iam:CreateRole's AssumeRolePolicyDocument, the JSON
// as a user writes it or oidc.TrustPolicy generates it) and returns its ARN, as the IAM endpoint's
// CreateRole does: the same role is then in GetRole's answers and STS evaluates its trust policy. A
// policy this fake cannot evaluate is refused as MalformedPolicyDocument.
func (s *Set) CreateRole(name string, trustPolicy []byte) (string, error) {
	if !roleNameRE.MatchString(name) {
		return "", fmt.Errorf("awsfake: ValidationError: role name %q", name)
	}
	if _, err := parseTrustPolicy(trustPolicy); err != nil {
		return "", fmt.Errorf("awsfake: role %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.roles[name] != nil {
		return "", fmt.Errorf("awsfake: %w: role %s", errEntityAlreadyExists, name)
	}
	arn := "arn:aws:iam::" + s.opts.AccountID + ":role/" + name
	s.roles[name] = &Role{Name: name, Path: "/", ARN: arn, TrustPolicy: string(trustPolicy), Policies: map[string]string{}, Tags: map[string]string{},
		id: newRoleID(), created: s.opts.Now()}
	return arn, nil
}

// Role returns a copy of a stored role.
func (s *Set) Role(name string) (Role, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roles[name]
	if r == nil {
		return Role{}, false
	}
	c := *r
	c.Policies = map[string]string{}
	for k, v := range r.Policies {
		c.Policies[k] = v
	}
	c.Tags = map[string]string{}
	for k, v := range r.Tags {
		c.Tags[k] = v
	}
	return c, true
}

// withRole runs fn with the named role while holding the Set's lock, or answers IAM's
// NoSuchEntity when there is no such role.
func (s *Set) withRole(w http.ResponseWriter, name string, fn func(*Role)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	role := s.roles[name]
	if role == nil {
		s.noSuchRole(w, name)
		return
	}
	fn(role)
}
