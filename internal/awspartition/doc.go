// Package awspartition maps AWS regions to partitions and their DNS suffixes.
//
// aws-sdk-go-v2 keeps its partition table in internal packages, so the few facts ekslink needs
// (which partition a region is in, the DNS suffix of its endpoints, the dual-stack suffix) live here,
// in one place. Unknown region shapes are an error, never a silent fallback to the commercial partition.
package awspartition
