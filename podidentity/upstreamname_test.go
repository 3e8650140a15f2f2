package podidentity

import (
	"context"
	"strings"
	"testing"
	"time"
)

// hangingUpstream never answers; it names itself like the web identity backend does.
type hangingUpstream struct{ name string }

func (h hangingUpstream) AssumeRoleForPodIdentity(ctx context.Context, _, _ string) (*AssumeRoleForPodIdentityOutput, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (h hangingUpstream) UpstreamName() string { return h.name }

// The answers the server writes itself name the upstream: "EKS Auth" by default, the name an
// UpstreamNamer gives otherwise (the web identity backend calls STS, never EKS Auth), so that the
// pod's SDK error says which service did not answer.
func TestTimeoutNamesTheUpstream(t *testing.T) {
	for _, tc := range []struct{ name, want string }{{"", "EKS Auth did not answer in time"}, {"STS", "STS did not answer in time"}} {
		a := startAgent(t, hangingUpstream{name: tc.name}, ServerOptions{UpstreamTimeout: 200 * time.Millisecond})
		ans := a.get(t, makeToken(time.Now().Add(24*time.Hour), nil))
		if ans.status != 504 || ans.body["code"] != CodeUpstreamTimeout || !strings.Contains(ans.body["message"], tc.want) {
			t.Errorf("upstream %q: %d %s, want 504 %s naming it", tc.name, ans.status, ans.raw, CodeUpstreamTimeout)
		}
	}
}
