package awstest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Protocol is the wire protocol of the emulated service; it decides the shape of error answers.
type Protocol int

// Protocols.
const (
	// JSON is awsJson1.0/1.1 (SSM, ...): {"__type","message"} bodies, X-Amz-Target dispatch.
	JSON Protocol = iota
	// RESTJSON is restJson1 (EKS, EKS Auth): X-Amzn-ErrorType header, {"message"} body.
	RESTJSON
	// Query is awsQuery (STS, IAM): Action parameter, <ErrorResponse> XML.
	Query
	// RESTXML is restXml (S3): <Error> XML.
	RESTXML
)

// Test credentials every Server accepts by default.
const (
	AccessKeyID     = "AKIDEKSLINKTEST00001"
	SecretAccessKey = "ekslink-test-secret-access-key-0000000001"
	SessionToken    = "ekslink-test-session-token"
)

// DefaultRegion is the region of a Server whose Options leave it empty.
const DefaultRegion = "us-west-2"

// Options configure a Server.
type Options struct {
	// Service is the SigV4 signing name (required unless Anonymous).
	Service string
	// Region is the signing region (default DefaultRegion).
	Region string
	// Protocol decides how errors are shaped.
	Protocol Protocol
	// Anonymous accepts unsigned requests (SSM RegisterManagedInstance is anonymous); signed requests
	// are still verified.
	Anonymous bool
	// Credentials are the accepted credentials (default: AccessKeyID/SecretAccessKey with SessionToken).
	Credentials []aws.Credentials
	// Now is the server's clock (default time.Now).
	Now func() time.Time
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
	// AccessKeyID is the signer's access key id ("" for anonymous requests).
	AccessKeyID string
}

// Server is an httptest TLS server that verifies SigV4 and dispatches to operation handlers.
type Server struct {
	*httptest.Server
	opts     Options
	verifier *Verifier

	mu       sync.Mutex
	targets  map[string]http.HandlerFunc
	actions  map[string]http.HandlerFunc
	mux      *http.ServeMux
	requests []Request
	creds    aws.Credentials
	issued   map[string]aws.Credentials
}

// New starts a Server, closed at test cleanup.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s := NewServer(opts)
	t.Cleanup(s.Close)
	return s
}

// NewServer starts a Server the caller closes (for use outside tests, such as the demo).
func NewServer(opts Options) *Server {
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if len(opts.Credentials) == 0 {
		opts.Credentials = []aws.Credentials{{AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey, SessionToken: SessionToken}}
	}
	known := map[string]aws.Credentials{}
	for _, c := range opts.Credentials {
		known[c.AccessKeyID] = c
	}
	s := &Server{
		opts:     opts,
		verifier: &Verifier{Service: opts.Service, Region: opts.Region, Credentials: known, Now: opts.Now},
		targets:  map[string]http.HandlerFunc{},
		actions:  map[string]http.HandlerFunc{},
		mux:      http.NewServeMux(),
		creds:    opts.Credentials[0],
		issued:   map[string]aws.Credentials{},
	}
	s.verifier.Lookup = s.lookupIssued
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	return s
}

// Handle registers a handler for a REST path pattern (http.ServeMux syntax, e.g.
// "POST /clusters/{name}/assume-role-for-pod-identity").
func (s *Server) Handle(pattern string, h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mux.HandleFunc(pattern, h)
}

// HandleTarget registers a handler for an awsJson X-Amz-Target (e.g.
// "AmazonSSM.RegisterManagedInstance").
func (s *Server) HandleTarget(target string, h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targets[target] = h
}

// HandleAction registers a handler for an awsQuery Action (e.g. "GetCallerIdentity"); the action
// may come in the query string (presigned GET) or in a form body (POST).
func (s *Server) HandleAction(action string, h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.actions[action] = h
}

// AddCredentials makes the server accept c from now on (for credentials an emulated service issues
// while it runs). Safe for concurrent use.
func (s *Server) AddCredentials(c aws.Credentials) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued[c.AccessKeyID] = c
}

func (s *Server) lookupIssued(accessKeyID string) (aws.Credentials, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.issued[accessKeyID]
	return c, ok
}

// Requests returns the requests seen so far (signature-verified or anonymous-allowed).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Reset forgets the recorded requests.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// Credentials are the credentials Config signs with.
func (s *Server) Credentials() aws.Credentials { return s.creds }

// Region is the server's signing region.
func (s *Server) Region() string { return s.opts.Region }

// Config returns an aws.Config that signs with the server's credentials, trusts its certificate and
// sends every service's requests to it (BaseEndpoint).
func (s *Server) Config() aws.Config {
	return aws.Config{
		Region:       s.opts.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(s.creds.AccessKeyID, s.creds.SecretAccessKey, s.creds.SessionToken),
		HTTPClient:   s.Client(),
		BaseEndpoint: aws.String(s.URL),
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	akid := ""
	if Signed(r) || !s.opts.Anonymous {
		creds, err := s.verifier.Verify(r, body)
		if err != nil {
			code := "SignatureDoesNotMatch"
			if se, ok := err.(*SignatureError); ok {
				code = se.Code
			}
			s.WriteError(w, http.StatusForbidden, code, err.Error())
			return
		}
		akid = creds.AccessKeyID
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body, AccessKeyID: akid})
	var h http.HandlerFunc
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		h = s.targets[target]
	} else if action := queryAction(r, body); action != "" {
		h = s.actions[action]
	}
	mux := s.mux
	s.mu.Unlock()
	if h != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		h(w, r)
		return
	}
	if _, pattern := mux.Handler(r); pattern != "" {
		mux.ServeHTTP(w, r)
		return
	}
	s.WriteError(w, http.StatusBadRequest, "UnknownOperationException", fmt.Sprintf("no handler for %s %s", r.Method, r.URL.Path))
}

func queryAction(r *http.Request, body []byte) string {
	if a := r.URL.Query().Get("Action"); a != "" {
		return a
	}
	if r.Method == http.MethodPost && bytes.Contains([]byte(r.Header.Get("Content-Type")), []byte("x-www-form-urlencoded")) {
		if v, err := url.ParseQuery(string(body)); err == nil {
			return v.Get("Action")
		}
	}
	return ""
}

// WriteError answers an error in the shape of the server's protocol.
func (s *Server) WriteError(w http.ResponseWriter, status int, code, message string) {
	switch s.opts.Protocol {
	case JSON:
		WriteJSONError(w, status, code, message)
	case RESTJSON:
		WriteRESTJSONError(w, status, code, message)
	case Query:
		WriteQueryError(w, status, code, message)
	case RESTXML:
		WriteS3Error(w, status, code, message)
	}
}

// WriteJSON answers 200 with v as JSON and the given content type (application/json when empty).
func WriteJSON(w http.ResponseWriter, contentType string, v any) {
	if contentType == "" {
		contentType = "application/json"
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-RequestId", "00000000-0000-4000-8000-000000000000")
	_ = json.NewEncoder(w).Encode(v)
}

// WriteJSONError writes an awsJson1.1 error: {"__type":"<code>","message":"..."}.
func WriteJSONError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", "00000000-0000-4000-8000-000000000000")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": message})
}

// WriteRESTJSONError writes a restJson1 error: X-Amzn-ErrorType header and {"message"} body.
func WriteRESTJSONError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.Header().Set("X-Amzn-RequestId", "00000000-0000-4000-8000-000000000000")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": message})
}

// WriteXML answers 200 with v marshalled as XML (text/xml).
func WriteXML(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "text/xml")
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(v)
}

// WriteQueryError writes an awsQuery error (<ErrorResponse><Error><Type><Code><Message>).
func WriteQueryError(w http.ResponseWriter, status int, code, message string) {
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	type errorBody struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	type errorResponse struct {
		XMLName   xml.Name  `xml:"ErrorResponse"`
		Error     errorBody `xml:"Error"`
		RequestID string    `xml:"RequestId"`
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(errorResponse{Error: errorBody{Type: typ, Code: code, Message: message}, RequestID: "00000000-0000-4000-8000-000000000000"})
}

// WriteS3Error writes a restXml (S3) error (<Error><Code><Message>).
func WriteS3Error(w http.ResponseWriter, status int, code, message string) {
	type s3Error struct {
		XMLName   xml.Name `xml:"Error"`
		Code      string   `xml:"Code"`
		Message   string   `xml:"Message"`
		RequestID string   `xml:"RequestId"`
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(s3Error{Code: code, Message: message, RequestID: "0000000000000000"})
}
