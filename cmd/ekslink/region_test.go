package main

import (
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ekslink/ekslink/envtest/awsfake"
	"github.com/ekslink/ekslink/envtest/awstest"
)

// Every --region of ekslink falls back to the profile's region, as the AWS CLI does (the SDK's
// LoadDefaultConfig: AWS_REGION, AWS_DEFAULT_REGION, then the profile's region), and its help says
// so: none may claim that the flag is required or that there is no default.
func TestEveryRegionFlagNamesTheProfileFallback(t *testing.T) {
	n := 0
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "region" {
				return
			}
			n++
			path := c.CommandPath()
			if !strings.Contains(f.Usage, "profile") || !strings.Contains(f.Usage, "AWS_REGION") || strings.Contains(f.Usage, "required") || strings.Contains(f.Usage, "there is no default") {
				t.Errorf("%s --region: %q does not say that the profile's region is the fallback", path, f.Usage)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCommand())
	if n < 10 {
		t.Fatalf("only %d --region flags found: the walk is broken", n)
	}
}

// A connector command without --region and without AWS_REGION takes the region of --profile.
func TestConnectorCommandTakesTheProfileRegion(t *testing.T) {
	set := useAWSFake(t, awsfake.Options{})
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	noErr(t, os.WriteFile(os.Getenv("AWS_CONFIG_FILE"), []byte("[profile dev]\nregion = "+set.Region()+"\n"), 0o600))
	noErr(t, os.WriteFile(os.Getenv("AWS_SHARED_CREDENTIALS_FILE"), []byte("[dev]\naws_access_key_id = "+awstest.AccessKeyID+
		"\naws_secret_access_key = "+awstest.SecretAccessKey+"\naws_session_token = "+awstest.SessionToken+"\n"), 0o600))
	out, err := runEKS(t, "connector", "iam", "--dry-run", "--profile", "dev")
	if err != nil || !strings.Contains(out, "dry run") || set.Calls("GetRole") == 0 {
		t.Fatalf("connector iam --profile dev: %q %v (GetRole calls %d)", out, err, set.Calls("GetRole"))
	}
	if _, err := runEKS(t, "connector", "iam", "--dry-run"); err == nil || !strings.Contains(err.Error(), "no AWS region: pass --region") {
		t.Fatalf("without a region: %v", err)
	}
}
