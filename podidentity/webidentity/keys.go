package webidentity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/ekslink/ekslink/oidc"
)

// clusterKeys verifies service account tokens against the API server's own key set, read from its
// discovery document (the issuer) and JWKS (kube-apiserver serves both to every service account
// through the system:service-account-issuer-discovery ClusterRole). The key set is read at start,
// every KeyRefreshInterval, and when a token names a key id it does not know (at most once per
// minKeyRefresh), so a key rotation is picked up without a request per token.
type clusterKeys struct {
	client   kubernetes.Interface
	audience string
	now      func() time.Time

	verifier atomic.Pointer[oidc.Verifier]
	issuer   atomic.Pointer[string]

	mu       sync.Mutex
	lastLoad time.Time
}

// minKeyRefresh bounds how often an unknown key id makes the agent re-read the key set.
const minKeyRefresh = 10 * time.Second

func (k *clusterKeys) load(ctx context.Context) error {
	rc := k.client.Discovery().RESTClient()
	disc, err := rc.Get().AbsPath(oidc.DiscoveryPath).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("webidentity: reading the API server's %s: %w", oidc.DiscoveryPath, err)
	}
	var d struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(disc, &d); err != nil || d.Issuer == "" {
		return fmt.Errorf("webidentity: the API server's %s has no issuer (%v)", oidc.DiscoveryPath, err)
	}
	jwks, err := rc.Get().AbsPath(oidc.KubeJWKSPath).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("webidentity: reading the API server's %s: %w", oidc.KubeJWKSPath, err)
	}
	v, err := oidc.NewVerifier(jwks, oidc.Expect{Issuer: d.Issuer, Audience: k.audience, Now: k.now})
	if err != nil {
		return fmt.Errorf("webidentity: the API server's key set: %w", err)
	}
	k.verifier.Store(v)
	k.issuer.Store(&d.Issuer)
	return nil
}

// refresh reloads the keys unless that happened within minKeyRefresh; concurrent callers share one load.
func (k *clusterKeys) refresh(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if time.Since(k.lastLoad) < minKeyRefresh {
		return nil
	}
	k.lastLoad = time.Now()
	return k.load(ctx)
}

// verify checks the token; a token signed by an unknown key triggers one key set reload.
func (k *clusterKeys) verify(ctx context.Context, token string) (*oidc.Claims, error) {
	v := k.verifier.Load()
	if v == nil {
		return nil, errKeysUnavailable
	}
	claims, err := v.Verify(token)
	if errors.Is(err, oidc.ErrUnknownKeyID) {
		if rerr := k.refresh(ctx); rerr == nil {
			claims, err = k.verifier.Load().Verify(token)
		}
	}
	return claims, err
}

var errKeysUnavailable = errors.New("webidentity: the cluster's token signing keys have not been read yet")
