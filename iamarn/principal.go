package iamarn

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Kind is the kind of principal an ARN names.
type Kind string

// Principal kinds.
const (
	// User is an IAM user: arn:<p>:iam::<acct>:user[/<path>]/<name>.
	User Kind = "user"
	// Role is an IAM role: arn:<p>:iam::<acct>:role[/<path>]/<name>.
	Role Kind = "role"
	// AssumedRole is an STS session of a role: arn:<p>:sts::<acct>:assumed-role/<role>/<session>.
	AssumedRole Kind = "assumed-role"
	// Root is the account root: arn:<p>:iam::<acct>:root.
	Root Kind = "root"
	// FederatedUser is an STS federated user: arn:<p>:sts::<acct>:federated-user/<name>.
	FederatedUser Kind = "federated-user"
)

// MaxLength is the longest ARN accepted, in bytes.
const MaxLength = 2048

// Principal is a parsed IAM principal ARN.
type Principal struct {
	// ARN is the ARN as given.
	ARN string
	// Partition is the partition ID: "aws", "aws-cn", ... (see [PartitionByID]).
	Partition string
	// Service is "iam" or "sts".
	Service string
	// AccountID is the 12-digit account.
	AccountID string
	// Kind is the principal kind.
	Kind Kind
	// Path is the IAM path of a user or role ("/" when none), without the name.
	Path string
	// Name is the user, role, or federated user name ("" for root).
	Name string
	// SessionName is the session name of an assumed role.
	SessionName string
}

// Canonical returns the ARN an authenticator maps the principal to: the role ARN without path for
// an assumed-role session, the ARN as given otherwise.
func (p Principal) Canonical() string {
	if p.Kind == AssumedRole {
		role, _ := p.RoleARN()
		return role
	}
	return p.ARN
}

// RoleARN returns the role ARN without path ("arn:<p>:iam::<acct>:role/<name>") for a role or an
// assumed-role session, and false for other kinds. It is what aws-auth matches: STS drops role
// paths from the identities it returns, so a mapping with a path never matches.
func (p Principal) RoleARN() (string, bool) {
	if p.Kind != Role && p.Kind != AssumedRole {
		return "", false
	}
	return fmt.Sprintf("arn:%s:iam::%s:role/%s", p.Partition, p.AccountID, p.Name), true
}

// Parse validates an IAM principal ARN of any known partition. Errors are *ParseError and match
// ErrInvalid.
func Parse(arn string) (Principal, error) {
	if arn == "" {
		return Principal{}, &ParseError{Reason: "empty"}
	}
	if len(arn) > MaxLength {
		return Principal{}, &ParseError{Reason: fmt.Sprintf("longer than %d bytes", MaxLength)}
	}
	for _, r := range arn {
		if r > unicode.MaxASCII || unicode.IsControl(r) || unicode.IsSpace(r) {
			return Principal{}, invalid(arn, "contains whitespace, control or non-ASCII characters")
		}
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return Principal{}, invalid(arn, "expected arn:<partition>:<service>::<account>:<resource>")
	}
	p := Principal{ARN: arn, Partition: parts[1], Service: parts[2], AccountID: parts[4]}
	if _, ok := PartitionByID(p.Partition); !ok {
		return Principal{}, invalid(arn, "unknown partition %q (known: %s)", p.Partition, strings.Join(PartitionIDs(), ", "))
	}
	if parts[3] != "" {
		return Principal{}, invalid(arn, "IAM and STS ARNs have no region")
	}
	if len(p.AccountID) != 12 || strings.Trim(p.AccountID, "0123456789") != "" {
		return Principal{}, invalid(arn, "account id must be 12 digits")
	}
	resource := parts[5]
	switch p.Service {
	case "iam":
		return parseIAM(p, resource)
	case "sts":
		return parseSTS(p, resource)
	default:
		return Principal{}, invalid(arn, "service must be iam or sts, not %q", p.Service)
	}
}

func parseIAM(p Principal, resource string) (Principal, error) {
	if resource == "root" {
		p.Kind, p.Path = Root, "/"
		return p, nil
	}
	kind, rest, ok := strings.Cut(resource, "/")
	if !ok || (kind != "user" && kind != "role") {
		return Principal{}, invalid(p.ARN, "iam resource must be user/..., role/... or root")
	}
	p.Kind = Kind(kind)
	i := strings.LastIndex(rest, "/")
	p.Path, p.Name = "/"+rest[:i+1], rest[i+1:]
	if i < 0 {
		p.Path = "/"
	}
	if err := checkName(p.Name, 64); err != nil {
		return Principal{}, invalid(p.ARN, "%s name: %v", kind, err)
	}
	return p, nil
}

func parseSTS(p Principal, resource string) (Principal, error) {
	kind, rest, ok := strings.Cut(resource, "/")
	switch {
	case ok && kind == "assumed-role":
		role, session, ok := strings.Cut(rest, "/")
		if !ok || strings.Contains(session, "/") {
			return Principal{}, invalid(p.ARN, "assumed-role ARN must be assumed-role/<role>/<session>")
		}
		if err := checkName(role, 64); err != nil {
			return Principal{}, invalid(p.ARN, "role name: %v", err)
		}
		if err := checkName(session, 64); err != nil {
			return Principal{}, invalid(p.ARN, "session name: %v", err)
		}
		p.Kind, p.Path, p.Name, p.SessionName = AssumedRole, "/", role, session
		return p, nil
	case ok && kind == "federated-user":
		if err := checkName(rest, 64); err != nil || strings.Contains(rest, "/") {
			return Principal{}, invalid(p.ARN, "federated user name is not valid")
		}
		p.Kind, p.Path, p.Name = FederatedUser, "/", rest
		return p, nil
	}
	return Principal{}, invalid(p.ARN, "sts resource must be assumed-role/<role>/<session> or federated-user/<name>")
}

// checkName applies IAM's character set for user, role and session names: [\w+=,.@-].
func checkName(name string, max int) error {
	if name == "" {
		return errors.New("empty")
	}
	if len(name) > max {
		return fmt.Errorf("longer than %d characters", max)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_+=,.@-", r)) {
			return fmt.Errorf("character %q is not allowed", r)
		}
	}
	return nil
}
