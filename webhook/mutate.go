package webhook

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Mode is how a mutated pod gets AWS credentials.
type Mode string

// Modes, as they appear in metrics and logs.
const (
	// ModeNone: the pod's service account is not configured; the pod is left alone.
	ModeNone Mode = "none"
	// ModeIRSA: AssumeRoleWithWebIdentity with a projected token (AWS_ROLE_ARN,
	// AWS_WEB_IDENTITY_TOKEN_FILE).
	ModeIRSA Mode = "irsa"
	// ModeContainerCredentials: the node's Pod Identity agent (AWS_CONTAINER_CREDENTIALS_FULL_URI,
	// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE).
	ModeContainerCredentials Mode = "container_credentials"
)

// PatchOperation is one RFC 6902 JSON Patch operation.
type PatchOperation struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// Mutation is the outcome of Mutate.
type Mutation struct {
	// Mode is the credential mode chosen for the pod.
	Mode Mode
	// Patch turns the pod into Pod; nil when Mode is ModeNone. Like the upstream's, it always
	// restates the containers (and init containers) even when none of them changed.
	Patch []PatchOperation
	// Pod is a copy of the input pod with the patch applied; nil when Mode is ModeNone.
	Pod *corev1.Pod
	// Changed reports whether the patch changes anything (false when every container already had
	// its variables and mount and the volume existed).
	Changed bool

	// sa and cfg are the inputs, kept by the handler for re-running Mutate on the fully decoded
	// pod when the lean patch cannot be written.
	sa  *corev1.ServiceAccount
	cfg Config
}

// PatchJSON returns the patch as the JSON an AdmissionResponse carries (nil for no patch).
func (m *Mutation) PatchJSON() ([]byte, error) {
	if m == nil || m.Patch == nil {
		return nil, nil
	}
	return json.Marshal(m.Patch)
}

// AnnotationError reports an annotation (or ConfigMap entry) whose value cannot be used. Mutate
// returns it instead of a patch: the pod is created unmutated, and the caller reports the error.
type AnnotationError struct {
	// Object is what carries the value: "service account <ns>/<name>", "pod <ns>/<name>" or
	// "ConfigMap pod-identity-webhook entry <ns>/<name>".
	Object string
	// Key is the annotation (or ConfigMap field) name.
	Key string
	// Value is the value found.
	Value string
	// Want describes a valid value.
	Want string
}

func (e *AnnotationError) Error() string {
	return fmt.Sprintf("webhook: %s has %s=%q, want %s: the pod was left without AWS credentials; fix the value and recreate the pod",
		e.Object, e.Key, e.Value, e.Want)
}

// roleARNPattern is the upstream's check of role-arn annotations (pkg/cache/cache.go addSA), where
// a mismatch is only logged.
var roleARNPattern = regexp.MustCompile(`^arn:aws[a-z0-9-]*:iam::\d{12}:role/[\w/.@+=,-]+$`)

// regionPattern accepts AWS region names (us-east-1, us-gov-west-1, cn-north-1, eusc-de-east-1).
var regionPattern = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-\d+$`)

// patchConfig is what the mode, the sources and the annotations decide for one pod.
type patchConfig struct {
	mode           Mode
	roleARN        string // IRSA only
	fullURI        string // container credentials only
	audience       string
	mountPath      string
	volumeName     string
	tokenPath      string
	expiration     int64
	regionalSTS    bool
	region         string
	skipContainers map[string]bool
}

// Mutate computes the upstream webhook's mutation of pod, whose service account is sa (nil when it
// does not exist), under cfg. It does not modify its arguments.
//
// The pod's namespace is pod.Namespace (an AdmissionRequest's namespace; set it when the object
// has none). The mode is container credentials when cfg.Identities lists the service account, else
// IRSA when the service account has a role-arn annotation or cfg.Mappings an entry for it, else
// none (a nil error and Mode ModeNone).
//
// An annotation or mapping that cannot be used (a role ARN that is not one, an expiration or a
// boolean that does not parse, a malformed region) returns an *AnnotationError and no patch; the
// upstream logged these and mutated with a fallback.
func Mutate(pod *corev1.Pod, sa *corev1.ServiceAccount, cfg Config) (*Mutation, error) {
	return mutate(pod, sa, cfg, true)
}

// mutate is Mutate; with copyPod false it patches pod itself (the handler's own decoded pod) and
// Mutation.Pod is pod.
func mutate(pod *corev1.Pod, sa *corev1.ServiceAccount, cfg Config, copyPod bool) (*Mutation, error) {
	cfg = cfg.withDefaults()
	pc, err := decide(pod, sa, &cfg)
	if err != nil || pc == nil {
		return &Mutation{Mode: ModeNone}, err
	}
	out := pod
	if copyPod {
		out = pod.DeepCopy()
	}
	ops, changed := patch(out, pc, &cfg)
	return &Mutation{Mode: pc.mode, Patch: ops, Pod: out, Changed: changed}, nil
}

// decide picks the mode and its settings with the upstream's precedence (pkg/handler/handler.go
// buildPodPatchConfig): audience and regional STS: service account annotation > flag; expiration:
// pod annotation > service account annotation > flag, at least 600 s.
func decide(pod *corev1.Pod, sa *corev1.ServiceAccount, cfg *Config) (*patchConfig, error) {
	ns, name := pod.Namespace, pod.Spec.ServiceAccountName
	saObject := "service account " + ns + "/" + name
	var saAnn map[string]string
	if sa != nil {
		saAnn = sa.Annotations
	}
	pc := &patchConfig{}

	switch {
	case cfg.Identities.Has(ns, name):
		// Container credentials take precedence; regional STS and expiration still come from the
		// service account, else the exact ConfigMap entry (upstream GetCommonConfigurations).
		cc := cfg.ContainerCredentials
		*pc = patchConfig{mode: ModeContainerCredentials, fullURI: cc.FullURI, audience: cc.Audience,
			mountPath: cc.MountPath, volumeName: cc.VolumeName, tokenPath: cc.TokenPath, expiration: containerCredentialsDefault}
		if sa != nil {
			var err error
			if pc.regionalSTS, err = boolAnnotation(saAnn, cfg.annotation(AnnotationRegionalSTS), cfg.RegionalSTS, saObject); err != nil {
				return nil, err
			}
			if pc.expiration, err = expirationAnnotation(saAnn, cfg.annotation(AnnotationTokenExpiration), cfg.TokenExpiration, saObject); err != nil {
				return nil, err
			}
		} else if m, ok := cfg.Mappings[ns+"/"+name]; ok {
			pc.regionalSTS = m.UseRegionalSTS
			pc.expiration = mappingExpiration(m, cfg)
		}
	case saAnn[cfg.annotation(AnnotationRoleARN)] != "":
		key := cfg.annotation(AnnotationRoleARN)
		arn, err := roleARN(saAnn[key], cfg, saObject, key)
		if err != nil {
			return nil, err
		}
		*pc = patchConfig{mode: ModeIRSA, roleARN: arn, audience: cfg.TokenAudience}
		if aud, ok := saAnn[cfg.annotation(AnnotationAudience)]; ok {
			pc.audience = aud
		}
		if pc.regionalSTS, err = boolAnnotation(saAnn, cfg.annotation(AnnotationRegionalSTS), cfg.RegionalSTS, saObject); err != nil {
			return nil, err
		}
		if pc.expiration, err = expirationAnnotation(saAnn, cfg.annotation(AnnotationTokenExpiration), cfg.TokenExpiration, saObject); err != nil {
			return nil, err
		}
	default:
		m, ok := cfg.Mappings.lookup(ns, name)
		if !ok || m.RoleARN == "" {
			return nil, nil
		}
		object := "ConfigMap " + ConfigMapName + " entry " + ns + "/" + name
		arn, err := roleARN(m.RoleARN, cfg, object, "RoleARN")
		if err != nil {
			return nil, err
		}
		// An entry without an Audience gets --token-audience; the upstream left the projected
		// token's audience empty (the API server's own audiences, which STS refuses).
		*pc = patchConfig{mode: ModeIRSA, roleARN: arn, audience: orDefault(m.Audience, cfg.TokenAudience),
			regionalSTS: m.UseRegionalSTS, expiration: mappingExpiration(m, cfg)}
	}
	if pc.mode == ModeIRSA {
		pc.mountPath, pc.volumeName, pc.tokenPath = cfg.TokenMountPath, irsaVolumeName, irsaTokenPath
	}

	podObject := "pod " + ns + "/" + orDefault(pod.Name, pod.GenerateName)
	var err error
	if pc.expiration, err = expirationAnnotation(pod.Annotations, cfg.annotation(AnnotationTokenExpiration), pc.expiration, podObject); err != nil {
		return nil, err
	}
	if pc.mode == ModeContainerCredentials && pc.expiration == DefaultTokenExpiration {
		pc.expiration = JitterMinTokenExpiration + cfg.Rand(DefaultTokenExpiration-JitterMinTokenExpiration+1)
	}
	pc.skipContainers = skipContainers(pod.Annotations[cfg.annotation(AnnotationSkipContainers)])

	pc.region = cfg.Region
	if cfg.ServiceAccountRegion {
		key := cfg.annotation(AnnotationRegion)
		if r, ok := saAnn[key]; ok {
			if !regionPattern.MatchString(r) {
				return nil, &AnnotationError{Object: saObject, Key: key, Value: r, Want: "an AWS region name such as us-east-1"}
			}
			pc.region = r
		}
	}
	return pc, nil
}

func roleARN(v string, cfg *Config, object, key string) (string, error) {
	if !strings.Contains(v, "arn:") && cfg.ComposeRoleARN.AccountID != "" {
		v = "arn:" + cfg.ComposeRoleARN.Partition + ":iam::" + cfg.ComposeRoleARN.AccountID + ":role/" + v
	}
	if !roleARNPattern.MatchString(v) {
		return "", &AnnotationError{Object: object, Key: key, Value: v, Want: "an IAM role ARN, arn:<partition>:iam::<12-digit account>:role/<path/name>"}
	}
	return v, nil
}

func boolAnnotation(ann map[string]string, key string, def bool, object string) (bool, error) {
	v, ok := ann[key]
	if !ok {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &AnnotationError{Object: object, Key: key, Value: v, Want: `"true" or "false"`}
	}
	return b, nil
}

func expirationAnnotation(ann map[string]string, key string, def int64, object string) (int64, error) {
	v, ok := ann[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, &AnnotationError{Object: object, Key: key, Value: v, Want: "a whole number of seconds (at least 600)"}
	}
	return max(n, MinTokenExpiration), nil
}

// mappingExpiration is an entry's expiration: 0 means the flag's (upstream populateCacheFromCM),
// and at least 600 s (the upstream passed shorter ones on, and the API server refused the pod).
func mappingExpiration(m Mapping, cfg *Config) int64 {
	if m.TokenExpiration == 0 {
		return cfg.TokenExpiration
	}
	return max(m.TokenExpiration, MinTokenExpiration)
}

// skipContainers parses the skip-containers annotation as one CSV record; a value that does not
// parse skips nothing (upstream getContainersToSkip).
func skipContainers(v string) map[string]bool {
	skip := map[string]bool{}
	if v == "" {
		return skip
	}
	names, err := csv.NewReader(strings.NewReader(v)).Read()
	if err != nil {
		return skip
	}
	for _, n := range names {
		skip[n] = true
	}
	return skip
}

func orDefault(v, def string) string {
	if v != "" {
		return v
	}
	return def
}
