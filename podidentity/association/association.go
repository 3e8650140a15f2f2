package association

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/ekslink/ekslink/iamarn"
)

// Defaults of Options.
const (
	// DefaultNamespace is the namespace of the associations ConfigMap.
	DefaultNamespace = "kube-system"
	// DefaultName is the name of the associations ConfigMap.
	DefaultName = "ekslink-pod-identity-associations"
)

// Options name the ConfigMap that holds the associations; zero values mean the defaults.
type Options struct {
	// Namespace of the ConfigMap (default DefaultNamespace).
	Namespace string
	// Name of the ConfigMap (default DefaultName).
	Name string
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	return o
}

// Association gives the pods of one service account an IAM role.
type Association struct {
	// Namespace of the service account.
	Namespace string `json:"namespace"`
	// ServiceAccount is the service account's name.
	ServiceAccount string `json:"serviceAccount"`
	// RoleARN is the IAM role (arn:<partition>:iam::<account>:role[/<path>]/<name>).
	RoleARN string `json:"roleArn"`
}

// Key is the ConfigMap key of the association: "<namespace>.<serviceAccount>".
func (a Association) Key() string { return Key(a.Namespace, a.ServiceAccount) }

// Key is the ConfigMap key of a service account's association.
func Key(namespace, serviceAccount string) string { return namespace + "." + serviceAccount }

// ErrInvalid is matched (errors.Is) by every validation error.
var ErrInvalid = errors.New("association: invalid")

// ValidationError says which field is wrong, what was found and what is expected.
type ValidationError struct {
	// Field is "namespace", "serviceAccount" or "roleArn".
	Field string
	// Value is the value found.
	Value string
	// Reason says what is expected.
	Reason string
}

// Error implements error.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("association: %s %q: %s", e.Field, e.Value, e.Reason)
}

// Is matches ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

var (
	dnsLabel     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// Validate checks the namespace (a DNS label, as Kubernetes requires), the service account name (a
// DNS subdomain) and the role ARN (an IAM role ARN of a known partition, parsed by iamarn).
func (a Association) Validate() error {
	if len(a.Namespace) == 0 || len(a.Namespace) > 63 || !dnsLabel.MatchString(a.Namespace) {
		return &ValidationError{"namespace", a.Namespace, "want a Kubernetes namespace name (lower-case letters, digits and '-', at most 63)"}
	}
	if len(a.ServiceAccount) == 0 || len(a.ServiceAccount) > 253 || !dnsSubdomain.MatchString(a.ServiceAccount) {
		return &ValidationError{"serviceAccount", a.ServiceAccount, "want a Kubernetes service account name (lower-case letters, digits, '-' and '.', at most 253)"}
	}
	p, err := iamarn.Parse(a.RoleARN)
	if err != nil {
		return &ValidationError{"roleArn", a.RoleARN, "want an IAM role ARN (arn:aws:iam::111122223333:role/name): " + err.Error()}
	}
	if p.Kind != iamarn.Role {
		return &ValidationError{"roleArn", a.RoleARN, fmt.Sprintf("want an IAM role ARN (arn:%s:iam::<account>:role/<name>), got a %s", p.Partition, p.Kind)}
	}
	return nil
}

// value is the JSON stored under an association's key.
type value struct {
	RoleARN string `json:"roleArn"`
}

func encodeValue(a Association) string {
	b, _ := json.Marshal(value{RoleARN: a.RoleARN})
	return string(b)
}

// Problem is a ConfigMap entry that is not a valid association (a hand edit); readers skip it.
type Problem struct {
	// Key is the ConfigMap key.
	Key string
	// Err says what is wrong.
	Err error
}

// Decode reads the associations of a ConfigMap's data, sorted by key; invalid entries are returned
// as problems, never as associations.
func Decode(data map[string]string) ([]Association, []Problem) {
	var out []Association
	var problems []Problem
	for k, v := range data {
		ns, sa, ok := strings.Cut(k, ".")
		if !ok {
			problems = append(problems, Problem{k, fmt.Errorf("association: key %q: want <namespace>.<serviceAccount>", k)})
			continue
		}
		var val value
		dec := json.NewDecoder(strings.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&val); err != nil {
			problems = append(problems, Problem{k, fmt.Errorf("association: key %q: value is not {\"roleArn\":\"...\"}: %v", k, err)})
			continue
		}
		a := Association{Namespace: ns, ServiceAccount: sa, RoleARN: val.RoleARN}
		if err := a.Validate(); err != nil {
			problems = append(problems, Problem{k, err})
			continue
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	sort.Slice(problems, func(i, j int) bool { return problems[i].Key < problems[j].Key })
	return out, problems
}
