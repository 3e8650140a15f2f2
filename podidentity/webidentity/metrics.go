package webidentity

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ekslink/ekslink/podidentity"
)

// metrics of the backend, registered on Options.Registerer:
//
//   - ekslink_pod_identity_webidentity_sts_calls_total{outcome}: AssumeRoleWithWebIdentity calls;
//     outcome is success, refused (4xx other than throttling), throttled or unavailable;
//   - ekslink_pod_identity_webidentity_answers_total{source}: credentials handed to the server, by
//     where they came from: sts (this request's call), in_flight (joined another request's call),
//     shared (the service account's cached credentials), outage (cached credentials while STS
//     could not be reached);
//   - ekslink_pod_identity_webidentity_refusals_total{reason}: requests refused before STS:
//     invalid_token, expired_token, pod_gone, no_association, unavailable (keys, pods or
//     associations not readable).
type metrics struct {
	stsCalls *prometheus.CounterVec
	answers  *prometheus.CounterVec
	refusals *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		stsCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ekslink_pod_identity_webidentity_sts_calls_total",
			Help: "STS AssumeRoleWithWebIdentity calls, by outcome (success, refused, throttled, unavailable).",
		}, []string{"outcome"}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ekslink_pod_identity_webidentity_answers_total",
			Help: "Credentials handed to the agent's server, by source (sts, in_flight, shared, outage).",
		}, []string{"source"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ekslink_pod_identity_webidentity_refusals_total",
			Help: "Requests refused before any STS call, by reason (invalid_token, expired_token, pod_gone, no_association, unavailable).",
		}, []string{"reason"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.stsCalls, m.answers, m.refusals} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func stsOutcome(err error) string {
	if err == nil {
		return "success"
	}
	var ae *podidentity.AuthError
	switch {
	case errors.As(err, &ae) && ae.Code == podidentity.AuthThrottlingException:
		return "throttled"
	case errors.As(err, &ae) && ae.StatusCode < 500:
		return "refused"
	default:
		return "unavailable"
	}
}
