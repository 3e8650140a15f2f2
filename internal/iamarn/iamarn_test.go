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
		if _, err := Parse(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) error = %v, want ErrInvalid", bad, err)
		}
	}
}
