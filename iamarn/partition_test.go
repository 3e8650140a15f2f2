package iamarn

import (
	"errors"
	"slices"
	"testing"
)

// The region prefixes and DNS suffixes are those of aws-sdk-go-v2's
// internal/endpoints/awsrulesfn/partitions.json; the SSM hosts are those of REFERENCE section 1.
func TestPartitionForRegion(t *testing.T) {
	tests := []struct {
		region, partition, suffix string
	}{
		{"us-east-1", PartitionAWS, "amazonaws.com"},
		{"eu-west-1", PartitionAWS, "amazonaws.com"},
		{"cn-north-1", PartitionChina, "amazonaws.com.cn"},
		{"us-gov-west-1", PartitionGovCloud, "amazonaws.com"},
		{"us-iso-east-1", PartitionISO, "c2s.ic.gov"},
		{"us-isob-east-1", PartitionISOB, "sc2s.sgov.gov"},
		{"us-isof-south-1", PartitionISOF, "csp.hci.ic.gov"},
		{"eu-isoe-west-1", PartitionISOE, "cloud.adc-e.uk"},
		{"eusc-de-east-1", PartitionEUSC, "amazonaws.eu"},
	}
	for _, tt := range tests {
		p, err := PartitionForRegion(tt.region)
		if err != nil || p.ID != tt.partition || p.DNSSuffix != tt.suffix {
			t.Errorf("PartitionForRegion(%q) = %q %q, %v; want %q %q", tt.region, p.ID, p.DNSSuffix, err, tt.partition, tt.suffix)
		}
	}
}

func TestPartitionForRegionRejects(t *testing.T) {
	for _, bad := range []string{"", "useast1", "US-EAST-1", "us-east-1.evil.com", "us-east-1/x", "fips-us-east-1x",
		"fips-us-east-1", "fips-us-gov-west-1", "us-west-2-fips"} {
		_, err := PartitionForRegion(bad)
		var re *RegionError
		if !errors.As(err, &re) || !errors.Is(err, ErrInvalidRegion) || re.Region != bad {
			t.Errorf("PartitionForRegion(%q) error = %#v, want a *RegionError for it matching ErrInvalidRegion", bad, err)
		}
	}
}

func TestHostname(t *testing.T) {
	tests := []struct {
		service, region string
		dualStack       bool
		want            string
	}{
		{"ssm", "cn-northwest-1", false, "ssm.cn-northwest-1.amazonaws.com.cn"},
		{"ssm", "us-iso-east-1", false, "ssm.us-iso-east-1.c2s.ic.gov"},
		{"ssm", "us-isob-east-1", false, "ssm.us-isob-east-1.sc2s.sgov.gov"},
		{"ssm", "us-isof-south-1", false, "ssm.us-isof-south-1.csp.hci.ic.gov"},
		{"ssm", "eu-isoe-west-1", false, "ssm.eu-isoe-west-1.cloud.adc-e.uk"},
		{"ssm", "eusc-de-east-1", false, "ssm.eusc-de-east-1.amazonaws.eu"},
		{"ssm", "us-gov-west-1", false, "ssm.us-gov-west-1.amazonaws.com"},
		{"sts", "us-east-2", true, "sts.us-east-2.api.aws"},
		{"sts", "cn-north-1", true, "sts.cn-north-1.api.amazonwebservices.com.cn"},
	}
	for _, tt := range tests {
		h, err := Hostname(tt.service, tt.region, tt.dualStack)
		if err != nil || h != tt.want {
			t.Errorf("Hostname(%q, %q, %t) = %q, %v; want %q", tt.service, tt.region, tt.dualStack, h, err, tt.want)
		}
	}
	if _, err := Hostname("sts", "us-iso-east-1", true); err == nil {
		t.Error("dual-stack in aws-iso should be an error")
	}
	if _, err := Hostname("ssm", "", false); !errors.Is(err, ErrInvalidRegion) {
		t.Errorf("Hostname without region: %v, want ErrInvalidRegion", err)
	}
}

func TestPartitionTable(t *testing.T) {
	want := []string{"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"}
	got := PartitionIDs()
	if len(got) != len(want) {
		t.Fatalf("PartitionIDs() = %v, want %v in any order", got, want)
	}
	for _, id := range want {
		if !slices.Contains(got, id) {
			t.Errorf("PartitionIDs() = %v lacks %s", got, id)
		}
		if p, ok := PartitionByID(id); !ok || p.ID != id {
			t.Errorf("PartitionByID(%q) = %+v, %t", id, p, ok)
		}
	}
	if _, ok := PartitionByID("aws-mars"); ok {
		t.Error("PartitionByID accepted an unknown partition")
	}
	// Callers get copies: changing them changes nothing here.
	all := Partitions()
	all[0].RegionPrefixes[0] = "zz-"
	cn, _ := PartitionByID(PartitionChina)
	cn.RegionPrefixes[0] = "zz-"
	if p, err := PartitionForRegion("cn-north-1"); err != nil || p.ID != PartitionChina {
		t.Fatalf("the partition table changed through a returned value: %+v %v", p, err)
	}
}
