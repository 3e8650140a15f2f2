package iamarn

import (
	"fmt"
	"regexp"
	"strings"
)

// Partition IDs, as they appear in ARNs.
const (
	// PartitionAWS is the commercial partition.
	PartitionAWS = "aws"
	// PartitionChina is the China partition (regions cn-*).
	PartitionChina = "aws-cn"
	// PartitionGovCloud is AWS GovCloud (US) (regions us-gov-*).
	PartitionGovCloud = "aws-us-gov"
	// PartitionISO is the US ISO partition (regions us-iso-*).
	PartitionISO = "aws-iso"
	// PartitionISOB is the US ISOB partition (regions us-isob-*).
	PartitionISOB = "aws-iso-b"
	// PartitionISOE is the EU ISOE partition (regions eu-isoe-*).
	PartitionISOE = "aws-iso-e"
	// PartitionISOF is the US ISOF partition (regions us-isof-*).
	PartitionISOF = "aws-iso-f"
	// PartitionEUSC is the AWS European Sovereign Cloud (regions eusc-*).
	PartitionEUSC = "aws-eusc"
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
	// RegionPrefixes are the region name prefixes of the partition (none for aws, which takes
	// every well-formed region no other partition claims).
	RegionPrefixes []string
}

// partitions, in the order regions are matched (most specific prefix first; aws last). The
// suffixes are those of aws-sdk-go-v2's internal/endpoints/awsrulesfn/partitions.json.
var partitions = []Partition{
	{ID: PartitionChina, DNSSuffix: "amazonaws.com.cn", DualStackDNSSuffix: "api.amazonwebservices.com.cn", RegionPrefixes: []string{"cn-"}},
	{ID: PartitionGovCloud, DNSSuffix: "amazonaws.com", DualStackDNSSuffix: "api.aws", RegionPrefixes: []string{"us-gov-"}},
	{ID: PartitionISOB, DNSSuffix: "sc2s.sgov.gov", RegionPrefixes: []string{"us-isob-"}},
	{ID: PartitionISOF, DNSSuffix: "csp.hci.ic.gov", RegionPrefixes: []string{"us-isof-"}},
	{ID: PartitionISOE, DNSSuffix: "cloud.adc-e.uk", RegionPrefixes: []string{"eu-isoe-"}},
	{ID: PartitionISO, DNSSuffix: "c2s.ic.gov", RegionPrefixes: []string{"us-iso-"}},
	{ID: PartitionEUSC, DNSSuffix: "amazonaws.eu", DualStackDNSSuffix: "api.amazonwebservices.eu", RegionPrefixes: []string{"eusc-"}},
	{ID: PartitionAWS, DNSSuffix: "amazonaws.com", DualStackDNSSuffix: "api.aws"},
}

var regionPattern = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$`)

// Partitions returns every known partition (a copy: changing it changes nothing here).
func Partitions() []Partition {
	out := make([]Partition, len(partitions))
	for i, p := range partitions {
		out[i] = clone(p)
	}
	return out
}

// clone copies p so callers cannot change the table through RegionPrefixes.
func clone(p Partition) Partition {
	p.RegionPrefixes = append([]string(nil), p.RegionPrefixes...)
	return p
}

// PartitionIDs returns the known partition IDs.
func PartitionIDs() []string {
	ids := make([]string, len(partitions))
	for i, p := range partitions {
		ids[i] = p.ID
	}
	return ids
}

// PartitionByID returns the partition with the given ARN partition name, and false when there is
// none.
func PartitionByID(id string) (Partition, bool) {
	for _, p := range partitions {
		if p.ID == id {
			return clone(p), true
		}
	}
	return Partition{}, false
}

// PartitionForRegion returns the partition of a region. An empty or malformed region, and the SDK's
// FIPS pseudo-regions ("fips-us-east-1", "us-east-1-fips": they name no endpoint EKS, STS or SSM
// accept, and "fips-us-gov-west-1" does not even start with its partition's prefix), are a
// *RegionError (matching ErrInvalidRegion); there is no default partition.
func PartitionForRegion(region string) (Partition, error) {
	if region == "" {
		return Partition{}, &RegionError{Reason: "no region given: set one explicitly (there is no default)"}
	}
	if strings.HasPrefix(region, "fips-") || strings.HasSuffix(region, "-fips") {
		return Partition{}, &RegionError{Region: region, Reason: fmt.Sprintf("%q is a FIPS pseudo-region, not a region: use region %s with the FIPS option", region, strings.TrimSuffix(strings.TrimPrefix(region, "fips-"), "-fips"))}
	}
	if !regionPattern.MatchString(region) {
		return Partition{}, &RegionError{Region: region, Reason: fmt.Sprintf("%q is not a region name (expected something like eu-west-1)", region)}
	}
	for _, p := range partitions {
		if len(p.RegionPrefixes) == 0 {
			return clone(p), nil
		}
		for _, prefix := range p.RegionPrefixes {
			if strings.HasPrefix(region, prefix) {
				return clone(p), nil
			}
		}
	}
	return Partition{}, &RegionError{Region: region, Reason: fmt.Sprintf("no partition for region %q", region)}
}

// Hostname returns "<service>.<region>.<suffix>" for the region's partition, with the dual-stack
// suffix when dualStack is set. A region without a partition is a *RegionError; dual-stack in a
// partition without dual-stack endpoints is an error too.
func Hostname(service, region string, dualStack bool) (string, error) {
	p, err := PartitionForRegion(region)
	if err != nil {
		return "", err
	}
	suffix := p.DNSSuffix
	if dualStack {
		if p.DualStackDNSSuffix == "" {
			return "", fmt.Errorf("iamarn: partition %s has no dual-stack endpoints", p.ID)
		}
		suffix = p.DualStackDNSSuffix
	}
	return service + "." + region + "." + suffix, nil
}
