package impersonation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"syscall"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// writeStatus writes a metav1.Status failure, the body every Kubernetes client understands.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, message string) {
	body, _ := json.Marshal(&metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  message,
		Reason:   reason,
		Code:     int32(code),
	})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// classifyUpstreamError maps a failure to reach the API server to a status code and a metrics
// reason: 503 when it cannot be reached (refused, reset, DNS), 504 on timeouts, 502 for TLS
// failures and anything else. Code 0 means the client went away and nothing should be written.
func classifyUpstreamError(ctx context.Context, err error) (int, metav1.StatusReason, string) {
	var (
		certErr  *tls.CertificateVerificationError
		unkAuth  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		invalid  x509.CertificateInvalidError
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
		netErr   net.Error
		opErr    *net.OpError
		dnsErr   *net.DNSError
	)
	switch {
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return 0, "", "canceled"
	case errors.Is(err, errNoToken):
		return http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "credentials"
	case errors.As(err, &certErr), errors.As(err, &unkAuth), errors.As(err, &hostErr),
		errors.As(err, &invalid), errors.As(err, &recErr), errors.As(err, &alertErr):
		return http.StatusBadGateway, metav1.StatusReasonInternalError, "tls"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return http.StatusGatewayTimeout, metav1.StatusReasonTimeout, "timeout"
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.As(err, &dnsErr), errors.As(err, &opErr) && opErr.Op == "dial":
		return http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "unavailable"
	default:
		return http.StatusBadGateway, metav1.StatusReasonInternalError, "other"
	}
}
