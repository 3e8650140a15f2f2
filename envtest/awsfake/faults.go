package awsfake

import (
	"net/http"

	"github.com/ekslink/ekslink/envtest/awstest"
)

// fault is an error answer queued for an operation.
type fault struct {
	status        int
	code, message string
}

// Fail makes the next n calls of operation (an IAM action, an SSM target's operation or an EKS
// operation name such as "DescribeCluster") answer with code and message, in the wire shape of the
// operation's protocol, instead of running. Use it for the answers a test cannot provoke otherwise:
// ThrottlingException (400, retried by the SDK), AccessDenied / AccessDeniedException (403).
func (s *Set) Fail(operation string, n int, status int, code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[operation] = append(s.faults[operation], fault{status, code, message})
	}
}

// Calls is the number of requests for operation that reached the set (failed or not, faults
// included): a test of idempotence counts the writes of a second run with it.
func (s *Set) Calls(operation string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[operation]
}

// op wraps an operation's handler: it counts the call and answers a queued fault instead, in srv's
// protocol.
func (s *Set) op(srv *awstest.Server, name string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls[name]++
		var f *fault
		if q := s.faults[name]; len(q) > 0 {
			f = &q[0]
			s.faults[name] = q[1:]
		}
		s.mu.Unlock()
		if f != nil {
			srv.WriteError(w, f.status, f.code, f.message)
			return
		}
		h(w, r)
	}
}
