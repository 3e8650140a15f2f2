package iamarn

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		arn, canonical string
		kind           Kind
		session        string
	}{
		{"arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/alice", User, ""},
		{"arn:aws:iam::123456789012:role/team/admin", "arn:aws:iam::123456789012:role/team/admin", Role, ""},
		{"arn:aws-cn:sts::123456789012:assumed-role/Admin/bob@example.com", "arn:aws-cn:iam::123456789012:role/Admin", AssumedRole, "bob@example.com"},
		{"arn:aws-us-gov:iam::123456789012:root", "arn:aws-us-gov:iam::123456789012:root", Root, ""},
		{"arn:aws-iso-b:sts::123456789012:federated-user/carol", "arn:aws-iso-b:sts::123456789012:federated-user/carol", FederatedUser, ""},
		{"arn:aws-eusc:iam::123456789012:role/x", "arn:aws-eusc:iam::123456789012:role/x", Role, ""},
		{"arn:aws-iso:sts::123456789012:assumed-role/r/s", "arn:aws-iso:iam::123456789012:role/r", AssumedRole, "s"},
		{"arn:aws-iso-e:iam::123456789012:user/u", "arn:aws-iso-e:iam::123456789012:user/u", User, ""},
		{"arn:aws-iso-f:sts::123456789012:assumed-role/r/s", "arn:aws-iso-f:iam::123456789012:role/r", AssumedRole, "s"},
	}
	for _, tt := range tests {
		p, err := Parse(tt.arn)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.arn, err)
		}
		if p.Canonical() != tt.canonical || p.Kind != tt.kind || p.SessionName != tt.session {
			t.Errorf("Parse(%q) = %+v canonical %q", tt.arn, p, p.Canonical())
		}
	}
	p, _ := Parse("arn:aws:iam::123456789012:role/team/admin")
	if p.Path != "/team/" || p.Name != "admin" {
		t.Errorf("path/name = %q %q", p.Path, p.Name)
	}
}

func TestParseRejects(t *testing.T) {
	for _, bad := range []string{
		"", "system:masters", "arn:aws:iam::12345678901:user/a", "arn:aws:iam::123456789012:group/a",
		"arn:aws:s3:::bucket", "arn:aws:iam:us-east-1:123456789012:user/a", "arn:evil:iam::123456789012:user/a",
		"arn:aws:sts::123456789012:assumed-role/r", "arn:aws:iam::123456789012:user/a\nb",
		"arn:aws:iam::123456789012:user/", "arn:aws:iam::123456789012:user/a b", strings.Repeat("a", 3000),
	} {
		_, err := Parse(bad)
		var pe *ParseError
		if !errors.Is(err, ErrInvalid) || !errors.As(err, &pe) || pe.Reason == "" {
			t.Errorf("Parse(%q) error = %#v, want a *ParseError matching ErrInvalid", bad, err)
		}
	}
}

func TestRoleARN(t *testing.T) {
	tests := []struct {
		arn, role string
		ok        bool
	}{
		{"arn:aws:iam::123456789012:role/team/admin", "arn:aws:iam::123456789012:role/admin", true},
		{"arn:aws:iam::123456789012:role/admin", "arn:aws:iam::123456789012:role/admin", true},
		{"arn:aws-iso-e:sts::123456789012:assumed-role/Admin/s", "arn:aws-iso-e:iam::123456789012:role/Admin", true},
		{"arn:aws:iam::123456789012:user/alice", "", false},
		{"arn:aws:iam::123456789012:root", "", false},
		{"arn:aws:sts::123456789012:federated-user/carol", "", false},
	}
	for _, tt := range tests {
		p, err := Parse(tt.arn)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.arn, err)
		}
		if role, ok := p.RoleARN(); role != tt.role || ok != tt.ok {
			t.Errorf("RoleARN of %q = %q, %t; want %q, %t", tt.arn, role, ok, tt.role, tt.ok)
		}
	}
}

func TestParseErrorCutsLongInput(t *testing.T) {
	arn := "arn:aws:iam::123456789012:user/" + strings.Repeat("a", 200)
	_, err := Parse(arn)
	var pe *ParseError
	if !errors.As(err, &pe) || len(pe.ARN) > 131 || !strings.HasPrefix(arn, strings.TrimSuffix(pe.ARN, "...")) {
		t.Fatalf("error = %#v, want the ARN cut to 128 bytes", err)
	}
}
