package awsfake

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ekslink/ekslink/envtest/awstest"
	"github.com/ekslink/ekslink/oidc"
)

// OIDCProvider is an IAM OpenID Connect identity provider (iam:CreateOpenIDConnectProvider): the
// issuers whose tokens STS AssumeRoleWithWebIdentity accepts. The providers made through the IAM
// endpoint and those made with Set.CreateOIDCProvider are the same ones.
type OIDCProvider struct {
	// URL is the issuer, https://host[/path], byte for byte the tokens' iss. IAM returns it
	// without the scheme (GetOpenIDConnectProvider's Url).
	URL string
	// ClientIDs are the audiences accepted (IAM's client id list, e.g. sts.amazonaws.com).
	ClientIDs []string
	// Thumbprints are the server certificate thumbprints given to IAM (lower-case hex).
	Thumbprints []string
	created     time.Time
}

// registerIAMOIDC serves the IAM OIDC provider actions oidc/publish calls (awsQuery), with IAM's
// answers: the ARN arn:aws:iam::<account>:oidc-provider/<host/path>, EntityAlreadyExists (409)
// for a second provider of a URL, NoSuchEntity (404) for an unknown ARN, InvalidInput for a URL
// that is not https.
func (s *Set) registerIAMOIDC() {
	s.IAM.HandleAction("ListOpenIDConnectProviders", s.op(s.IAM, "ListOpenIDConnectProviders", s.listOIDCProviders))
	s.IAM.HandleAction("GetOpenIDConnectProvider", s.op(s.IAM, "GetOpenIDConnectProvider", s.getOIDCProvider))
	s.IAM.HandleAction("CreateOpenIDConnectProvider", s.op(s.IAM, "CreateOpenIDConnectProvider", s.createOIDCProvider))
	s.IAM.HandleAction("AddClientIDToOpenIDConnectProvider", s.op(s.IAM, "AddClientIDToOpenIDConnectProvider", s.updateOIDCProvider(func(p *OIDCProvider, f url.Values) {
		if id := f.Get("ClientID"); !slices.Contains(p.ClientIDs, id) {
			p.ClientIDs = append(p.ClientIDs, id)
		}
	})))
	s.IAM.HandleAction("UpdateOpenIDConnectProviderThumbprint", s.op(s.IAM, "UpdateOpenIDConnectProviderThumbprint", s.updateOIDCProvider(func(p *OIDCProvider, f url.Values) {
		p.Thumbprints = formMembers(f, "ThumbprintList")
	})))
}

type memberList struct {
	Member []string `xml:"member"`
}

// formMembers reads an awsQuery list: Name.member.1, Name.member.2, ...
func formMembers(f url.Values, name string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := f[name+".member."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

func (s *Set) noSuchProvider(w http.ResponseWriter, arn string) {
	awstest.WriteQueryError(w, http.StatusNotFound, "NoSuchEntity", "OpenIDConnect provider not found for arn "+arn)
}

func (s *Set) listOIDCProviders(w http.ResponseWriter, _ *http.Request) {
	type entry struct {
		Arn string `xml:"Arn"`
	}
	type resp struct {
		XMLName xml.Name `xml:"ListOpenIDConnectProvidersResponse"`
		Xmlns   string   `xml:"xmlns,attr"`
		List    []entry  `xml:"ListOpenIDConnectProvidersResult>OpenIDConnectProviderList>member"`
		Meta    iamMeta  `xml:"ResponseMetadata"`
	}
	out := resp{Xmlns: iamNS, Meta: iamMeta{"r"}}
	s.mu.Lock()
	for arn := range s.providers {
		out.List = append(out.List, entry{arn})
	}
	s.mu.Unlock()
	sort.Slice(out.List, func(i, j int) bool { return out.List[i].Arn < out.List[j].Arn })
	awstest.WriteXML(w, out)
}

func (s *Set) getOIDCProvider(w http.ResponseWriter, r *http.Request) {
	arn := form(r).Get("OpenIDConnectProviderArn")
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.providers[arn]
	if p == nil {
		s.noSuchProvider(w, arn)
		return
	}
	type resp struct {
		XMLName     xml.Name   `xml:"GetOpenIDConnectProviderResponse"`
		Xmlns       string     `xml:"xmlns,attr"`
		Thumbprints memberList `xml:"GetOpenIDConnectProviderResult>ThumbprintList"`
		CreateDate  string     `xml:"GetOpenIDConnectProviderResult>CreateDate"`
		ClientIDs   memberList `xml:"GetOpenIDConnectProviderResult>ClientIDList"`
		URL         string     `xml:"GetOpenIDConnectProviderResult>Url"`
		Meta        iamMeta    `xml:"ResponseMetadata"`
	}
	awstest.WriteXML(w, resp{Xmlns: iamNS, Thumbprints: memberList{p.Thumbprints}, CreateDate: p.created.UTC().Format(time.RFC3339),
		ClientIDs: memberList{p.ClientIDs}, URL: oidc.IssuerHostPath(p.URL), Meta: iamMeta{"r"}})
}

func (s *Set) createOIDCProvider(w http.ResponseWriter, r *http.Request) {
	f := form(r)
	arn, err := s.addOIDCProvider(OIDCProvider{URL: f.Get("Url"), ClientIDs: formMembers(f, "ClientIDList"), Thumbprints: formMembers(f, "ThumbprintList")})
	switch {
	case errors.Is(err, errEntityAlreadyExists):
		awstest.WriteQueryError(w, http.StatusConflict, "EntityAlreadyExists", "Provider with url "+f.Get("Url")+" already exists.")
		return
	case err != nil:
		awstest.WriteQueryError(w, http.StatusBadRequest, "InvalidInput", err.Error())
		return
	}
	type resp struct {
		XMLName xml.Name `xml:"CreateOpenIDConnectProviderResponse"`
		Xmlns   string   `xml:"xmlns,attr"`
		Arn     string   `xml:"CreateOpenIDConnectProviderResult>OpenIDConnectProviderArn"`
		Meta    iamMeta  `xml:"ResponseMetadata"`
	}
	awstest.WriteXML(w, resp{Xmlns: iamNS, Arn: arn, Meta: iamMeta{"r"}})
}

func (s *Set) updateOIDCProvider(apply func(p *OIDCProvider, f url.Values)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f := form(r)
		arn := f.Get("OpenIDConnectProviderArn")
		action := f.Get("Action")
		s.mu.Lock()
		defer s.mu.Unlock()
		p := s.providers[arn]
		if p == nil {
			s.noSuchProvider(w, arn)
			return
		}
		apply(p, f)
		s.emptyIAMAnswer(w, action)
	}
}

// errEntityAlreadyExists is IAM's EntityAlreadyExists.
var errEntityAlreadyExists = errors.New("EntityAlreadyExists")

// addOIDCProvider stores a provider as CreateOpenIDConnectProvider does: the URL must be https,
// the ARN is derived from its host and path, and a second provider for it is EntityAlreadyExists.
func (s *Set) addOIDCProvider(p OIDCProvider) (string, error) {
	if !strings.HasPrefix(p.URL, "https://") {
		return "", fmt.Errorf("the URL %q of an OpenID Connect provider must begin with https://", p.URL)
	}
	arn, err := oidc.ProviderARN("aws", s.opts.AccountID, p.URL)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.providers[arn]; ok {
		return "", fmt.Errorf("awsfake: %w: provider %s", errEntityAlreadyExists, arn)
	}
	s.providers[arn] = &OIDCProvider{URL: p.URL, ClientIDs: slices.Clone(p.ClientIDs), Thumbprints: slices.Clone(p.Thumbprints), created: s.opts.Now()}
	return arn, nil
}

// CreateOIDCProvider registers an IAM OIDC provider and returns its ARN
// (arn:aws:iam::<account>:oidc-provider/<host/path>), as iam:CreateOpenIDConnectProvider does; the
// IAM endpoint then lists and describes it and STS trusts it. Tokens need an audience among
// ClientIDs, so at least one is required here.
func (s *Set) CreateOIDCProvider(p OIDCProvider) (string, error) {
	if len(p.ClientIDs) == 0 {
		return "", errors.New("awsfake: an OIDC provider needs at least one client id (the token audience, e.g. sts.amazonaws.com)")
	}
	return s.addOIDCProvider(p)
}

// PutOIDCProvider stores a provider under arn as if made elsewhere (a console, another tool),
// replacing any, for tests of drift; URL must be the issuer with its https:// scheme.
func (s *Set) PutOIDCProvider(arn string, p OIDCProvider) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.providers[arn] = &OIDCProvider{URL: p.URL, ClientIDs: slices.Clone(p.ClientIDs), Thumbprints: slices.Clone(p.Thumbprints), created: s.opts.Now()}
}

// OIDCProviderByARN returns a copy of the provider with the ARN.
func (s *Set) OIDCProviderByARN(arn string) (OIDCProvider, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.providers[arn]
	if p == nil {
		return OIDCProvider{}, false
	}
	return OIDCProvider{URL: p.URL, ClientIDs: slices.Clone(p.ClientIDs), Thumbprints: slices.Clone(p.Thumbprints), created: p.created}, true
}
