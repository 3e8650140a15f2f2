package impersonation

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ekslink/ekslink/iamarn"
)

func TestParseARNCanonicalizesSessionsAndKeepsTheRest(t *testing.T) {
	tests := []struct {
		name, arn, canonical, kind, session string
	}{
		{"user", "arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/alice", KindUser, ""},
		{"user with path", "arn:aws:iam::123456789012:user/dev/alice", "arn:aws:iam::123456789012:user/dev/alice", KindUser, ""},
		{"role with path kept as given", "arn:aws-us-gov:iam::123456789012:role/svc/Deployer", "arn:aws-us-gov:iam::123456789012:role/svc/Deployer", KindRole, ""},
		{"assumed role to role without path", "arn:aws:sts::123456789012:assumed-role/Admin/alice@example.com", "arn:aws:iam::123456789012:role/Admin", KindAssumedRole, "alice@example.com"},
		{"assumed role in China", "arn:aws-cn:sts::123456789012:assumed-role/Admin/s", "arn:aws-cn:iam::123456789012:role/Admin", KindAssumedRole, "s"},
		{"assumed role in ISO-B", "arn:aws-iso-b:sts::123456789012:assumed-role/Admin/s", "arn:aws-iso-b:iam::123456789012:role/Admin", KindAssumedRole, "s"},
		{"assumed role in EUSC", "arn:aws-eusc:sts::123456789012:assumed-role/Admin/s", "arn:aws-eusc:iam::123456789012:role/Admin", KindAssumedRole, "s"},
		{"root", "arn:aws-iso:iam::123456789012:root", "arn:aws-iso:iam::123456789012:root", KindRoot, ""},
		{"federated user", "arn:aws-iso-f:sts::123456789012:federated-user/bob", "arn:aws-iso-f:sts::123456789012:federated-user/bob", KindFederatedUser, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseARN(tc.arn)
			if err != nil {
				t.Fatal(err)
			}
			if p.ARN != tc.arn || p.CanonicalARN != tc.canonical || p.Kind != tc.kind || p.SessionName != tc.session {
				t.Fatalf("%+v", p)
			}
			// The EKS Connector's contract: Impersonate-User only.
			if id, _ := DefaultMapper(p); id.User != tc.arn || id.UID != "" || len(id.Groups) != 0 || len(id.Extra) != 0 {
				t.Errorf("default mapping %+v", id)
			}
			id, _ := ExtrasMapper(p)
			if id.User != tc.arn || id.Extra[ExtraARN][0] != tc.arn || len(id.Groups) != 0 {
				t.Errorf("extras mapping %+v", id)
			}
			if (tc.session != "") != (len(id.Extra[ExtraSessionName]) == 1) {
				t.Errorf("session extra %+v", id.Extra)
			}
			if id, _ := CanonicalMapper(p); id.User != tc.canonical || len(id.Extra) != 0 {
				t.Errorf("canonical mapping %+v", id)
			}
		})
	}
}

func TestParseARNRejects(t *testing.T) {
	for _, tc := range []struct {
		arn  string
		want error
	}{
		{"", ErrInvalidIdentity},
		{"system:masters", ErrReservedIdentity},
		{"System:Node:foo", ErrReservedIdentity},
		{"arn:aws:iam::123456789012:group/admins", ErrInvalidIdentity},
		{"arn:aws:sts::123456789012:assumed-role/Admin", ErrInvalidIdentity},
		{"arn:aws:sts::123456789012:assumed-role/Admin/a/b", ErrInvalidIdentity},
		{"arn:aws:iam::123456789012:user/al ice", ErrInvalidIdentity},
		{"arn:aws:iam::123456789012:user/", ErrInvalidIdentity},
		{"arn:aws:ec2::123456789012:instance/i-1", ErrInvalidIdentity},
	} {
		_, err := ParseARN(tc.arn)
		if !errors.Is(err, tc.want) {
			t.Errorf("ParseARN(%q) = %v, want %v", tc.arn, err, tc.want)
		}
		// Callers can tell why: the reason is the typed error of the public iamarn package.
		var pe *iamarn.ParseError
		if tc.want == ErrInvalidIdentity && (!errors.As(err, &pe) || !errors.Is(err, iamarn.ErrInvalid) || pe.Reason == "") {
			t.Errorf("ParseARN(%q) = %#v, want it to wrap an *iamarn.ParseError", tc.arn, err)
		}
	}
}

// The Kind constants are the iamarn kinds, so a Mapper can compare with either.
func TestPrincipalKindsAreTheIAMARNKinds(t *testing.T) {
	for kind, want := range map[string]iamarn.Kind{
		KindUser: iamarn.User, KindRole: iamarn.Role, KindAssumedRole: iamarn.AssumedRole,
		KindRoot: iamarn.Root, KindFederatedUser: iamarn.FederatedUser,
	} {
		if kind != string(want) {
			t.Errorf("kind %q != iamarn %q", kind, want)
		}
	}
}

func TestSanitizeHandlesNonCanonicalKeysAndUpgrades(t *testing.T) {
	h := map[string][]string{
		"connection":                {"Upgrade, impersonate-user"},
		"upgrade":                   {"SPDY/3.1"},
		"impersonate-user":          {"system:admin"},
		"IMPERSONATE-GROUP":         {"system:masters"},
		"x-remote-user":             {"root"},
		"X-Forwarded-Client-Cert":   {"x"},
		"Sec-Websocket-Protocol":    {"v5.channel.k8s.io"},
		"X-Stream-Protocol-Version": {"v4.channel.k8s.io"},
		"Content-Type":              {"application/json"},
		"Proxy-Connection":          {"keep-alive"},
		"Transfer-Encoding":         {"chunked"},
	}
	Sanitize(h)
	want := map[string]string{
		"Connection":                "Upgrade",
		"Upgrade":                   "SPDY/3.1",
		"Sec-Websocket-Protocol":    "v5.channel.k8s.io",
		"X-Stream-Protocol-Version": "v4.channel.k8s.io",
		"Content-Type":              "application/json",
	}
	if len(h) != len(want) {
		t.Errorf("headers left: %v", h)
	}
	for k, v := range want {
		if len(h[k]) != 1 || h[k][0] != v {
			t.Errorf("%s = %v, want %s", k, h[k], v)
		}
	}
}

// The API server authenticates a WebSocket request by a bearer token carried as a subprotocol
// ("base64url.bearer.authorization.k8s.io.<token>") when the Authorization header fails: a
// client credential, so it must not cross the proxy; the real subprotocols must.
func TestSanitizeRemovesWebSocketBearerSubprotocols(t *testing.T) {
	h := http.Header{
		"Connection":             {"Upgrade"},
		"Upgrade":                {"websocket"},
		"Sec-Websocket-Protocol": {"v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.c3RvbGVu", " BASE64URL.Bearer.Authorization.K8s.Io.eA ,v4.channel.k8s.io"},
	}
	Sanitize(h)
	if got := fmt.Sprint(h["Sec-Websocket-Protocol"]); got != "[v5.channel.k8s.io, v4.channel.k8s.io]" {
		t.Errorf("Sec-WebSocket-Protocol = %s", got)
	}
	only := http.Header{"sec-websocket-protocol": {"base64url.bearer.authorization.k8s.io.c3RvbGVu"}}
	Sanitize(only)
	if len(only) != 0 {
		t.Errorf("headers left: %v", only)
	}
}

// Requests built in-process (not parsed by net/http) can carry the header under non-canonical
// keys: every spelling counts, so two values are ambiguous and a lone lowercase one is found.
func TestHeaderIdentityCountsEverySpelling(t *testing.T) {
	get := HeaderIdentity(DefaultIdentityHeader)
	r := &http.Request{Header: http.Header{"x-aws-eks-identity-arn": {"arn:aws:iam::123456789012:user/alice"}}}
	if got, err := get(r); err != nil || got != "arn:aws:iam::123456789012:user/alice" {
		t.Errorf("lowercase key: %q %v", got, err)
	}
	r.Header["X-Aws-Eks-Identity-Arn"] = []string{"arn:aws:iam::123456789012:user/bob"}
	if got, err := get(r); !errors.Is(err, ErrAmbiguousIdentity) {
		t.Errorf("two spellings: %q %v, want ErrAmbiguousIdentity", got, err)
	}
}

// Watches and log follows are classified as the API server parses the flag (anything but absent,
// "0" or "false" is true), so the stream gauge and the small stream buffers cover them all.
func TestRequestKindFollowsTheAPIServersBooleanParsing(t *testing.T) {
	for target, want := range map[string]string{
		"/api/v1/pods?watch=true":                         "watch",
		"/api/v1/pods?watch=1":                            "watch",
		"/api/v1/pods?watch=True":                         "watch",
		"/api/v1/pods?watch=t":                            "watch",
		"/api/v1/pods?watch":                              "watch",
		"/api/v1/namespaces/d/pods/p/log?follow=yes":      "watch",
		"/api/v1/watch/pods":                              "watch",
		"/api/v1/pods?watch=false":                        "request",
		"/api/v1/pods?watch=FALSE":                        "request",
		"/api/v1/pods?watch=0":                            "request",
		"/api/v1/pods?allowWatchBookmarks=true":           "request",
		"/api/v1/namespaces/d/pods/p/log?follow=false":    "request",
		"/api/v1/namespaces/d/configmaps?limit=1&x=watch": "request",
	} {
		r, _ := http.NewRequest(http.MethodGet, "http://proxy"+target, nil)
		if got := requestKind(r); got != want {
			t.Errorf("%s: %s, want %s", target, got, want)
		}
	}
}

func TestReservedNameMatchesLowercasedPrefix(t *testing.T) {
	for _, s := range []string{"system:masters", "SYSTEM:x", "System:", "sYsTeM:serviceaccount:a:b", "system", "systemx:", "ſystem:masters", "\u212Asystem:", "", "arn:aws:iam::1:user/system:x", "system\u0130:"} {
		want := strings.HasPrefix(strings.ToLower(s), "system:")
		if got := reservedName(s); got != want {
			t.Errorf("reservedName(%q) = %v, want %v", s, got, want)
		}
	}
}
