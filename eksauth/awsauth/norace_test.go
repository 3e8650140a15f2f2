//go:build !race

package awsauth

const raceEnabled = false
