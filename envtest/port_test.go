package envtest

import (
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
)

// Ports are picked free and then bound by another process a moment later; when something else
// takes the API server's port in between, Start must start on another port instead of retrying
// the taken one until it gives up.
func TestStartSurvivesATakenAPIServerPort(t *testing.T) {
	if _, err := FindBinaries(); err != nil {
		Shared(t) // skips, or fails under CI, with the usual message
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	real := freePort
	t.Cleanup(func() { freePort = real })
	var mu sync.Mutex
	calls := 0
	freePort = func() (int, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 3 { // etcd's client and peer ports come first, then the API server's
			return takenPort, nil
		}
		return real()
	}

	env := Start(t, &Environment{})
	u, err := url.Parse(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == strconv.Itoa(takenPort) {
		t.Fatalf("the API server claims the taken port %d", takenPort)
	}
	if _, err := env.Client.Discovery().ServerVersion(); err != nil {
		t.Fatalf("the API server on %s does not answer: %v", env.URL, err)
	}
}
