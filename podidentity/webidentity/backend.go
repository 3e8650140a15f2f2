package webidentity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"

	"github.com/ekslink/ekslink/oidc"
	"github.com/ekslink/ekslink/podidentity"
	"github.com/ekslink/ekslink/podidentity/association"
)

// PodAudience is the audience of the pods' projected tokens, and the client id the IAM OIDC
// provider must list for STS to accept them.
const PodAudience = "pods.eks.amazonaws.com"

// Defaults of Options.
const (
	// DefaultKeyRefreshInterval is how often the API server's key set is re-read.
	DefaultKeyRefreshInterval = 10 * time.Minute
	// DefaultShareFraction: credentials of a (service account, role) are handed to other pods
	// while they are younger than this fraction of their lifetime. The server refreshes at half
	// the lifetime at the earliest (minus at most a tenth of jitter), so a refresh always gets
	// newer credentials than it has.
	DefaultShareFraction = 0.35
	// DefaultOutageMinValidity: when STS cannot be reached, cached credentials of the service
	// account and role are still handed out while they are valid for longer than this.
	DefaultOutageMinValidity = 5 * time.Minute
)

// Options configure a Backend. Zero values mean the defaults.
type Options struct {
	// NodeName scopes the pod informer to the agent's node (spec.nodeName) and refuses tokens of
	// pods on other nodes. Empty: every pod of the cluster is watched and accepted.
	NodeName string
	// Audience the pods' tokens must carry (default PodAudience).
	Audience string
	// DurationSeconds asks STS for this session duration (0: STS's default, one hour).
	DurationSeconds int32
	// PerPodSessions gives every pod its own STS session, named eks-<cluster>-<pod>-<pod uid
	// hash> as EKS names them (one STS call per pod and refresh). Default: one session per
	// (service account, role), named eks-<cluster>-<namespace>-<serviceAccount>, shared by all
	// pods of the service account (one STS call per refresh however many pods share it).
	PerPodSessions bool
	// ShareFraction overrides DefaultShareFraction (0 < f < 0.4).
	ShareFraction float64
	// OutageMinValidity overrides DefaultOutageMinValidity.
	OutageMinValidity time.Duration
	// KeyRefreshInterval overrides DefaultKeyRefreshInterval.
	KeyRefreshInterval time.Duration
	// STSOptions are applied to the STS client (endpoint, HTTP client, retryer).
	STSOptions []func(*sts.Options)
	// Registerer receives the metrics (see metrics.go; default: none registered).
	Registerer prometheus.Registerer
	// Logger (default discard). Tokens and credentials are never logged.
	Logger logr.Logger
	// Now is the clock for token and cache decisions (default time.Now).
	Now func() time.Time
}

// STSAPI is the STS call the backend makes; *sts.Client implements it.
type STSAPI interface {
	AssumeRoleWithWebIdentity(ctx context.Context, in *sts.AssumeRoleWithWebIdentityInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleWithWebIdentityOutput, error)
}

// Backend is a podidentity.Upstream that needs no EKS: it validates the pod's token locally,
// finds the service account's association and assumes the role with STS
// AssumeRoleWithWebIdentity, passing the pod's own token. Create it with NewFromConfig, start it
// with Start.
type Backend struct {
	kube  kubernetes.Interface
	assoc *association.Index
	sts   STSAPI
	opts  Options
	log   logr.Logger
	now   func() time.Time
	keys  *clusterKeys
	pods  *pods
	m     *metrics

	mu    sync.Mutex
	creds map[credKey]*credEntry
}

var _ podidentity.Upstream = (*Backend)(nil)

type credKey struct{ namespace, serviceAccount, role, podUID string }

type credEntry struct {
	out     *podidentity.AssumeRoleForPodIdentityOutput
	fetched time.Time
	flight  *flight // non-nil while a call is in flight
}

// flight is one STS call shared by every request for the same key.
type flight struct {
	done chan struct{}
	out  *podidentity.AssumeRoleForPodIdentityOutput
	err  error
}

// NewFromConfig returns a Backend that calls STS with cfg (region, HTTP client, retryer; STS
// AssumeRoleWithWebIdentity is unsigned, so no credentials are needed), reads pods and the
// cluster's keys through kube, and associations from assoc.
func NewFromConfig(cfg aws.Config, kube kubernetes.Interface, assoc *association.Index, optFns ...func(*Options)) (*Backend, error) {
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	if kube == nil || assoc == nil {
		return nil, errors.New("webidentity: a Kubernetes client and an association index are required")
	}
	if cfg.Region == "" {
		return nil, errors.New("webidentity: no AWS region: set AWS_REGION (STS is called in the node's region)")
	}
	// The pod waits while STS is retried, within the server's UpstreamTimeout (5 s by default):
	// the SDK's standard backoff (up to 20 s) would turn an STS outage into a timeout, so each
	// backoff is capped at MaxRetryBackoff. Options.STSOptions run after this and may change it.
	stsOpts := append([]func(*sts.Options){func(so *sts.Options) {
		if so.Retryer != nil {
			so.Retryer = retry.AddWithMaxBackoffDelay(so.Retryer, MaxRetryBackoff)
		}
	}}, o.STSOptions...)
	return newBackend(sts.NewFromConfig(cfg, stsOpts...), kube, assoc, o)
}

// UpstreamName names STS in the answers the agent's server writes itself (a timeout, an
// unreachable upstream): this backend never calls EKS Auth (podidentity.UpstreamNamer).
func (b *Backend) UpstreamName() string { return "STS" }

// MaxRetryBackoff caps each backoff between the STS client's retries (see NewFromConfig).
const MaxRetryBackoff = time.Second

func newBackend(api STSAPI, kube kubernetes.Interface, assoc *association.Index, o Options) (*Backend, error) {
	if o.Audience == "" {
		o.Audience = PodAudience
	}
	if o.ShareFraction == 0 {
		o.ShareFraction = DefaultShareFraction
	}
	if o.ShareFraction < 0 || o.ShareFraction >= 0.4 {
		return nil, fmt.Errorf("webidentity: Options.ShareFraction %v must be in (0, 0.4): the server refreshes from 40%% of the lifetime on", o.ShareFraction)
	}
	if o.OutageMinValidity == 0 {
		o.OutageMinValidity = DefaultOutageMinValidity
	}
	if o.KeyRefreshInterval == 0 {
		o.KeyRefreshInterval = DefaultKeyRefreshInterval
	}
	if o.DurationSeconds != 0 && (o.DurationSeconds < 900 || o.DurationSeconds > 43200) {
		return nil, fmt.Errorf("webidentity: Options.DurationSeconds %d must be between 900 and 43200", o.DurationSeconds)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("webidentity: registering metrics: %w", err)
	}
	b := &Backend{kube: kube, assoc: assoc, sts: api, opts: o, log: o.Logger, now: o.Now, m: m, creds: map[credKey]*credEntry{}}
	b.keys = &clusterKeys{client: kube, audience: o.Audience, now: o.Now}
	b.pods = newPods(kube, o.NodeName)
	return b, nil
}

// Start reads the cluster's keys, starts the pod informer and the key refresh, and waits until
// the pods and the associations are synced (the caller runs the association Index). It returns
// an error when the keys cannot be read or ctx ends first; the goroutines stop with ctx.
func (b *Backend) Start(ctx context.Context) error {
	if err := b.keys.load(ctx); err != nil {
		return err
	}
	go b.pods.informer.RunWithContext(ctx)
	go func() {
		t := time.NewTicker(b.opts.KeyRefreshInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := b.keys.load(ctx); err != nil {
					b.log.Error(err, "re-reading the cluster's token keys; the previous keys stay in use")
				}
			}
		}
	}()
	if !waitSynced(ctx, b.pods.informer.HasSynced, b.assoc.HasSynced) {
		return fmt.Errorf("webidentity: pods and associations not synced: %w", context.Cause(ctx))
	}
	return nil
}

func waitSynced(ctx context.Context, fns ...func() bool) bool {
	for {
		all := true
		for _, f := range fns {
			all = all && f()
		}
		if all {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// authErr is a refusal or failure with EKS Auth's code; its message goes to the pod too (it never
// contains token material).
func authErr(code podidentity.AuthErrorCode, status int, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &podidentity.AuthError{Code: code, StatusCode: status, Message: msg, ClientMessage: msg}
}

// AssumeRoleForPodIdentity implements podidentity.Upstream: the answer has the shape EKS Auth
// gives, so the server's cache, refresh and outage handling apply unchanged. Refusals are
// *podidentity.AuthError values with EKS Auth's codes: InvalidTokenException (the token does not
// verify against the cluster's keys, has another audience, is not bound to a pod, or its pod is
// gone), ExpiredTokenException, ResourceNotFoundException (no association: 404, fail fast),
// AccessDeniedException (STS refused: trust policy or provider), ThrottlingException; an STS or
// API server outage is ServiceUnavailableException (503, retryable) or a transport error.
func (b *Backend) AssumeRoleForPodIdentity(ctx context.Context, clusterName, token string) (*podidentity.AssumeRoleForPodIdentityOutput, error) {
	out, reason, err := b.assumeRole(ctx, clusterName, token)
	if reason != "" {
		b.m.refusals.WithLabelValues(reason).Inc()
	}
	return out, err
}

// assumeRole is AssumeRoleForPodIdentity; reason names a refusal made before STS.
func (b *Backend) assumeRole(ctx context.Context, clusterName, token string) (*podidentity.AssumeRoleForPodIdentityOutput, string, error) {
	claims, err := b.keys.verify(ctx, token)
	switch {
	case errors.Is(err, errKeysUnavailable):
		return nil, "unavailable", authErr(podidentity.AuthServiceUnavailableException, 503, "%v", err)
	case errors.Is(err, oidc.ErrExpired):
		return nil, "expired_token", authErr(podidentity.AuthExpiredTokenException, 400, "%v", err)
	case err != nil:
		return nil, "invalid_token", authErr(podidentity.AuthInvalidTokenException, 400, "%v", err)
	}
	if claims.PodName == "" || claims.PodUID == "" {
		return nil, "invalid_token", authErr(podidentity.AuthInvalidTokenException, 400, "the token is not bound to a pod (no kubernetes.io pod claim): send the pod's projected token")
	}
	if err := b.pods.check(ctx, claims.Namespace, claims.PodName, claims.PodUID); err != nil {
		var gone *podGone
		if errors.As(err, &gone) {
			return nil, "pod_gone", authErr(podidentity.AuthInvalidTokenException, 400, "%s", gone.reason)
		}
		return nil, "unavailable", authErr(podidentity.AuthServiceUnavailableException, 503, "%v", err)
	}
	if !b.assoc.HasSynced() {
		return nil, "unavailable", authErr(podidentity.AuthServiceUnavailableException, 503, "associations not read yet")
	}
	a, ok := b.assoc.Lookup(claims.Namespace, claims.ServiceAccount)
	if !ok {
		return nil, "no_association", authErr(podidentity.AuthResourceNotFoundException, 404, "no association for service account %s/%s", claims.Namespace, claims.ServiceAccount)
	}
	k := credKey{namespace: claims.Namespace, serviceAccount: claims.ServiceAccount, role: a.RoleARN}
	session := sessionName(clusterName, claims.Namespace+"-"+claims.ServiceAccount)
	if b.opts.PerPodSessions {
		k.podUID = claims.PodUID
		sum := sha256.Sum256([]byte(claims.PodUID))
		session = sessionName(clusterName, claims.PodName+"-"+hex.EncodeToString(sum[:4]))
	}
	out, err := b.credentials(ctx, k, a, session, token)
	return out, "", err
}

// credentials returns shared credentials of k when they are young enough, joins the call in
// flight for k, or calls STS. During an STS outage, cached credentials still valid for longer than
// OutageMinValidity are returned (the token was validated locally above).
func (b *Backend) credentials(ctx context.Context, k credKey, a association.Association, session, token string) (*podidentity.AssumeRoleForPodIdentityOutput, error) {
	now := b.now()
	b.mu.Lock()
	e := b.creds[k]
	if e != nil && e.out != nil && e.flight == nil {
		life := e.out.Credentials.Expiration.Sub(e.fetched)
		if now.Sub(e.fetched) < time.Duration(float64(life)*b.opts.ShareFraction) {
			out := e.out
			b.mu.Unlock()
			b.m.answers.WithLabelValues("shared").Inc()
			return out, nil
		}
	}
	if e != nil && e.flight != nil {
		fl := e.flight
		b.mu.Unlock()
		select {
		case <-fl.done:
			if fl.err == nil {
				b.m.answers.WithLabelValues("in_flight").Inc()
			}
			return fl.out, fl.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if e == nil {
		e = &credEntry{}
		b.creds[k] = e
		b.sweepLocked(now)
	}
	fl := &flight{done: make(chan struct{})}
	e.flight = fl
	b.mu.Unlock()

	out, err := b.assume(ctx, a, session, token)
	b.m.stsCalls.WithLabelValues(stsOutcome(err)).Inc()
	b.mu.Lock()
	defer b.mu.Unlock()
	defer close(fl.done)
	e.flight = nil
	if err == nil {
		e.out, e.fetched = out, b.now()
		fl.out = out
		b.m.answers.WithLabelValues("sts").Inc()
		return out, nil
	}
	var ae *podidentity.AuthError
	refused := errors.As(err, &ae) && ae.StatusCode < 500 && ae.Code != podidentity.AuthThrottlingException
	if !refused && e.out != nil && e.out.Credentials.Expiration.Sub(b.now()) > b.opts.OutageMinValidity {
		b.log.V(1).Info("STS unavailable; handing out the cached credentials of the service account", "namespace", k.namespace, "serviceAccount", k.serviceAccount, "error", err.Error())
		fl.out = e.out
		b.m.answers.WithLabelValues("outage").Inc()
		return e.out, nil
	}
	if refused {
		e.out = nil // a refusal (trust policy changed, role deleted) ends sharing at once
	}
	fl.err = err
	return nil, err
}

// sweepLocked drops expired entries once the map has grown.
func (b *Backend) sweepLocked(now time.Time) {
	if len(b.creds) < 1024 || len(b.creds)%256 != 0 {
		return
	}
	for k, e := range b.creds {
		if e.flight == nil && (e.out == nil || !e.out.Credentials.Expiration.After(now)) {
			delete(b.creds, k)
		}
	}
}

func (b *Backend) assume(ctx context.Context, a association.Association, session, token string) (*podidentity.AssumeRoleForPodIdentityOutput, error) {
	in := &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(a.RoleARN), RoleSessionName: aws.String(session), WebIdentityToken: aws.String(token)}
	if b.opts.DurationSeconds != 0 {
		in.DurationSeconds = aws.Int32(b.opts.DurationSeconds)
	}
	res, err := b.sts.AssumeRoleWithWebIdentity(ctx, in)
	if err != nil {
		return nil, mapSTSError(err)
	}
	if res.Credentials == nil || res.AssumedRoleUser == nil || res.Credentials.Expiration == nil {
		return nil, authErr(podidentity.AuthInternalServerException, 502, "STS answered without credentials")
	}
	c := res.Credentials
	return &podidentity.AssumeRoleForPodIdentityOutput{
		Credentials: podidentity.AuthCredentials{
			AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey),
			SessionToken: aws.ToString(c.SessionToken), Expiration: *c.Expiration,
		},
		AssumedRoleUser:        podidentity.AuthAssumedRoleUser{ARN: aws.ToString(res.AssumedRoleUser.Arn), AssumeRoleID: aws.ToString(res.AssumedRoleUser.AssumedRoleId)},
		Subject:                podidentity.AuthSubject{Namespace: a.Namespace, ServiceAccount: a.ServiceAccount},
		Audience:               aws.ToString(res.Audience),
		PodIdentityAssociation: podidentity.PodIdentityAssociation{AssociationID: a.Key()},
	}, nil
}

// mapSTSError turns STS's answers into EKS Auth's codes, so the server answers the pod as it
// would on EKS: refusals 400/403 (cached briefly, not retried), throttling 429, the rest 503.
func mapSTSError(err error) error {
	var api smithy.APIError
	if !errors.As(err, &api) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return err // a timeout: the server answers 504
		}
		// A transport error: 503, with a message that names STS (the server's own text for an
		// unknown error names EKS Auth, which this backend never calls).
		return &podidentity.AuthError{Code: podidentity.AuthServiceUnavailableException, StatusCode: http.StatusServiceUnavailable,
			Message: "STS could not be reached: " + err.Error(), ClientMessage: "STS could not be reached; retry later"}
	}
	status := 0
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	msg := "STS " + api.ErrorCode() + ": " + api.ErrorMessage()
	switch api.ErrorCode() {
	case "ExpiredTokenException":
		return authErr(podidentity.AuthExpiredTokenException, 400, "%s", msg)
	case "InvalidIdentityToken":
		if strings.Contains(api.ErrorMessage(), "Couldn't retrieve verification key") {
			// STS could not read the issuer's documents: an outage of the published issuer.
			return authErr(podidentity.AuthServiceUnavailableException, 503, "%s (is the issuer's discovery document and JWKS reachable?)", msg)
		}
		return authErr(podidentity.AuthInvalidTokenException, 400, "%s", msg)
	case "AccessDenied", "IDPRejectedClaim", "RegionDisabledException":
		return authErr(podidentity.AuthAccessDeniedException, 403, "%s (check the role's trust policy and the IAM OIDC provider's client ids)", msg)
	case "IDPCommunicationError":
		return authErr(podidentity.AuthServiceUnavailableException, 503, "%s", msg)
	case "Throttling", "ThrottlingException", "RequestLimitExceeded":
		return authErr(podidentity.AuthThrottlingException, 429, "%s", msg)
	case "ValidationError", "MalformedPolicyDocument", "PackedPolicyTooLarge":
		return authErr(podidentity.AuthInvalidRequestException, 400, "%s", msg)
	}
	if status >= 500 || status == 0 {
		return authErr(podidentity.AuthServiceUnavailableException, http.StatusServiceUnavailable, "%s", msg)
	}
	return authErr(podidentity.AuthInvalidRequestException, 400, "%s", msg)
}

var sessionUnsafe = regexp.MustCompile(`[^\w+=,.@-]`)

// sessionName is eks-<cluster>-<rest>, with characters STS does not allow replaced by '-', cut to
// STS's 64 characters with a hash of the full name so that different identities stay distinct.
func sessionName(cluster, rest string) string {
	full := sessionUnsafe.ReplaceAllString("eks-"+cluster+"-"+rest, "-")
	if len(full) <= 64 {
		return full
	}
	sum := sha256.Sum256([]byte(full))
	return full[:55] + "-" + hex.EncodeToString(sum[:4])
}
