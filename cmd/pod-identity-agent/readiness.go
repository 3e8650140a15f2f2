package main

import (
	"encoding/json"
	"net/http"

	"github.com/ekslink/ekslink/podidentity"
)

// readiness is the server's readiness handler, failing as well while the rotated node credentials
// (--rotate-credentials) cannot be loaded: nothing can be signed then, so no new credentials can
// be fetched.
func readiness(srv *podidentity.Server, nodeCreds *podidentity.SharedCredentialsFile) http.Handler {
	next := srv.ReadinessHandler()
	if nodeCreds == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := nodeCreds.Err()
		if err == nil {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(struct {
			podidentity.Health
			NodeCredentials string `json:"nodeCredentials"`
		}{srv.Health(), err.Error()})
	})
}
