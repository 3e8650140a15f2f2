package webhook

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseMappings(t *testing.T) {
	// The upstream README's example shape (field names as in pkg/cache/cache.go Entry), with our
	// own values; keys are matched case-insensitively as encoding/json does upstream.
	got, err := ParseMappings(`{"apps/reader":{"RoleARN":"` + testARN + `","Audience":"sts.amazonaws.com","UseRegionalSTS":true,"TokenExpiration":0},` +
		`"*/writer":{"rolearn":"arn:aws:iam::123456789012:role/writer"}}`)
	if err != nil {
		t.Fatal(err)
	}
	want := Mappings{
		"apps/reader": {RoleARN: testARN, Audience: "sts.amazonaws.com", UseRegionalSTS: true},
		"*/writer":    {RoleARN: "arn:aws:iam::123456789012:role/writer"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if m, ok := got.lookup("other", "writer"); !ok || m.RoleARN == "" {
		t.Errorf("wildcard entry not found for another namespace")
	}
	if m, err := ParseMappings(""); err != nil || m != nil {
		t.Errorf("empty config = %v, %v; want no mappings", m, err)
	}
	for _, bad := range []string{`[1]`, `{"reader":{}}`, `{"a/b/c":{}}`, `{"/b":{}}`} {
		if _, err := ParseMappings(bad); err == nil || !strings.Contains(err.Error(), ConfigMapName) {
			t.Errorf("ParseMappings(%s) = %v, want an error naming the ConfigMap", bad, err)
		}
	}
}

func TestParseIdentities(t *testing.T) {
	// pkg/containercredentials/types.go IdentityConfigObject
	got, err := ParseIdentities([]byte(`{"identities":[{"namespace":"apps","serviceAccount":"reader"},{"namespace":"ops","serviceAccount":"agent"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Has("apps", "reader") || !got.Has("ops", "agent") || got.Has("apps", "agent") || len(got) != 2 {
		t.Errorf("got %v", got)
	}
	// pkg/containercredentials/config.go Load: an empty file clears the set
	if empty, err := ParseIdentities([]byte("\n")); err != nil || len(empty) != 0 {
		t.Errorf("empty file = %v, %v", empty, err)
	}
	if _, err := ParseIdentities([]byte(`{"identities":`)); err == nil {
		t.Errorf("truncated file parsed")
	}
}
