package awspartition

import "testing"

func TestForRegion(t *testing.T) {
	for region, want := range map[string]string{
		"us-east-1": "aws", "eu-west-1": "aws", "cn-north-1": "aws-cn", "us-gov-west-1": "aws-us-gov",
		"us-iso-east-1": "aws-iso", "us-isob-east-1": "aws-iso-b", "us-isof-south-1": "aws-iso-f",
		"eu-isoe-west-1": "aws-iso-e", "eusc-de-east-1": "aws-eusc",
	} {
		p, err := ForRegion(region)
		if err != nil || p.ID != want {
			t.Errorf("ForRegion(%q) = %q, %v; want %q", region, p.ID, err, want)
		}
	}
	for _, bad := range []string{"", "useast1", "US-EAST-1", "us-east-1.evil.com", "us-east-1/x"} {
		if _, err := ForRegion(bad); err == nil {
			t.Errorf("ForRegion(%q) succeeded, want an error", bad)
		}
	}
}

func TestHostname(t *testing.T) {
	h, err := Hostname("ssm", "cn-northwest-1", false)
	if err != nil || h != "ssm.cn-northwest-1.amazonaws.com.cn" {
		t.Fatalf("got %q %v", h, err)
	}
	h, err = Hostname("sts", "us-east-2", true)
	if err != nil || h != "sts.us-east-2.api.aws" {
		t.Fatalf("got %q %v", h, err)
	}
	if _, err := Hostname("sts", "us-iso-east-1", true); err == nil {
		t.Fatal("dual-stack in aws-iso should be an error")
	}
}
