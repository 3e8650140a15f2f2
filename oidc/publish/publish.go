package publish

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/go-logr/logr"

	"github.com/ekslink/ekslink/iamarn"
	"github.com/ekslink/ekslink/oidc"
)

// PolicySid is the Sid of the bucket-policy statement Publish owns; other statements are kept.
const PolicySid = "EksLinkOIDCPublicRead"

// Errors, matched with errors.Is.
var (
	// ErrPublicAccessBlocked means the bucket's Block Public Access settings forbid the public
	// bucket policy STS needs; set Site.UnblockPublicPolicy or change them yourself.
	ErrPublicAccessBlocked = errors.New("publish: bucket blocks public bucket policies")
	// ErrBucketMissing means the bucket does not exist and Site.CreateBucket is false.
	ErrBucketMissing = errors.New("publish: bucket does not exist")
	// ErrInvalidSite is a Site that cannot be published as given.
	ErrInvalidSite = errors.New("publish: invalid site")
)

// S3API is the part of *s3.Client Publish uses.
type S3API interface {
	HeadBucket(context.Context, *s3.HeadBucketInput, ...func(*s3.Options)) (*s3.HeadBucketOutput, error)
	CreateBucket(context.Context, *s3.CreateBucketInput, ...func(*s3.Options)) (*s3.CreateBucketOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetBucketPolicy(context.Context, *s3.GetBucketPolicyInput, ...func(*s3.Options)) (*s3.GetBucketPolicyOutput, error)
	PutBucketPolicy(context.Context, *s3.PutBucketPolicyInput, ...func(*s3.Options)) (*s3.PutBucketPolicyOutput, error)
	GetPublicAccessBlock(context.Context, *s3.GetPublicAccessBlockInput, ...func(*s3.Options)) (*s3.GetPublicAccessBlockOutput, error)
	PutPublicAccessBlock(context.Context, *s3.PutPublicAccessBlockInput, ...func(*s3.Options)) (*s3.PutPublicAccessBlockOutput, error)
}

// IAMAPI is the part of *iam.Client Publish uses.
type IAMAPI interface {
	ListOpenIDConnectProviders(context.Context, *iam.ListOpenIDConnectProvidersInput, ...func(*iam.Options)) (*iam.ListOpenIDConnectProvidersOutput, error)
	GetOpenIDConnectProvider(context.Context, *iam.GetOpenIDConnectProviderInput, ...func(*iam.Options)) (*iam.GetOpenIDConnectProviderOutput, error)
	CreateOpenIDConnectProvider(context.Context, *iam.CreateOpenIDConnectProviderInput, ...func(*iam.Options)) (*iam.CreateOpenIDConnectProviderOutput, error)
	AddClientIDToOpenIDConnectProvider(context.Context, *iam.AddClientIDToOpenIDConnectProviderInput, ...func(*iam.Options)) (*iam.AddClientIDToOpenIDConnectProviderOutput, error)
	UpdateOpenIDConnectProviderThumbprint(context.Context, *iam.UpdateOpenIDConnectProviderThumbprintInput, ...func(*iam.Options)) (*iam.UpdateOpenIDConnectProviderThumbprintOutput, error)
}

// Publisher uploads the documents to S3 and manages the IAM OIDC provider.
type Publisher struct {
	S3     S3API
	IAM    IAMAPI
	Region string
	Log    logr.Logger
}

// Options configure NewFromConfig, as the Options of an aws-sdk-go-v2 service client do:
// NewFromConfig fills them from the aws.Config, then applies the caller's functions. Zero values
// take what the aws.Config holds.
type Options struct {
	// Region overrides the aws.Config region (where a missing bucket is created).
	Region string
	// HTTPClient sends the S3 and IAM requests (default aws.Config.HTTPClient).
	HTTPClient aws.HTTPClient
	// Retryer decides retries of both clients (default aws.Config.Retryer).
	Retryer aws.Retryer
	// S3BaseEndpoint and IAMBaseEndpoint override each service's endpoint ("https://host[:port]");
	// nil leaves the SDK's resolution (AWS_ENDPOINT_URL_S3, aws.Config.BaseEndpoint, the
	// regional endpoint).
	S3BaseEndpoint, IAMBaseEndpoint *string
	// Logger receives one line per change Publish makes (default: discard).
	Logger logr.Logger
}

// NewFromConfig builds a Publisher from an aws.Config, then applies optFns in order. S3 uses
// path-style addressing (bucket names with dots work, and it matches the recommended issuer
// https://s3.<region>.amazonaws.com/<bucket>).
func NewFromConfig(cfg aws.Config, optFns ...func(*Options)) *Publisher {
	o := Options{Region: cfg.Region, HTTPClient: cfg.HTTPClient}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	// Both clients share the options that are not per service through a copy of the aws.Config.
	cfg = cfg.Copy()
	cfg.Region, cfg.HTTPClient = o.Region, o.HTTPClient
	if o.Retryer != nil {
		cfg.Retryer = func() aws.Retryer { return o.Retryer }
	}
	return &Publisher{
		S3: s3.NewFromConfig(cfg, func(so *s3.Options) {
			so.UsePathStyle = true
			if o.S3BaseEndpoint != nil {
				so.BaseEndpoint = o.S3BaseEndpoint
			}
		}),
		IAM: iam.NewFromConfig(cfg, func(io *iam.Options) {
			if o.IAMBaseEndpoint != nil {
				io.BaseEndpoint = o.IAMBaseEndpoint
			}
		}),
		Region: o.Region,
		Log:    o.Logger,
	}
}

// Site is what to publish.
type Site struct {
	// Issuer is the issuer URL. For https://s3.<region>.amazonaws.com/<bucket>[/<prefix>] and
	// https://<bucket>.s3.<region>.amazonaws.com[/<prefix>] the bucket and key prefix are derived;
	// for other hosts (CloudFront, custom domains) set Bucket and the issuer path is the prefix.
	Issuer string
	// Bucket overrides the bucket derived from Issuer.
	Bucket string
	// Discovery and JWKS are the documents (oidc.Documents). The JWKS object key is derived from
	// the discovery document's jwks_uri, which must lie under the issuer.
	Discovery []byte
	JWKS      []byte
	// ClientIDs of the IAM provider (default oidc.DefaultAudience). Missing ones are added;
	// extra ones already on the provider are kept.
	ClientIDs []string
	// Thumbprints of the IAM provider. Empty leaves IAM to compute and manage them (possible for
	// CAs IAM trusts, such as S3's); when set, the provider's list is made equal to it.
	Thumbprints []string
	// CreateBucket creates a missing bucket in the Publisher's region.
	CreateBucket bool
	// UnblockPublicPolicy turns off BlockPublicPolicy and RestrictPublicBuckets on the bucket when
	// they are on (ACL blocking stays on). Without it such a bucket is an ErrPublicAccessBlocked.
	UnblockPublicPolicy bool
	// DryRun reports the changes without making them.
	DryRun bool
}

// Result says what Publish did (or, with DryRun, would do).
type Result struct {
	Bucket       string
	DiscoveryKey string
	JWKSKey      string
	ProviderARN  string
	// Changes lists every write, in order; empty means everything was already up to date.
	Changes []string
}

// RegionFromIssuer returns the region of an S3-hosted issuer (https://s3.<region>.amazonaws.com/...,
// https://<bucket>.s3.<region>.amazonaws.com/..., legacy s3-<region>; us-east-1 for the global
// s3.amazonaws.com), or false for other hosts.
func RegionFromIssuer(issuer string) (string, bool) {
	u, err := url.Parse(issuer)
	if err != nil {
		return "", false
	}
	host := u.Hostname()
	m := pathStyleHost.FindStringSubmatch(host)
	if m == nil {
		if m = virtualStyleHost.FindStringSubmatch(host); m == nil {
			return "", false
		}
		m = m[1:]
	}
	region := strings.TrimSuffix(m[1], ".")
	if region == "" {
		return "us-east-1", true
	}
	return region, true
}

var (
	pathStyleHost    = regexp.MustCompile(`^s3[.-]([a-z0-9-]+\.)?amazonaws\.com(\.cn)?$`)
	virtualStyleHost = regexp.MustCompile(`^([a-z0-9][a-z0-9.-]*)\.s3[.-]([a-z0-9-]+\.)?amazonaws\.com(\.cn)?$`)
)

func (s Site) locate(clientRegion string) (bucket, prefix, discKey, jwksKey string, err error) {
	if _, err := oidc.ValidateIssuer(s.Issuer); err != nil {
		return "", "", "", "", err
	}
	u, _ := url.Parse(s.Issuer)
	path := strings.Trim(u.Path, "/")
	switch {
	case s.Bucket != "":
		bucket, prefix = s.Bucket, path
		if pathStyleHost.MatchString(u.Hostname()) {
			first, rest, _ := strings.Cut(path, "/")
			if first != s.Bucket {
				return "", "", "", "", fmt.Errorf("%w: issuer path starts with %q but bucket is %q", ErrInvalidSite, first, s.Bucket)
			}
			prefix = rest
		}
		if m := virtualStyleHost.FindStringSubmatch(u.Hostname()); m != nil && m[1] != s.Bucket {
			return "", "", "", "", fmt.Errorf("%w: issuer host names bucket %q but bucket is %q", ErrInvalidSite, m[1], s.Bucket)
		}
	case pathStyleHost.MatchString(u.Hostname()):
		bucket, prefix, _ = strings.Cut(path, "/")
	case virtualStyleHost.MatchString(u.Hostname()):
		bucket, prefix = virtualStyleHost.FindStringSubmatch(u.Hostname())[1], path
	}
	if bucket == "" {
		return "", "", "", "", fmt.Errorf("%w: cannot derive the bucket from issuer %q; set Bucket", ErrInvalidSite, s.Issuer)
	}
	if region, ok := RegionFromIssuer(s.Issuer); ok && clientRegion != "" && region != clientRegion {
		return "", "", "", "", fmt.Errorf("%w: issuer %q is in %s but the S3 client is configured for %s (use --region %s)", ErrInvalidSite, s.Issuer, region, clientRegion, region)
	}
	if prefix != "" {
		prefix += "/"
	}
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(s.Discovery, &disc); err != nil {
		return "", "", "", "", fmt.Errorf("%w: discovery document: %v", ErrInvalidSite, err)
	}
	if disc.Issuer != s.Issuer {
		return "", "", "", "", fmt.Errorf("%w: discovery issuer %q differs from %q", ErrInvalidSite, disc.Issuer, s.Issuer)
	}
	rel, ok := strings.CutPrefix(disc.JWKSURI, strings.TrimSuffix(s.Issuer, "/")+"/")
	if !ok || rel == "" {
		return "", "", "", "", fmt.Errorf("%w: jwks_uri %q is not under the issuer %q, so it cannot be served from the bucket", ErrInvalidSite, disc.JWKSURI, s.Issuer)
	}
	if len(s.JWKS) == 0 {
		return "", "", "", "", fmt.Errorf("%w: empty JWKS", ErrInvalidSite)
	}
	if !bucketName.MatchString(bucket) {
		return "", "", "", "", fmt.Errorf("%w: %q is not a valid S3 bucket name", ErrInvalidSite, bucket)
	}
	// The keys become Resource ARNs of a public-read statement: a policy wildcard (* or ?) or
	// variable (${...}) there would open more than the two documents, and a query, fragment or
	// escape in the jwks_uri would name an object other than the one uploaded.
	discKey, jwksKey = prefix+strings.TrimPrefix(oidc.DiscoveryPath, "/"), prefix+rel
	for _, k := range []string{discKey, jwksKey} {
		if strings.ContainsAny(k, "*?$%#") {
			return "", "", "", "", fmt.Errorf("%w: object key %q contains one of * ? $ %% #: the issuer path and jwks_uri must name plain S3 keys (a wildcard would make more than the two documents public)", ErrInvalidSite, k)
		}
	}
	return bucket, prefix, discKey, jwksKey, nil
}

// bucketName is the S3 bucket naming rule (3 to 63 lowercase letters, digits, dots, hyphens).
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// Publish makes S3 and IAM match the site: the bucket (optionally created) holds both documents
// with kube-apiserver's content types and Cache-Control, a bucket-policy statement (Sid
// PolicySid) grants public s3:GetObject on exactly those two keys, and an IAM OIDC provider for
// the issuer has the client ids (and thumbprints, when given). It reads before it writes, so a
// second run with the same input only reads.
func (p *Publisher) Publish(ctx context.Context, site Site) (*Result, error) {
	bucket, _, discKey, jwksKey, err := site.locate(p.Region)
	if err != nil {
		return nil, err
	}
	res := &Result{Bucket: bucket, DiscoveryKey: discKey, JWKSKey: jwksKey}
	change := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		res.Changes = append(res.Changes, msg)
		p.Log.Info("publish", "change", msg, "dryRun", site.DryRun)
	}
	created, err := p.ensureBucket(ctx, site, bucket, change)
	if err != nil {
		return res, err
	}
	if created && site.DryRun {
		// Nothing to read in a bucket that does not exist yet.
		change("put s3://%s/%s (%s)", bucket, discKey, oidc.ContentTypeDiscovery)
		change("put s3://%s/%s (%s)", bucket, jwksKey, oidc.ContentTypeJWKS)
		change("put bucket policy statement %s on %s (public read of %d objects)", PolicySid, bucket, 2)
	} else if err := p.ensureSite(ctx, site, bucket, discKey, jwksKey, change); err != nil {
		return res, err
	}
	if res.ProviderARN, err = p.ensureProvider(ctx, site, change); err != nil {
		return res, err
	}
	return res, nil
}

func (p *Publisher) ensureSite(ctx context.Context, site Site, bucket, discKey, jwksKey string, change func(string, ...any)) error {
	for _, o := range []struct {
		key, ctype string
		body       []byte
	}{{discKey, oidc.ContentTypeDiscovery, site.Discovery}, {jwksKey, oidc.ContentTypeJWKS, site.JWKS}} {
		if err := p.ensureObject(ctx, site, bucket, o.key, o.ctype, o.body, change); err != nil {
			return err
		}
	}
	return p.ensurePolicy(ctx, site, bucket, []string{discKey, jwksKey}, change)
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func (p *Publisher) ensureBucket(ctx context.Context, site Site, bucket string, change func(string, ...any)) (created bool, err error) {
	_, err = p.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket})
	if err == nil {
		return false, nil
	}
	var nf *s3types.NotFound
	if !errors.As(err, &nf) && apiCode(err) != "NotFound" && apiCode(err) != "NoSuchBucket" {
		return false, fmt.Errorf("publish: checking bucket %s: %w", bucket, err)
	}
	if !site.CreateBucket {
		return false, fmt.Errorf("%w: %s (create it or set CreateBucket)", ErrBucketMissing, bucket)
	}
	change("create bucket %s in %s", bucket, p.Region)
	if site.DryRun {
		return true, nil
	}
	in := &s3.CreateBucketInput{Bucket: &bucket}
	if p.Region != "" && p.Region != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(p.Region)}
	}
	if _, err := p.S3.CreateBucket(ctx, in); err != nil {
		return false, fmt.Errorf("publish: creating bucket %s: %w", bucket, err)
	}
	return true, nil
}

func (p *Publisher) ensureObject(ctx context.Context, site Site, bucket, key, ctype string, body []byte, change func(string, ...any)) error {
	out, err := p.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	switch {
	case err == nil:
		current, rerr := io.ReadAll(io.LimitReader(out.Body, 1<<20))
		_ = out.Body.Close()
		if rerr != nil {
			return fmt.Errorf("publish: reading s3://%s/%s: %w", bucket, key, rerr)
		}
		if bytes.Equal(current, body) && aws.ToString(out.ContentType) == ctype && aws.ToString(out.CacheControl) == oidc.CacheControl {
			return nil
		}
	case apiCode(err) == "NoSuchKey":
	default:
		return fmt.Errorf("publish: reading s3://%s/%s: %w", bucket, key, err)
	}
	change("put s3://%s/%s (%s)", bucket, key, ctype)
	if site.DryRun {
		return nil
	}
	// A precomputed checksum goes in a header: S3 still verifies it, and the SDK sends a plain
	// signed body instead of an aws-chunked stream with a trailing checksum.
	sum := crc32.ChecksumIEEE(body)
	_, err = p.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &bucket, Key: &key, Body: bytes.NewReader(body),
		ContentType: aws.String(ctype), CacheControl: aws.String(oidc.CacheControl),
		ContentLength: aws.Int64(int64(len(body))),
		ChecksumCRC32: aws.String(base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, sum))),
	})
	if err != nil {
		return fmt.Errorf("publish: writing s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

type bucketPolicy struct {
	Version   string           `json:"Version"`
	ID        string           `json:"Id,omitempty"`
	Statement []map[string]any `json:"Statement"`
}

func (p *Publisher) ensurePolicy(ctx context.Context, site Site, bucket string, keys []string, change func(string, ...any)) error {
	pab, err := p.S3.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: &bucket})
	switch {
	case err == nil && pab.PublicAccessBlockConfiguration != nil:
		c := *pab.PublicAccessBlockConfiguration
		if aws.ToBool(c.BlockPublicPolicy) || aws.ToBool(c.RestrictPublicBuckets) {
			if !site.UnblockPublicPolicy {
				return fmt.Errorf("%w: %s has BlockPublicPolicy=%v RestrictPublicBuckets=%v; STS must read the documents anonymously (set UnblockPublicPolicy / --unblock-public-policy, or serve them elsewhere)",
					ErrPublicAccessBlocked, bucket, aws.ToBool(c.BlockPublicPolicy), aws.ToBool(c.RestrictPublicBuckets))
			}
			change("allow public bucket policies on %s (BlockPublicPolicy, RestrictPublicBuckets off; ACL blocks kept)", bucket)
			if !site.DryRun {
				c.BlockPublicPolicy, c.RestrictPublicBuckets = aws.Bool(false), aws.Bool(false)
				if _, err := p.S3.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{Bucket: &bucket, PublicAccessBlockConfiguration: &c}); err != nil {
					return fmt.Errorf("publish: public access block of %s: %w", bucket, err)
				}
			}
		}
	case err == nil, apiCode(err) == "NoSuchPublicAccessBlockConfiguration":
	default:
		return fmt.Errorf("publish: reading public access block of %s: %w", bucket, err)
	}

	partition := iamarn.PartitionAWS
	if part, err := iamarn.PartitionForRegion(p.Region); err == nil {
		partition = part.ID
	}
	resources := make([]any, len(keys))
	for i, k := range keys {
		resources[i] = fmt.Sprintf("arn:%s:s3:::%s/%s", partition, bucket, k)
	}
	want := map[string]any{"Sid": PolicySid, "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": resources}

	policy := bucketPolicy{Version: "2012-10-17"}
	out, err := p.S3.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: &bucket})
	switch {
	case err == nil:
		if err := json.Unmarshal([]byte(aws.ToString(out.Policy)), &policy); err != nil {
			return fmt.Errorf("publish: bucket policy of %s is not JSON: %w", bucket, err)
		}
	case apiCode(err) == "NoSuchBucketPolicy":
	default:
		return fmt.Errorf("publish: reading bucket policy of %s: %w", bucket, err)
	}
	i := slices.IndexFunc(policy.Statement, func(st map[string]any) bool { return st["Sid"] == PolicySid })
	if i >= 0 {
		if sameJSON(policy.Statement[i], want) {
			return nil
		}
		policy.Statement[i] = want
	} else {
		policy.Statement = append(policy.Statement, want)
	}
	doc, err := json.Marshal(policy)
	if err != nil {
		return err
	}
	change("put bucket policy statement %s on %s (public read of %d objects)", PolicySid, bucket, len(keys))
	if site.DryRun {
		return nil
	}
	if _, err := p.S3.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: &bucket, Policy: aws.String(string(doc))}); err != nil {
		return fmt.Errorf("publish: writing bucket policy of %s: %w", bucket, err)
	}
	return nil
}

// sameJSON compares two values after a JSON round trip (so []any and []string compare equal).
func sameJSON(a, b any) bool {
	norm := func(v any) any {
		raw, _ := json.Marshal(v)
		var out any
		_ = json.Unmarshal(raw, &out)
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func (p *Publisher) ensureProvider(ctx context.Context, site Site, change func(string, ...any)) (string, error) {
	clientIDs := site.ClientIDs
	if len(clientIDs) == 0 {
		clientIDs = []string{oidc.DefaultAudience}
	}
	thumbs := make([]string, len(site.Thumbprints))
	for i, t := range site.Thumbprints {
		thumbs[i] = strings.ToLower(t)
	}
	hostPath := oidc.IssuerHostPath(site.Issuer)
	list, err := p.IAM.ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{})
	if err != nil {
		return "", fmt.Errorf("publish: listing IAM OIDC providers: %w", err)
	}
	var arn string
	for _, e := range list.OpenIDConnectProviderList {
		if strings.HasSuffix(aws.ToString(e.Arn), ":oidc-provider/"+hostPath) {
			arn = aws.ToString(e.Arn)
			break
		}
	}
	if arn == "" {
		change("create IAM OIDC provider %s (client ids %v, thumbprints %v)", site.Issuer, clientIDs, thumbs)
		if site.DryRun {
			return "", nil
		}
		out, err := p.IAM.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
			Url: aws.String(site.Issuer), ClientIDList: clientIDs, ThumbprintList: thumbs,
		})
		if err != nil {
			return "", fmt.Errorf("publish: creating IAM OIDC provider for %s: %w", site.Issuer, err)
		}
		return aws.ToString(out.OpenIDConnectProviderArn), nil
	}
	got, err := p.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: &arn})
	if err != nil {
		return arn, fmt.Errorf("publish: reading IAM OIDC provider %s: %w", arn, err)
	}
	for _, id := range clientIDs {
		if slices.Contains(got.ClientIDList, id) {
			continue
		}
		change("add client id %s to %s", id, arn)
		if site.DryRun {
			continue
		}
		if _, err := p.IAM.AddClientIDToOpenIDConnectProvider(ctx, &iam.AddClientIDToOpenIDConnectProviderInput{OpenIDConnectProviderArn: &arn, ClientID: aws.String(id)}); err != nil {
			return arn, fmt.Errorf("publish: adding client id %s to %s: %w", id, arn, err)
		}
	}
	if len(thumbs) > 0 {
		current := make([]string, len(got.ThumbprintList))
		for i, t := range got.ThumbprintList {
			current[i] = strings.ToLower(t)
		}
		slices.Sort(current)
		wanted := slices.Clone(thumbs)
		slices.Sort(wanted)
		if !slices.Equal(slices.Compact(current), slices.Compact(wanted)) {
			change("set thumbprints of %s to %v", arn, thumbs)
			if !site.DryRun {
				if _, err := p.IAM.UpdateOpenIDConnectProviderThumbprint(ctx, &iam.UpdateOpenIDConnectProviderThumbprintInput{OpenIDConnectProviderArn: &arn, ThumbprintList: thumbs}); err != nil {
					return arn, fmt.Errorf("publish: updating thumbprints of %s: %w", arn, err)
				}
			}
		}
	}
	return arn, nil
}
