package registration_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ekslink/ekslink/registration"
)

// TestDefaultClientHonoursProxyEnvironment runs a child test process with HTTP_PROXY set (the
// standard library caches the proxy environment per process) and checks that the request to a
// non-local SSM endpoint reached the proxy.
func TestDefaultClientHonoursProxyEnvironment(t *testing.T) {
	if os.Getenv("EKSLINK_PROXY_CHILD") != "" {
		key, err := registration.GenerateKey(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c, err := registration.NewFromConfig(aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String("http://ssm.eu-west-1.example.invalid"), RetryMaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		id, err := c.RegisterManagedInstance(context.Background(), registration.RegisterInput{
			ActivationID: testActivationID, ActivationCode: testActivationCode, Fingerprint: "f", PublicKey: key.PublicKey})
		if err != nil || id != "mi-viaproxy" {
			t.Fatalf("through the proxy: %q, %v", id, err)
		}
		return
	}
	seen := make(chan string, 1)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case seen <- r.URL.String():
		default:
		}
		fmt.Fprint(w, `{"InstanceId":"mi-viaproxy"}`)
	}))
	defer proxy.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDefaultClientHonoursProxyEnvironment$", "-test.count=1")
	cmd.Env = append(os.Environ(), "EKSLINK_PROXY_CHILD=1", "HTTP_PROXY="+proxy.URL, "http_proxy="+proxy.URL, "NO_PROXY=", "no_proxy=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	select {
	case u := <-seen:
		if !strings.HasPrefix(u, "http://ssm.eu-west-1.example.invalid/") {
			t.Fatalf("proxy saw %q", u)
		}
	default:
		t.Fatal("the request did not go through the proxy")
	}
}
