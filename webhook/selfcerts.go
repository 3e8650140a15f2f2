package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Keys of the Secret a SelfCerts keeps: the CA bundle (current CA first, then older CAs still
// valid), the current CA's key, and the serving certificate and key.
const (
	SecretKeyCABundle = "ca.crt"
	SecretKeyCAKey    = "ca.key"
	SecretKeyCert     = corev1.TLSCertKey
	SecretKeyKey      = corev1.TLSPrivateKeyKey
)

// Defaults of SelfCertsOptions.
const (
	DefaultCAValidity      = 10 * 365 * 24 * time.Hour
	DefaultServingValidity = 365 * 24 * time.Hour
	DefaultCertCheckPeriod = time.Minute
)

// CAPropagationDelay is how long a new CA stays in the caBundle, next to the old one, before it
// signs serving certificates (its NotBefore is a minute before its creation).
const CAPropagationDelay = 3 * time.Minute

// SelfCertsOptions configures a SelfCerts.
type SelfCertsOptions struct {
	// WebhookConfigName names the MutatingWebhookConfiguration whose caBundle is kept current
	// (empty: none is patched).
	WebhookConfigName string
	// CAValidity and ServingValidity are the certificates' lifetimes (defaults
	// DefaultCAValidity, DefaultServingValidity); each is replaced at 2/3 of its life.
	CAValidity, ServingValidity time.Duration
	// CheckPeriod is how often Run re-checks the Secret (default DefaultCertCheckPeriod).
	CheckPeriod time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives rotations and errors (default: discard).
	Logger logr.Logger
}

// SelfCerts manages the webhook's own CA and serving certificate with no manual step: it keeps
// them in a Secret, replaces each at 2/3 of its life (a new CA overlaps the old one: the caBundle
// holds both until the old one expires), patches the caBundle into the webhook's
// MutatingWebhookConfiguration, and serves the current certificate through GetCertificate, so a
// rotation needs no restart. Replicas share the Secret: writes carry the resourceVersion read,
// and the loser of a race re-reads and uses the winner's certificates.
type SelfCerts struct {
	client  kubernetes.Interface
	secret  types.NamespacedName
	service types.NamespacedName
	o       SelfCertsOptions
	log     logr.Logger

	mu       sync.Mutex
	cert     *tls.Certificate
	caBundle []byte

	// beforeWrite, when set, runs before each write of the Secret (tests: provoke a conflict).
	beforeWrite func()
}

// NewSelfCerts checks the options; call Sync (or Run) before serving. secret names the Secret that
// holds the CA and serving certificate (created when missing); service names the Service fronting
// the webhook: the serving certificate is for <svc>.<ns>.svc and <svc>.<ns>.svc.cluster.local, and
// only the webhooks of the configuration that point at this Service get the caBundle.
func NewSelfCerts(client kubernetes.Interface, secret, service types.NamespacedName, o SelfCertsOptions) (*SelfCerts, error) {
	if secret.Namespace == "" || secret.Name == "" || service.Namespace == "" || service.Name == "" {
		return nil, fmt.Errorf("webhook: self-managed certificates need the Secret's namespace and name and the Service's namespace and name, got secret %q/%q service %q/%q",
			secret.Namespace, secret.Name, service.Namespace, service.Name)
	}
	if o.CAValidity <= 0 {
		o.CAValidity = DefaultCAValidity
	}
	if o.ServingValidity <= 0 {
		o.ServingValidity = DefaultServingValidity
	}
	if o.ServingValidity > o.CAValidity/3 {
		return nil, fmt.Errorf("webhook: serving validity %s must be at most a third of the CA validity %s, so that a serving certificate never outlives the CA's overlap", o.ServingValidity, o.CAValidity)
	}
	if o.CheckPeriod <= 0 {
		o.CheckPeriod = DefaultCertCheckPeriod
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &SelfCerts{client: client, secret: secret, service: service, o: o, log: o.Logger.WithValues("secret", secret.String())}, nil
}

// DNSNames are the names the serving certificate is for.
func (s *SelfCerts) DNSNames() []string {
	base := s.service.Name + "." + s.service.Namespace + ".svc"
	return []string{base, base + ".cluster.local"}
}

// GetCertificate serves the current certificate (for tls.Config.GetCertificate).
func (s *SelfCerts) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert == nil {
		return nil, errors.New("webhook: no serving certificate yet (SelfCerts.Sync has not succeeded)")
	}
	return s.cert, nil
}

// CABundle returns the PEM CA bundle clients verify the serving certificate with.
func (s *SelfCerts) CABundle() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.caBundle)
}

// Run calls Sync every CheckPeriod until ctx ends, logging failures (the current certificate
// stays in service).
func (s *SelfCerts) Run(ctx context.Context) {
	t := time.NewTicker(s.o.CheckPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Sync(ctx); err != nil && ctx.Err() == nil {
				s.log.Error(err, "certificate check failed; the current serving certificate stays in service")
			}
		}
	}
}

// Sync makes the Secret hold a current CA and serving certificate (creating or rotating them),
// patches the caBundle into the webhook configuration, and serves the Secret's certificate.
func (s *SelfCerts) Sync(ctx context.Context) error {
	secrets := s.client.CoreV1().Secrets(s.secret.Namespace)
	const attempts = 5
	for range attempts {
		sec, err := secrets.Get(ctx, s.secret.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			data, _, perr := s.plan(nil)
			if perr != nil {
				return perr
			}
			s.hook()
			sec, err = secrets.Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: s.secret.Namespace, Name: s.secret.Name,
					Labels: map[string]string{"app.kubernetes.io/managed-by": "pod-identity-webhook"}},
				Type: corev1.SecretTypeOpaque, Data: data,
			}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				s.log.Info("another replica created the Secret first; using its certificates")
				continue
			}
			if err != nil {
				return fmt.Errorf("webhook: creating Secret %s/%s: %w", s.secret.Namespace, s.secret.Name, err)
			}
			s.log.Info("created the CA and serving certificate", "dnsNames", s.DNSNames())
		case err != nil:
			return fmt.Errorf("webhook: reading Secret %s/%s: %w", s.secret.Namespace, s.secret.Name, err)
		default:
			data, why, perr := s.plan(sec.Data)
			if perr != nil {
				return perr
			}
			if why != "" {
				sec = sec.DeepCopy()
				sec.Data = data
				s.hook()
				// sec carries the resourceVersion read: the API server refuses the update if
				// another replica wrote in between.
				updated, uerr := secrets.Update(ctx, sec, metav1.UpdateOptions{})
				if apierrors.IsConflict(uerr) {
					s.log.Info("another replica updated the Secret first; re-reading it", "reason", why)
					continue
				}
				if uerr != nil {
					return fmt.Errorf("webhook: updating Secret %s/%s (%s): %w", s.secret.Namespace, s.secret.Name, why, uerr)
				}
				sec = updated
				s.log.Info("rotated certificates", "reason", why)
			}
		}
		return s.use(ctx, sec.Data)
	}
	return fmt.Errorf("webhook: Secret %s/%s kept changing under %d attempts to update it; is something else writing it?", s.secret.Namespace, s.secret.Name, attempts)
}

func (s *SelfCerts) hook() {
	if s.beforeWrite != nil {
		s.beforeWrite()
	}
}

// use patches the caBundle into the webhook configuration, then serves the certificate: the
// caBundle may name a new CA before any replica serves a certificate it signed.
func (s *SelfCerts) use(ctx context.Context, data map[string][]byte) error {
	kp, err := parseKeyPair(data[SecretKeyCert], data[SecretKeyKey])
	if err != nil {
		return fmt.Errorf("webhook: Secret %s/%s: serving certificate: %w", s.secret.Namespace, s.secret.Name, err)
	}
	cert, err := tls.X509KeyPair(kp.certPEM, kp.keyPEM)
	if err != nil {
		return fmt.Errorf("webhook: Secret %s/%s: %w", s.secret.Namespace, s.secret.Name, err)
	}
	bundle := data[SecretKeyCABundle]
	perr := s.patchCABundle(ctx, bundle)
	s.mu.Lock()
	if s.cert == nil || !bytes.Equal(s.cert.Certificate[0], cert.Certificate[0]) {
		s.log.Info("serving certificate loaded", "serial", kp.cert.SerialNumber.String(), "notAfter", kp.cert.NotAfter)
	}
	s.cert, s.caBundle = &cert, bytes.Clone(bundle)
	s.mu.Unlock()
	return perr
}

// plan returns the Secret data to store and why it changed ("" when data is current).
func (s *SelfCerts) plan(data map[string][]byte) (map[string][]byte, string, error) {
	now := s.o.Now()
	out := map[string][]byte{}
	for k, v := range data {
		out[k] = v
	}
	var why string
	ca, err := parseKeyPair(data[SecretKeyCABundle], data[SecretKeyCAKey])
	switch {
	case err != nil:
		why = "no valid CA in the Secret"
	case renewalDue(ca.cert, now):
		why = "the CA is at 2/3 of its life"
	}
	if why != "" {
		if ca, err = newCAKeyPair(now, s.o.CAValidity); err != nil {
			return nil, "", fmt.Errorf("webhook: creating a CA: %w", err)
		}
		out[SecretKeyCAKey] = ca.keyPEM
	}
	// The bundle: the current CA, then the older ones still valid (the overlap).
	bundle := append([]byte(nil), ca.certPEM...)
	prev, _ := parseCerts(data[SecretKeyCABundle])
	for _, c := range prev {
		if now.Before(c.NotAfter) && !c.Equal(ca.cert) {
			bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
	}
	if !bytes.Equal(bundle, data[SecretKeyCABundle]) && why == "" {
		why = "an old CA expired"
	}
	out[SecretKeyCABundle] = bundle

	serving, err := parseKeyPair(data[SecretKeyCert], data[SecretKeyKey])
	var reissue string
	switch {
	case err != nil:
		reissue = "no valid serving certificate in the Secret"
	case serving.cert.CheckSignatureFrom(ca.cert) != nil && (now.Sub(ca.cert.NotBefore) >= CAPropagationDelay || !signedByOneOf(serving.cert, bundle)):
		// A new CA signs serving certificates only once the API server has had time to load
		// the caBundle that names it; until then the current certificate (old CA) stays.
		reissue = "the serving certificate is not signed by the current CA"
	case !equalStrings(serving.cert.DNSNames, s.DNSNames()):
		reissue = fmt.Sprintf("the serving certificate is for %v, want %v", serving.cert.DNSNames, s.DNSNames())
	case renewalDue(serving.cert, now):
		reissue = "the serving certificate is at 2/3 of its life"
	}
	if reissue != "" {
		if serving, err = newServingKeyPair(now, s.o.ServingValidity, ca, s.DNSNames()); err != nil {
			return nil, "", fmt.Errorf("webhook: issuing a serving certificate: %w", err)
		}
		out[SecretKeyCert], out[SecretKeyKey] = serving.certPEM, serving.keyPEM
		why = joinReasons(why, reissue)
	}
	return out, why, nil
}

// signedByOneOf reports whether a CA of the PEM bundle signed c.
func signedByOneOf(c *x509.Certificate, bundle []byte) bool {
	cas, _ := parseCerts(bundle)
	for _, ca := range cas {
		if c.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

func joinReasons(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
