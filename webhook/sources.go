package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// ConfigMapName and ConfigMapKey locate the mappings the upstream webhook reads with
// --watch-config-map: key "config" of ConfigMap "pod-identity-webhook" in the webhook's namespace.
const (
	ConfigMapName = "pod-identity-webhook"
	ConfigMapKey  = "config"
)

// Mapping is one entry of the pod-identity-webhook ConfigMap: IRSA settings for a service
// account that has no annotations (kOps writes these). The JSON field names are the upstream's
// (pkg/cache/cache.go Entry), matched case-insensitively as encoding/json does.
type Mapping struct {
	// RoleARN is the IAM role; an entry without one maps nothing.
	RoleARN string `json:"RoleARN"`
	// Audience of the token (default Config.TokenAudience).
	Audience string `json:"Audience,omitempty"`
	// UseRegionalSTS injects AWS_STS_REGIONAL_ENDPOINTS=regional.
	UseRegionalSTS bool `json:"UseRegionalSTS,omitempty"`
	// TokenExpiration in seconds (0: Config.TokenExpiration; at least 600).
	TokenExpiration int64 `json:"TokenExpiration,omitempty"`
}

// Mappings are the ConfigMap's entries keyed "<namespace>/<serviceAccount>"; the namespace "*"
// matches every namespace.
type Mappings map[string]Mapping

// ParseMappings parses the ConfigMap's "config" value:
// {"<namespace>/<serviceAccount>": {"RoleARN": ..., "Audience": ..., "UseRegionalSTS": ..., "TokenExpiration": ...}}.
// An empty value is no mappings.
func ParseMappings(config string) (Mappings, error) {
	if strings.TrimSpace(config) == "" {
		return nil, nil
	}
	var m Mappings
	if err := json.Unmarshal([]byte(config), &m); err != nil {
		return nil, fmt.Errorf("webhook: ConfigMap %s key %q is not a JSON object of \"<namespace>/<serviceAccount>\": {\"RoleARN\": ...} entries: %w", ConfigMapName, ConfigMapKey, err)
	}
	for key := range m {
		ns, sa, ok := strings.Cut(key, "/")
		if !ok || ns == "" || sa == "" || strings.Contains(sa, "/") {
			return nil, fmt.Errorf("webhook: ConfigMap %s key %q: entry %q is not \"<namespace>/<serviceAccount>\" (\"*\" for any namespace)", ConfigMapName, ConfigMapKey, key)
		}
	}
	return m, nil
}

// lookup returns the entry for the service account: "<namespace>/<name>", else "*/<name>".
func (m Mappings) lookup(namespace, name string) (Mapping, bool) {
	if e, ok := m[namespace+"/"+name]; ok {
		return e, true
	}
	e, ok := m["*/"+name]
	return e, ok
}

// Identity names a service account served with container credentials.
type Identity struct {
	// Namespace of the service account.
	Namespace string `json:"namespace"`
	// ServiceAccount is its name.
	ServiceAccount string `json:"serviceAccount"`
}

// Identities is the set of service accounts the identities file lists.
type Identities map[Identity]struct{}

// Has reports whether the set lists the service account.
func (s Identities) Has(namespace, serviceAccount string) bool {
	_, ok := s[Identity{Namespace: namespace, ServiceAccount: serviceAccount}]
	return ok
}

// ParseIdentities parses the container-credentials identities file
// {"identities": [{"namespace": ..., "serviceAccount": ...}]} (upstream
// pkg/containercredentials/types.go). An empty file is an empty set, as upstream.
func ParseIdentities(data []byte) (Identities, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return Identities{}, nil
	}
	var doc struct {
		Identities []Identity `json:"identities"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("webhook: identities file is not {\"identities\": [{\"namespace\": ..., \"serviceAccount\": ...}]}: %w", err)
	}
	set := make(Identities, len(doc.Identities))
	for _, id := range doc.Identities {
		set[id] = struct{}{}
	}
	return set, nil
}
