package awspartition

import (
	"fmt"
	"regexp"
	"strings"
)

// Partition describes one AWS partition.
type Partition struct {
	// ID is the partition name used in ARNs ("aws", "aws-cn", ...).
	ID string
	// DNSSuffix is the suffix of regional endpoints ("amazonaws.com", ...).
	DNSSuffix string
	// DualStackDNSSuffix is the suffix of dual-stack endpoints that EKS and STS token verification
	// accept ("" if none: the isolated partitions have dual-stack suffixes in the SDK's table, but
	// aws-iam-authenticator does not accept tokens for them, so they are left out here).
	DualStackDNSSuffix string
	// RegionPrefixes are the region name prefixes of the partition ("" matches everything: aws).
	RegionPrefixes []string
}

// Partitions, in the order regions are matched (most specific prefix first; aws last).
var partitions = []Partition{
	{ID: "aws-cn", DNSSuffix: "amazonaws.com.cn", DualStackDNSSuffix: "api.amazonwebservices.com.cn", RegionPrefixes: []string{"cn-"}},
	{ID: "aws-us-gov", DNSSuffix: "amazonaws.com", DualStackDNSSuffix: "api.aws", RegionPrefixes: []string{"us-gov-"}},
	{ID: "aws-iso-b", DNSSuffix: "sc2s.sgov.gov", RegionPrefixes: []string{"us-isob-"}},
	{ID: "aws-iso-f", DNSSuffix: "csp.hci.ic.gov", RegionPrefixes: []string{"us-isof-"}},
	{ID: "aws-iso-e", DNSSuffix: "cloud.adc-e.uk", RegionPrefixes: []string{"eu-isoe-"}},
	{ID: "aws-iso", DNSSuffix: "c2s.ic.gov", RegionPrefixes: []string{"us-iso-"}},
	{ID: "aws-eusc", DNSSuffix: "amazonaws.eu", DualStackDNSSuffix: "api.amazonwebservices.eu", RegionPrefixes: []string{"eusc-"}},
	{ID: "aws", DNSSuffix: "amazonaws.com", DualStackDNSSuffix: "api.aws"},
}

var regionPattern = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$`)

// All returns every known partition.
func All() []Partition { return append([]Partition(nil), partitions...) }

// IDs returns the known partition IDs.
func IDs() []string {
	ids := make([]string, len(partitions))
	for i, p := range partitions {
		ids[i] = p.ID
	}
	return ids
}

// ByID returns the partition with the given ARN partition name.
func ByID(id string) (Partition, bool) {
	for _, p := range partitions {
		if p.ID == id {
			return p, true
		}
	}
	return Partition{}, false
}

// ForRegion returns the partition of a region. An empty or malformed region is an error.
func ForRegion(region string) (Partition, error) {
	if region == "" {
		return Partition{}, fmt.Errorf("awspartition: no region given: set one explicitly (there is no default)")
	}
	if !regionPattern.MatchString(region) {
		return Partition{}, fmt.Errorf("awspartition: %q is not a region name (expected something like eu-west-1)", region)
	}
	for _, p := range partitions {
		if len(p.RegionPrefixes) == 0 {
			return p, nil
		}
		for _, prefix := range p.RegionPrefixes {
			if strings.HasPrefix(region, prefix) {
				return p, nil
			}
		}
	}
	return Partition{}, fmt.Errorf("awspartition: no partition for region %q", region)
}

// Hostname returns "<service>.<region>.<suffix>" for the region's partition.
func Hostname(service, region string, dualStack bool) (string, error) {
	p, err := ForRegion(region)
	if err != nil {
		return "", err
	}
	suffix := p.DNSSuffix
	if dualStack {
		if p.DualStackDNSSuffix == "" {
			return "", fmt.Errorf("awspartition: partition %s has no dual-stack endpoints", p.ID)
		}
		suffix = p.DualStackDNSSuffix
	}
	return service + "." + region + "." + suffix, nil
}
