package publish_test

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ekslink/ekslink/internal/awstest"
)

type object struct {
	body                      []byte
	contentType, cacheControl string
}

type bucket struct {
	objects map[string]object
	policy  string
	pab     map[string]bool // nil: no configuration
}

// fakeS3 is an in-memory S3 speaking restXml, path style, behind awstest's SigV4 check.
type fakeS3 struct {
	*awstest.Server
	mu      sync.Mutex
	buckets map[string]*bucket
}

func newFakeS3(t *testing.T) *fakeS3 { return newFakeS3Bench(t) }

func newFakeS3Bench(t testing.TB) *fakeS3 {
	f := &fakeS3{Server: awstest.New(t, awstest.Options{Service: "s3", Region: "eu-west-1", Protocol: awstest.RESTXML}), buckets: map[string]*bucket{}}
	f.Handle("/{bucket}", f.serveBucket)
	f.Handle("/{bucket}/{key...}", f.serveObject)
	return f
}

func (f *fakeS3) serveBucket(w http.ResponseWriter, r *http.Request) {
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
		f.buckets[name] = &bucket{objects: map[string]object{}}
		w.Header().Set("Location", "/"+name)
	case q.Has("policy") && r.Method == http.MethodGet:
		if b.policy == "" {
			awstest.WriteS3Error(w, http.StatusNotFound, "NoSuchBucketPolicy", "The bucket policy does not exist")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(b.policy))
	case q.Has("policy") && r.Method == http.MethodPut:
		if b.pab["BlockPublicPolicy"] && strings.Contains(string(body), `"Principal":"*"`) {
			awstest.WriteS3Error(w, http.StatusForbidden, "AccessDenied", "public policies are blocked by the BlockPublicPolicy block public access setting")
			return
		}
		b.policy = string(body)
		w.WriteHeader(http.StatusNoContent)
	case q.Has("publicAccessBlock") && r.Method == http.MethodGet:
		if b.pab == nil {
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
		awstest.WriteXML(w, pabXML{BlockPublicAcls: b.pab["BlockPublicAcls"], IgnorePublicAcls: b.pab["IgnorePublicAcls"], BlockPublicPolicy: b.pab["BlockPublicPolicy"], RestrictPublicBuckets: b.pab["RestrictPublicBuckets"]})
	case q.Has("publicAccessBlock") && r.Method == http.MethodPut:
		var in struct {
			BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets bool
		}
		if err := xml.Unmarshal(body, &in); err != nil {
			awstest.WriteS3Error(w, http.StatusBadRequest, "MalformedXML", err.Error())
			return
		}
		b.pab = map[string]bool{"BlockPublicAcls": in.BlockPublicAcls, "IgnorePublicAcls": in.IgnorePublicAcls, "BlockPublicPolicy": in.BlockPublicPolicy, "RestrictPublicBuckets": in.RestrictPublicBuckets}
	default:
		awstest.WriteS3Error(w, http.StatusNotImplemented, "NotImplemented", r.Method+" "+r.URL.String())
	}
}

func (f *fakeS3) serveObject(w http.ResponseWriter, r *http.Request) {
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
		o, ok := b.objects[key]
		if !ok {
			awstest.WriteS3Error(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
			return
		}
		w.Header().Set("Content-Type", o.contentType)
		w.Header().Set("Cache-Control", o.cacheControl)
		_, _ = w.Write(o.body)
	case http.MethodPut:
		b.objects[key] = object{body: readBody(r), contentType: r.Header.Get("Content-Type"), cacheControl: r.Header.Get("Cache-Control")}
		w.Header().Set("ETag", `"etag"`)
	default:
		awstest.WriteS3Error(w, http.StatusNotImplemented, "NotImplemented", r.Method)
	}
}

func readBody(r *http.Request) []byte {
	b, _ := io.ReadAll(r.Body)
	return b
}

// fakeIAM is an in-memory IAM (awsQuery) holding OIDC providers.
type fakeIAM struct {
	*awstest.Server
	mu        sync.Mutex
	providers map[string]*provider // by ARN
}

type provider struct {
	url                    string
	clientIDs, thumbprints []string
}

const account = "123456789012"

type memberList struct {
	Member []string `xml:"member"`
}

func newFakeIAM(t *testing.T) *fakeIAM { return newFakeIAMBench(t) }

func newFakeIAMBench(t testing.TB) *fakeIAM {
	f := &fakeIAM{Server: awstest.New(t, awstest.Options{Service: "iam", Region: "us-east-1", Protocol: awstest.Query}), providers: map[string]*provider{}}
	const ns = "https://iam.amazonaws.com/doc/2010-05-08/"
	type meta struct {
		RequestID string `xml:"RequestId"`
	}
	f.HandleAction("ListOpenIDConnectProviders", func(w http.ResponseWriter, r *http.Request) {
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
	f.HandleAction("GetOpenIDConnectProvider", func(w http.ResponseWriter, r *http.Request) {
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
		awstest.WriteXML(w, resp{Xmlns: ns, Thumbprints: memberList{p.thumbprints}, CreateDate: "2026-11-23T12:00:00Z", ClientIDs: memberList{p.clientIDs}, URL: p.url, Meta: meta{"r"}})
	})
	f.HandleAction("CreateOpenIDConnectProvider", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		form := parseForm(r)
		u := strings.TrimPrefix(form.Get("Url"), "https://")
		arn := "arn:aws:iam::" + account + ":oidc-provider/" + u
		if f.providers[arn] != nil {
			awstest.WriteQueryError(w, http.StatusConflict, "EntityAlreadyExists", "Provider with url https://"+u+" already exists.")
			return
		}
		f.providers[arn] = &provider{url: u, clientIDs: members(form, "ClientIDList"), thumbprints: members(form, "ThumbprintList")}
		type resp struct {
			XMLName xml.Name `xml:"CreateOpenIDConnectProviderResponse"`
			Xmlns   string   `xml:"xmlns,attr"`
			Arn     string   `xml:"CreateOpenIDConnectProviderResult>OpenIDConnectProviderArn"`
			Meta    meta     `xml:"ResponseMetadata"`
		}
		awstest.WriteXML(w, resp{Xmlns: ns, Arn: arn, Meta: meta{"r"}})
	})
	empty := func(name string, apply func(p *provider, form url.Values)) http.HandlerFunc {
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
	f.HandleAction("AddClientIDToOpenIDConnectProvider", empty("AddClientIDToOpenIDConnectProvider", func(p *provider, form url.Values) {
		if id := form.Get("ClientID"); !slices.Contains(p.clientIDs, id) {
			p.clientIDs = append(p.clientIDs, id)
		}
	}))
	f.HandleAction("UpdateOpenIDConnectProviderThumbprint", empty("UpdateOpenIDConnectProviderThumbprint", func(p *provider, form url.Values) {
		p.thumbprints = members(form, "ThumbprintList")
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
