package webidentity

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ekslink/ekslink/podidentity/association"
)

// An STS outage must reach the pod as a retryable 503 within the server's UpstreamTimeout (5 s):
// the SDK's standard retryer backs off up to 20 s between attempts (two backoffs of up to 2 and
// 4 s with its defaults), which turned an outage into a 504 timeout now and then. NewFromConfig
// caps each backoff at MaxRetryBackoff, whatever retryer the aws.Config brings.
func TestSTSRetryBackoffFitsTheServersTimeout(t *testing.T) {
	slow := func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxBackoff = time.Minute
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Minute, nil })
		})
	}
	cfg := aws.Config{Region: "eu-west-1", Retryer: slow}
	// Constructing the backend contacts nothing; the client only has to exist.
	kube := kubernetes.NewForConfigOrDie(&rest.Config{Host: "https://127.0.0.1:1"})
	b, err := NewFromConfig(cfg, kube, association.NewIndex(kube, association.IndexOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	client, ok := b.sts.(*sts.Client)
	if !ok {
		t.Fatalf("the backend's STS API is %T, want *sts.Client", b.sts)
	}
	r := client.Options().Retryer
	for attempt := 1; attempt < r.MaxAttempts(); attempt++ {
		d, err := r.RetryDelay(attempt, errors.New("connection refused"))
		if err != nil {
			t.Fatal(err)
		}
		if d > MaxRetryBackoff {
			t.Fatalf("backoff before attempt %d is %s, want at most %s", attempt+1, d, MaxRetryBackoff)
		}
	}
}
