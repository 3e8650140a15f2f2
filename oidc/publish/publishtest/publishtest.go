package publishtest

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ekslink/ekslink/envtest/awstest"
)

// Object is a stored S3 object.
type Object struct {
	// Body is the object's content.
	Body []byte
	// ContentType and CacheControl are the headers it was put with.
	ContentType, CacheControl string
}

// Bucket is a stored bucket.
type Bucket struct {
	// Objects are the bucket's objects by key.
	Objects map[string]Object
	// Policy is the bucket policy JSON ("" for none).
	Policy string
	// PublicAccessBlock holds BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy and
	// RestrictPublicBuckets (nil: no configuration).
	PublicAccessBlock map[string]bool
}

// S3 is an in-memory S3 speaking restXml, path style, behind awstest's SigV4 check.
type S3 struct {
	*awstest.Server
	mu      sync.Mutex
	buckets map[string]*Bucket
}

// NewS3 starts an S3 endpoint for region, closed at test cleanup.
func NewS3(t testing.TB, region string) *S3 {
	srv := awstest.New(t, awstest.Options{Service: "s3", Region: region, Protocol: awstest.RESTXML})
	f := &S3{Server: srv, buckets: map[string]*Bucket{}}
	srv.Handle("/{bucket}", f.serveBucket)
	srv.Handle("/{bucket}/{key...}", f.serveObject)
	return f
}

func (f *S3) serveBucket(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := r.PathValue("bucket")
	b := f.buckets[name]
	q := r.URL.Query()
	if b == nil && !(r.Method == http.MethodPut && len(q) == 0) {
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		awstest.WriteS3Error(w, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
		return
	}
	body := readBody(r)
	switch {
	case r.Method == http.MethodHead:
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodPut && len(q) == 0:
		f.buckets[name] = &Bucket{Objects: map[string]Object{}}
		w.Header().Set("Location", "/"+name)
	case q.Has("policy") && r.Method == http.MethodGet:
		if b.Policy == "" {
			awstest.WriteS3Error(w, http.StatusNotFound, "NoSuchBucketPolicy", "The bucket policy does not exist")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(b.Policy))
	case q.Has("policy") && r.Method == http.MethodPut:
		if b.PublicAccessBlock["BlockPublicPolicy"] && strings.Contains(string(body), `"Principal":"*"`) {
			awstest.WriteS3Error(w, http.StatusForbidden, "AccessDenied", "public policies are blocked by the BlockPublicPolicy block public access setting")
			return
		}
		b.Policy = string(body)
		w.WriteHeader(http.StatusNoContent)
	case q.Has("publicAccessBlock") && r.Method == http.MethodGet:
		if b.PublicAccessBlock == nil {
			awstest.WriteS3Error(w, http.StatusNotFound, "NoSuchPublicAccessBlockConfiguration", "The public access block configuration was not found")
			return
		}
		type pabXML struct {
			XMLName               xml.Name `xml:"PublicAccessBlockConfiguration"`
			BlockPublicAcls       bool
			IgnorePublicAcls      bool
			BlockPublicPolicy     bool
			RestrictPublicBuckets bool
		}
		awstest.WriteXML(w, pabXML{BlockPublicAcls: b.PublicAccessBlock["BlockPublicAcls"], IgnorePublicAcls: b.PublicAccessBlock["IgnorePublicAcls"], BlockPublicPolicy: b.PublicAccessBlock["BlockPublicPolicy"], RestrictPublicBuckets: b.PublicAccessBlock["RestrictPublicBuckets"]})
	case q.Has("publicAccessBlock") && r.Method == http.MethodPut:
		var in struct {
			BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets bool
		}
		if err := xml.Unmarshal(body, &in); err != nil {
			awstest.WriteS3Error(w, http.StatusBadRequest, "MalformedXML", err.Error())
			return
		}
		b.PublicAccessBlock = map[string]bool{"BlockPublicAcls": in.BlockPublicAcls, "IgnorePublicAcls": in.IgnorePublicAcls, "BlockPublicPolicy": in.BlockPublicPolicy, "RestrictPublicBuckets": in.RestrictPublicBuckets}
	default:
		awstest.WriteS3Error(w, http.StatusNotImplemented, "NotImplemented", r.Method+" "+r.URL.String())
	}
}

func (f *S3) serveObject(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.buckets[r.PathValue("bucket")]
	if b == nil {
		awstest.WriteS3Error(w, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
		return
	}
	key := r.PathValue("key")
	switch r.Method {
	case http.MethodGet:
		o, ok := b.Objects[key]
		if !ok {
			awstest.WriteS3Error(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
			return
		}
		w.Header().Set("Content-Type", o.ContentType)
		w.Header().Set("Cache-Control", o.CacheControl)
		_, _ = w.Write(o.Body)
	case http.MethodPut:
		body := readBody(r)
		if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
			awstest.WriteS3Error(w, http.StatusNotImplemented, "NotImplemented", "publishtest does not decode aws-chunked bodies")
			return
		}
		if want := r.Header.Get("X-Amz-Checksum-Crc32"); want != "" {
			got := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(body)))
			if got != want {
				awstest.WriteS3Error(w, http.StatusBadRequest, "BadDigest", "The CRC32 you specified did not match the calculated checksum.")
				return
			}
		}
		b.Objects[key] = Object{Body: body, ContentType: r.Header.Get("Content-Type"), CacheControl: r.Header.Get("Cache-Control")}
		w.Header().Set("ETag", `"etag"`)
	default:
		awstest.WriteS3Error(w, http.StatusNotImplemented, "NotImplemented", r.Method)
	}
}

func readBody(r *http.Request) []byte {
	b, _ := io.ReadAll(r.Body)
	return b
}

// IAM is an in-memory IAM (awsQuery) holding OIDC providers.
type IAM struct {
	*awstest.Server
	mu        sync.Mutex
	providers map[string]*Provider // by ARN
}

// Provider is a stored IAM OIDC provider.
type Provider struct {
	// URL is stored without https://, as IAM returns it.
	URL string
	// ClientIDs and Thumbprints are the provider's audiences and certificate thumbprints.
	ClientIDs, Thumbprints []string
}

// AccountID is the account of every provider ARN.
const AccountID = "123456789012"

type memberList struct {
	Member []string `xml:"member"`
}

// NewIAM starts an IAM endpoint, closed at test cleanup. IAM signs with us-east-1 in the aws
// partition; a client whose endpoint is overridden signs with its own region, so tests pass that.
func NewIAM(t testing.TB, region string) *IAM {
	srv := awstest.New(t, awstest.Options{Service: "iam", Region: region, Protocol: awstest.Query})
	f := &IAM{Server: srv, providers: map[string]*Provider{}}
	const ns = "https://iam.amazonaws.com/doc/2010-05-08/"
	type meta struct {
		RequestID string `xml:"RequestId"`
	}
	srv.HandleAction("ListOpenIDConnectProviders", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		type entry struct {
			Arn string `xml:"Arn"`
		}
		type resp struct {
			XMLName xml.Name `xml:"ListOpenIDConnectProvidersResponse"`
			Xmlns   string   `xml:"xmlns,attr"`
			List    []entry  `xml:"ListOpenIDConnectProvidersResult>OpenIDConnectProviderList>member"`
			Meta    meta     `xml:"ResponseMetadata"`
		}
		out := resp{Xmlns: ns, Meta: meta{"r"}}
		for arn := range f.providers {
			out.List = append(out.List, entry{arn})
		}
		awstest.WriteXML(w, out)
	})
	srv.HandleAction("GetOpenIDConnectProvider", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		form := parseForm(r)
		p := f.providers[form.Get("OpenIDConnectProviderArn")]
		if p == nil {
			awstest.WriteQueryError(w, http.StatusNotFound, "NoSuchEntity", "OpenIDConnect provider not found")
			return
		}
		type resp struct {
			XMLName     xml.Name   `xml:"GetOpenIDConnectProviderResponse"`
			Xmlns       string     `xml:"xmlns,attr"`
			Thumbprints memberList `xml:"GetOpenIDConnectProviderResult>ThumbprintList"`
			CreateDate  string     `xml:"GetOpenIDConnectProviderResult>CreateDate"`
			ClientIDs   memberList `xml:"GetOpenIDConnectProviderResult>ClientIDList"`
			URL         string     `xml:"GetOpenIDConnectProviderResult>Url"`
			Meta        meta       `xml:"ResponseMetadata"`
		}
		awstest.WriteXML(w, resp{Xmlns: ns, Thumbprints: memberList{p.Thumbprints}, CreateDate: "2026-11-23T12:00:00Z", ClientIDs: memberList{p.ClientIDs}, URL: p.URL, Meta: meta{"r"}})
	})
	srv.HandleAction("CreateOpenIDConnectProvider", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		form := parseForm(r)
		u := strings.TrimPrefix(form.Get("Url"), "https://")
		arn := "arn:aws:iam::" + AccountID + ":oidc-provider/" + u
		if f.providers[arn] != nil {
			awstest.WriteQueryError(w, http.StatusConflict, "EntityAlreadyExists", "Provider with url https://"+u+" already exists.")
			return
		}
		f.providers[arn] = &Provider{URL: u, ClientIDs: members(form, "ClientIDList"), Thumbprints: members(form, "ThumbprintList")}
		type resp struct {
			XMLName xml.Name `xml:"CreateOpenIDConnectProviderResponse"`
			Xmlns   string   `xml:"xmlns,attr"`
			Arn     string   `xml:"CreateOpenIDConnectProviderResult>OpenIDConnectProviderArn"`
			Meta    meta     `xml:"ResponseMetadata"`
		}
		awstest.WriteXML(w, resp{Xmlns: ns, Arn: arn, Meta: meta{"r"}})
	})
	empty := func(name string, apply func(p *Provider, form url.Values)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			defer f.mu.Unlock()
			form := parseForm(r)
			p := f.providers[form.Get("OpenIDConnectProviderArn")]
			if p == nil {
				awstest.WriteQueryError(w, http.StatusNotFound, "NoSuchEntity", "OpenIDConnect provider not found")
				return
			}
			apply(p, form)
			w.Header().Set("Content-Type", "text/xml")
			_, _ = w.Write([]byte(`<` + name + `Response xmlns="` + ns + `"><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></` + name + `Response>`))
		}
	}
	srv.HandleAction("AddClientIDToOpenIDConnectProvider", empty("AddClientIDToOpenIDConnectProvider", func(p *Provider, form url.Values) {
		if id := form.Get("ClientID"); !slices.Contains(p.ClientIDs, id) {
			p.ClientIDs = append(p.ClientIDs, id)
		}
	}))
	srv.HandleAction("UpdateOpenIDConnectProviderThumbprint", empty("UpdateOpenIDConnectProviderThumbprint", func(p *Provider, form url.Values) {
		p.Thumbprints = members(form, "ThumbprintList")
	}))
	return f
}

func parseForm(r *http.Request) url.Values {
	v, _ := url.ParseQuery(string(readBody(r)))
	return v
}

// members reads an awsQuery list: Name.member.1, Name.member.2, ...
func members(form url.Values, name string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[name+".member."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

// Bucket returns a copy of a bucket.
func (f *S3) Bucket(name string) (Bucket, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.buckets[name]
	if !ok {
		return Bucket{}, false
	}
	out := Bucket{Objects: map[string]Object{}, Policy: b.Policy}
	for k, v := range b.Objects {
		out.Objects[k] = v
	}
	if b.PublicAccessBlock != nil {
		out.PublicAccessBlock = map[string]bool{}
		for k, v := range b.PublicAccessBlock {
			out.PublicAccessBlock[k] = v
		}
	}
	return out, true
}

// PutBucket stores a bucket (a nil Objects map is allowed).
func (f *S3) PutBucket(name string, b Bucket) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b.Objects == nil {
		b.Objects = map[string]Object{}
	}
	f.buckets[name] = &b
}

// Provider returns a copy of the provider with the ARN.
func (f *IAM) Provider(arn string) (Provider, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.providers[arn]
	if !ok {
		return Provider{}, false
	}
	return Provider{URL: p.URL, ClientIDs: slices.Clone(p.ClientIDs), Thumbprints: slices.Clone(p.Thumbprints)}, true
}

// PutProvider stores a provider.
func (f *IAM) PutProvider(arn string, p Provider) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.providers[arn] = &p
}

// Writes lists the mutating requests the endpoints have seen (S3: anything but GET and HEAD; IAM:
// any action but List* and Get*), as "s3 PUT /bucket/key?..." and "iam Action=...".
func Writes(s3 *S3, iam *IAM) []string {
	var out []string
	for _, r := range s3.Requests() {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			out = append(out, "s3 "+r.Method+" "+r.Path+"?"+r.Query.Encode())
		}
	}
	for _, r := range iam.Requests() {
		form, _ := url.ParseQuery(string(r.Body))
		a := form.Get("Action")
		if !strings.HasPrefix(a, "List") && !strings.HasPrefix(a, "Get") {
			out = append(out, "iam Action="+a)
		}
	}
	return out
}
