package publish_test

import (
	"context"
	"testing"

	"github.com/ekslink/ekslink/oidc/publish"
	"github.com/ekslink/ekslink/oidc/publish/publishtest"
)

// One aws.Config with neither endpoint in it: Options.S3BaseEndpoint and Options.IAMBaseEndpoint
// send each client to its own endpoint, as AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL_IAM would.
func TestNewFromConfigSendsEachServiceToItsBaseEndpoint(t *testing.T) {
	s3 := publishtest.NewS3(t, "eu-west-1")
	iam := publishtest.NewIAM(t, "eu-west-1")
	cfg := s3.Config()
	cfg.BaseEndpoint = nil
	pub := publish.NewFromConfig(cfg, func(o *publish.Options) {
		o.S3BaseEndpoint = s3.Config().BaseEndpoint
		o.IAMBaseEndpoint = iam.Config().BaseEndpoint
	})
	if _, err := pub.Publish(context.Background(), site(t)); err != nil {
		t.Fatal(err)
	}
	if len(s3.Requests()) == 0 || len(iam.Requests()) == 0 {
		t.Errorf("requests: S3 %d, IAM %d; want both endpoints used", len(s3.Requests()), len(iam.Requests()))
	}
}
