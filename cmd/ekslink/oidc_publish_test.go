package main

import (
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/ekslink/ekslink/envtest/awstest"
	"github.com/ekslink/ekslink/oidc/publish"
	"github.com/ekslink/ekslink/oidc/publish/publishtest"
)

func TestOIDCPublishTwiceChangesNothingTheSecondTime(t *testing.T) {
	s3 := publishtest.NewS3(t, "eu-west-1")
	iam := publishtest.NewIAM(t, "eu-west-1")
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s3.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_S3": s3.URL, "AWS_ENDPOINT_URL_IAM": iam.URL, "AWS_CA_BUNDLE": ca,
		"AWS_ACCESS_KEY_ID": awstest.AccessKeyID, "AWS_SECRET_ACCESS_KEY": awstest.SecretAccessKey, "AWS_SESSION_TOKEN": awstest.SessionToken,
		"AWS_CONFIG_FILE": filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "none"),
		"AWS_PROFILE": "", "AWS_REGION": "", "AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
	if _, _, err := runOIDC(t, nil, "", "keygen", "--out-dir", dir); err != nil {
		t.Fatal(err)
	}
	args := []string{"publish", "--issuer", "https://s3.eu-west-1.amazonaws.com/cli-irsa", "--key-file", filepath.Join(dir, "sa.pub"),
		"--region", "eu-west-1", "--create-bucket"}

	out, _, err := runOIDC(t, nil, "", args...)
	if err != nil {
		t.Fatal(err)
	}
	var res publish.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Changes) != 5 || res.ProviderARN == "" {
		t.Fatalf("first run: %q %v", out, err)
	}
	s3.Reset()
	iam.Reset()
	out, _, err = runOIDC(t, nil, "", args...)
	if err != nil {
		t.Fatal(err)
	}
	res = publish.Result{}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Changes) != 0 {
		t.Fatalf("second run: %q %v", out, err)
	}
	if w := publishtest.Writes(s3, iam); len(w) != 0 {
		t.Fatalf("second run wrote %q", w)
	}

	// A failure (bucket blocked from public policies) prints nothing on stdout.
	s3.PutBucket("blocked", publishtest.Bucket{PublicAccessBlock: map[string]bool{"BlockPublicPolicy": true}})
	out, _, err = runOIDC(t, nil, "", "publish", "--issuer", "https://s3.eu-west-1.amazonaws.com/blocked", "--key-file", filepath.Join(dir, "sa.pub"), "--region", "eu-west-1")
	if err == nil || out != "" {
		t.Fatalf("blocked bucket: out %q err %v", out, err)
	}
}
