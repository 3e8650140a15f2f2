package publishtest

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/ekslink/ekslink/envtest/awsfake"
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

// IAM is the IAM endpoint (awsQuery) of an envtest/awsfake Set: the OIDC providers publish
// creates there are the ones the Set's STS AssumeRoleWithWebIdentity trusts, beside the Set's
// roles.
type IAM struct {
	*awstest.Server
	// Set is the running awsfake set whose IAM endpoint this is (its STS, roles, Fail and Calls).
	Set *awsfake.Set
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

// NewIAM starts an awsfake Set in account AccountID and returns its IAM endpoint; the Set is
// closed at test cleanup. IAM signs with us-east-1 in the aws partition; a client whose endpoint
// is overridden signs with its own region, so tests pass that.
func NewIAM(t testing.TB, region string) *IAM {
	t.Helper()
	set, err := awsfake.Start(awsfake.Options{Region: region, AccountID: AccountID})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	return &IAM{Server: set.IAM, Set: set}
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
	p, ok := f.Set.OIDCProviderByARN(arn)
	if !ok {
		return Provider{}, false
	}
	return Provider{URL: strings.TrimPrefix(p.URL, "https://"), ClientIDs: p.ClientIDs, Thumbprints: p.Thumbprints}, true
}

// PutProvider stores a provider as if made elsewhere.
func (f *IAM) PutProvider(arn string, p Provider) {
	f.Set.PutOIDCProvider(arn, awsfake.OIDCProvider{URL: "https://" + p.URL, ClientIDs: p.ClientIDs, Thumbprints: p.Thumbprints})
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
