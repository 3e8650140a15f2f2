package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/ekslink/ekslink/podidentity/association"
)

// MutatePath is where the upstream webhook serves, and where the rendered
// MutatingWebhookConfiguration points.
const MutatePath = "/mutate"

// maxReviewBytes bounds an AdmissionReview body (the API server's own request limit is 3 MiB).
const maxReviewBytes = 8 << 20

// Options configure a Handler. The zero value works: no ConfigMap, no identities file.
type Options struct {
	// Logger receives one line per mutation and per problem (default: discard).
	Logger logr.Logger
	// Registerer receives the metrics; nil keeps them unregistered (never the global registry).
	// Handlers on one Registerer share the collectors (their counts add up).
	Registerer prometheus.Registerer
	// LookupTimeout bounds the live GET of the pod's service account (default 2 s; the API
	// server's webhook timeout is 10 s by default); past it, the informer cache answers.
	LookupTimeout time.Duration
	// LookupLive reads every pod's service account live instead of from the informer cache.
	// By default (false) the cache answers whenever it has the account, as the upstream does,
	// and an account it does not have yet (created a moment ago: upstream #174, #264) is read
	// live, so no request is made per admission. The default's window: a role-arn annotation
	// changed, added or removed within the watch's latency (milliseconds) before the pod may be
	// missed and the pod gets the previous configuration. That grants nothing the pod could not
	// set up itself (the role's trust policy on the token's sub and aud is what IAM enforces);
	// LookupLive closes the window at the cost of one GET per admission (shared by concurrent
	// pods of one account), about a millisecond of API-server time each.
	LookupLive bool
	// ResyncPeriod is the informers' resync period (--resync-period, default 60 s).
	ResyncPeriod time.Duration
	// ConfigMapNamespace, when set, watches ConfigMap pod-identity-webhook in that namespace for
	// mappings (--watch-config-map with --namespace).
	ConfigMapNamespace string
	// IdentitiesFile, when set, is the container-credentials identities file to watch
	// (--watch-container-credentials-config).
	IdentitiesFile string
	// Associations, when set, names the EKS Pod Identity associations ConfigMap
	// (podidentity/association; zero fields are its defaults) whose service accounts get
	// container credentials too, beside the identities file's (--watch-pod-identity-associations).
	// Off by default, as upstream. RBAC: get, list, watch on that one ConfigMap (resourceNames).
	Associations *association.Options
	// Now is the clock for the latency histogram and Events (default time.Now).
	Now func() time.Time
	// DisableEvents turns off the Warning Events recorded on a service account whose annotations
	// leave its pods unmutated (at most one per service account and problem every 10 minutes;
	// they need RBAC to create events).
	DisableEvents bool
}

// Handler is the mutating admission webhook: an http.Handler for AdmissionReview v1 (and
// v1beta1) pod CREATE requests. Create it with NewHandler, run Start, then serve it on MutatePath.
type Handler struct {
	client  kubernetes.Interface
	cfg     Config
	opts    Options
	log     logr.Logger
	metrics *metrics
	events  *events // nil when disabled

	saCache    atomic.Pointer[cache.Indexer] // of *cachedServiceAccount, set once the cache has synced
	fresh      freshReads
	mappings   atomic.Pointer[Mappings]
	identities atomic.Pointer[Identities] // the union of idSources
	idSources  identitySources

	mu      sync.Mutex
	synced  []cache.InformerSynced
	started bool
}

// NewHandler returns a Handler that reads service accounts (and the ConfigMap) through client
// and mutates pods under cfg. cfg.Mappings and cfg.Identities are the initial sources; with
// Options.ConfigMapNamespace or Options.IdentitiesFile the watched contents replace them.
func NewHandler(client kubernetes.Interface, cfg Config, opts Options) (*Handler, error) {
	if client == nil {
		return nil, errors.New("webhook: NewHandler needs a Kubernetes client")
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	if opts.LookupTimeout <= 0 {
		opts.LookupTimeout = 2 * time.Second
	}
	if opts.ResyncPeriod <= 0 {
		opts.ResyncPeriod = 60 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{client: client, cfg: cfg.withDefaults(), opts: opts, log: opts.Logger, metrics: newMetrics(opts.Registerer)}
	if !opts.DisableEvents {
		h.events = &events{h: h, last: map[string]time.Time{}}
	}
	mappings, identities := cfg.Mappings, cfg.Identities
	h.mappings.Store(&mappings)
	h.idSources.file = identities
	h.identities.Store(&identities)
	return h, nil
}

// config is the configuration for one admission: the static settings and the sources' current
// contents.
func (h *Handler) config() Config {
	cfg := h.cfg
	cfg.Mappings = *h.mappings.Load()
	cfg.Identities = *h.identities.Load()
	return cfg
}

// ServeHTTP answers an AdmissionReview. A body that is not one gets 400 (415 for another content
// type); anything else is allowed, with the mutation's patch when there is one. Problems with the
// pod's configuration or the service account lookup are logged and counted, never refused.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.opts.Now()
	defer func() { h.metrics.duration.Observe(h.opts.Now().Sub(start).Seconds()) }()

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "webhook: an AdmissionReview must be POSTed", http.StatusMethodNotAllowed)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" && !isJSONMediaType(ct) {
		http.Error(w, fmt.Sprintf("webhook: Content-Type %q, want application/json (an AdmissionReview)", r.Header.Get("Content-Type")), http.StatusUnsupportedMediaType)
		return
	}
	data, err := readBody(http.MaxBytesReader(w, r.Body, maxReviewBytes), r.ContentLength)
	if err != nil {
		err = fmt.Errorf("webhook: reading the AdmissionReview: %w", err)
		h.log.Info("malformed AdmissionReview", "error", err.Error(), "remote", r.RemoteAddr)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// A pod CREATE takes the lean path (lean.go); everything else, and anything the lean path
	// cannot restate exactly, the full decode.
	review, pod, raws, lean := decodeLean(data)
	encode := (*Mutation).PatchJSON
	if lean {
		encode = leanEncoder(data, raws)
	} else if review, pod, err = decodeReview(data); err != nil {
		h.log.Info("malformed AdmissionReview", "error", err.Error(), "remote", r.RemoteAddr)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	if pod != nil {
		h.admit(r.Context(), review.Request, pod, resp, encode)
	}
	body, err := encodeReview(review.TypeMeta, resp)
	if err != nil { // cannot happen with these types; the failed call lets the pod in (failurePolicy Ignore)
		h.log.Error(err, "encoding the AdmissionResponse")
		http.Error(w, "webhook: encoding the AdmissionResponse: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// isJSONMediaType reports whether a Content-Type is application/json, with parameters or in
// another case.
func isJSONMediaType(contentType string) bool {
	ct, _, err := mime.ParseMediaType(contentType)
	return err == nil && ct == "application/json"
}

// readBody reads the request body into a buffer of the announced length when there is one (the
// server ends the body there), instead of growing one.
func readBody(body io.Reader, contentLength int64) ([]byte, error) {
	if contentLength < 0 || contentLength > maxReviewBytes {
		return io.ReadAll(body)
	}
	data := make([]byte, contentLength)
	if _, err := io.ReadFull(body, data); err != nil {
		return nil, err
	}
	return data, nil
}

// decodeReview parses the body as an AdmissionReview with a request; pod is nil when the request
// is not a pod CREATE (nothing to do).
func decodeReview(data []byte) (*admissionv1.AdmissionReview, *corev1.Pod, error) {
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &review); err != nil {
		return nil, nil, fmt.Errorf("webhook: the body is not an AdmissionReview (JSON): %w", err)
	}
	if review.Kind != "AdmissionReview" || (review.APIVersion != "admission.k8s.io/v1" && review.APIVersion != "admission.k8s.io/v1beta1") {
		return nil, nil, fmt.Errorf("webhook: got apiVersion %q kind %q, want admission.k8s.io/v1 (or v1beta1) AdmissionReview", review.APIVersion, review.Kind)
	}
	req := review.Request
	if req == nil {
		return nil, nil, errors.New("webhook: the AdmissionReview has no request")
	}
	if req.UID == "" {
		return nil, nil, errors.New("webhook: the AdmissionReview's request has no uid")
	}
	if req.Kind.Kind != "Pod" || req.Kind.Group != "" || req.SubResource != "" || req.Operation != admissionv1.Create {
		return &review, nil, nil
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return nil, nil, fmt.Errorf("webhook: the request's object is not a Pod: %w", err)
	}
	if req.Namespace != "" {
		pod.Namespace = req.Namespace
	}
	return &review, &pod, nil
}

// admit fills resp for the pod: the patch, or nothing with the problem reported.
func (h *Handler) admit(ctx context.Context, req *admissionv1.AdmissionRequest, pod *corev1.Pod, resp *admissionv1.AdmissionResponse, encode func(*Mutation) ([]byte, error)) {
	log := h.log.WithValues("namespace", pod.Namespace, "pod", orDefault(pod.Name, pod.GenerateName), "serviceAccount", pod.Spec.ServiceAccountName, "uid", req.UID)
	cfg := h.config()
	sa, err := h.serviceAccount(ctx, pod.Namespace, pod.Spec.ServiceAccountName)
	if err != nil {
		log.Error(err, "pod admitted without AWS credentials: the service account could not be read")
		h.metrics.admitted(ModeNone, resultError)
		return
	}
	m, err := mutate(pod, sa, cfg, false) // the pod is the handler's own: no copy
	if err != nil {
		log.Error(err, "pod admitted without AWS credentials")
		h.metrics.admitted(ModeNone, resultInvalid)
		if req.DryRun == nil || !*req.DryRun { // sideEffects: None allows no Event for a dry run
			h.events.invalid(sa, pod, err)
		}
		return
	}
	if m.Mode == ModeNone {
		log.V(1).Info("pod not mutated: its service account is not configured")
		h.metrics.admitted(ModeNone, resultNotConfigured)
		return
	}
	m.sa, m.cfg = sa, cfg
	patch, err := encode(m)
	if err != nil {
		log.Error(err, "pod admitted without AWS credentials: encoding the patch")
		h.metrics.admitted(m.Mode, resultError)
		return
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = patch, &pt
	result := resultMutated
	if !m.Changed {
		result = resultUnchanged
	}
	log.Info("pod mutated", "mode", m.Mode, "changed", m.Changed)
	h.metrics.admitted(m.Mode, result)
}

// serviceAccount returns the pod's service account: from the informer cache when it has it
// (unless Options.LookupLive), otherwise as the API server has it when the pod arrives: a
// live GET (bounded by Options.LookupTimeout, shared by concurrent pods of the account as long as
// it started after they arrived; see freshReads). The informer cache may be behind: an account
// created, annotated, re-annotated or stripped a moment ago (upstream issues #174, #264) would
// give the pod no role, an old one or a withdrawn one. The cache answers only when the API
// server does not (error or timeout), so that an overloaded API server delays no pod beyond the
// bound. It returns nil, nil when the account does not exist.
func (h *Handler) serviceAccount(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error) {
	if name == "" {
		return nil, nil
	}
	if !h.opts.LookupLive {
		if indexer := h.saCache.Load(); indexer != nil {
			if cached, ok := cachedServiceAccountOf(*indexer, namespace, name); ok {
				h.metrics.lookups.WithLabelValues("cache").Inc()
				return cached, nil
			}
		}
	}
	sa, err := h.liveServiceAccount(ctx, namespace, name)
	switch {
	case err == nil:
		h.metrics.lookups.WithLabelValues("api").Inc()
		return sa, nil
	case apierrors.IsNotFound(err):
		h.metrics.lookups.WithLabelValues("not_found").Inc()
		h.metrics.missingSA.WithLabelValues().Inc()
		return nil, nil
	}
	if indexer := h.saCache.Load(); indexer != nil {
		if cached, ok := cachedServiceAccountOf(*indexer, namespace, name); ok {
			h.log.Info("the API server did not answer for the service account; using the informer cache, which may be behind",
				"namespace", namespace, "serviceAccount", name, "error", err.Error())
			h.metrics.lookups.WithLabelValues("cache_fallback").Inc()
			return cached, nil
		}
	}
	h.metrics.lookups.WithLabelValues("error").Inc()
	return nil, fmt.Errorf("webhook: getting service account %s/%s: %w", namespace, name, err)
}

var getOptions = metav1.GetOptions{}
