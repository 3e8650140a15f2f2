//go:build race

package awsauth

// raceEnabled: the race detector's instrumentation allocates several times more.
const raceEnabled = true
