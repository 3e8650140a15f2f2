package publishtest

import (
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ekslink/ekslink/envtest/awstest"
)

// Endpoint is the running AWS endpoint behind a fake: an HTTPS server that verifies SigV4 with the
// SDK's signer and records the requests it accepted.
type Endpoint struct {
	// Server is the HTTPS server: URL, Certificate, Client, Close.
	*httptest.Server
	srv *awstest.Server
}

func newEndpoint(srv *awstest.Server) *Endpoint {
	return &Endpoint{Server: srv.Server, srv: srv}
}

// Request is a recorded request, after signature verification.
type Request struct {
	// Method is the HTTP method.
	Method string
	// Path is the URL path.
	Path string
	// Query is the URL query.
	Query url.Values
	// Header is the request header.
	Header http.Header
	// Body is the request body.
	Body []byte
	// AccessKeyID is the signer's access key id.
	AccessKeyID string
}

// Config returns an aws.Config that signs with the endpoint's credentials, trusts its certificate
// and sends every service's requests to it (BaseEndpoint).
func (e *Endpoint) Config() aws.Config { return e.srv.Config() }

// Requests returns the requests accepted so far.
func (e *Endpoint) Requests() []Request {
	recorded := e.srv.Requests()
	out := make([]Request, len(recorded))
	for i, r := range recorded {
		out[i] = Request(r)
	}
	return out
}

// Reset forgets the recorded requests.
func (e *Endpoint) Reset() { e.srv.Reset() }
