// Command probe is the e2e test workload: it reports what a container sees (user, root file
// system, capabilities, addresses) and exits non-zero when an expectation given by a flag fails,
// so a pod's phase (Succeeded or Failed) carries the verdict and its log says why.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	uid := flag.Int("expect-uid", -1, "fail unless the process runs as this user ID")
	readOnly := flag.Bool("expect-read-only-root", false, "fail unless writing to / fails with EROFS")
	noCaps := flag.Bool("expect-no-capabilities", false, "fail unless the effective capability set is empty")
	cidr := flag.String("expect-address-in", "", "fail unless an interface has an IPv4 address in this CIDR")
	noDefaultRoute := flag.Bool("expect-no-default-route", false, "fail if the network namespace has an IPv4 default route")
	wait := flag.Bool("wait", false, "after the checks pass, run until SIGTERM or SIGINT (a pod to exec into)")
	flag.Parse()
	var failures []string
	fmt.Printf("uid=%d gid=%d\n", os.Getuid(), os.Getgid())
	if *uid >= 0 && os.Getuid() != *uid {
		failures = append(failures, fmt.Sprintf("uid %d, expected %d", os.Getuid(), *uid))
	}
	if *readOnly {
		err := os.WriteFile("/probe-write-test", []byte("x"), 0o600)
		fmt.Printf("write to /: %v\n", err)
		if !errors.Is(err, syscall.EROFS) {
			failures = append(failures, fmt.Sprintf("writing to / gave %v, expected a read-only file system", err))
		}
	}
	capEff := effectiveCapabilities()
	fmt.Printf("CapEff=%s\n", capEff)
	if *noCaps && strings.Trim(capEff, "0") != "" {
		failures = append(failures, "effective capabilities "+capEff+", expected none")
	}
	addrs := addresses()
	fmt.Printf("addresses=%s\n", strings.Join(addrs, ","))
	if *cidr != "" {
		_, want, err := net.ParseCIDR(*cidr)
		found := false
		for _, a := range addrs {
			if ip, _, perr := net.ParseCIDR(a); perr == nil && err == nil && ip.To4() != nil && want.Contains(ip) {
				found = true
			}
		}
		if !found {
			failures = append(failures, fmt.Sprintf("no address in %s (err %v)", *cidr, err))
		}
	}
	routes := defaultRoutes()
	fmt.Printf("default routes=%d\n", routes)
	if *noDefaultRoute && routes != 0 {
		failures = append(failures, fmt.Sprintf("%d IPv4 default routes, expected none (traffic must stay on this machine)", routes))
	}
	if len(failures) > 0 {
		fmt.Printf("probe FAILED: %s\n", strings.Join(failures, "; "))
		os.Exit(1)
	}
	fmt.Println("probe ok")
	if *wait {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		<-sigs
	}
}

func effectiveCapabilities() string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func addresses() []string {
	var out []string
	ifaces, err := net.Interfaces()
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	for _, ifc := range ifaces {
		as, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range as {
			out = append(out, a.String())
		}
	}
	return out
}

// defaultRoutes counts the IPv4 default routes in /proc/net/route (destination and mask 0), or -1
// when the table cannot be read.
func defaultRoutes() int {
	data, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return -1
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 8 && f[1] == "00000000" && f[7] == "00000000" {
			n++
		}
	}
	return n
}
