package webhook

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ekslink/ekslink/envtest"
)

// A caller that arrives while a read is under way never gets that read's answer (it may predate
// the change the caller must see): it gets the next read, which every caller arriving meanwhile
// shares.
func TestFreshReadsNeverAnswerWithAReadThatStartedEarlier(t *testing.T) {
	var f freshReads
	var reads atomic.Int32
	release := make(chan struct{})
	read := func() (*corev1.ServiceAccount, error) {
		n := reads.Add(1)
		if n == 1 {
			<-release
		}
		return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{ResourceVersion: string(rune('0' + n))}}, nil
	}
	first := make(chan string)
	go func() {
		sa, _ := f.do("ns/sa", 5*time.Second, read)
		first <- sa.ResourceVersion
	}()
	for reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	later := make([]string, 10)
	for i := range later {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sa, _ := f.do("ns/sa", 5*time.Second, read)
			later[i] = sa.ResourceVersion
		}()
	}
	time.Sleep(50 * time.Millisecond) // let them queue behind the running read
	close(release)
	wg.Wait()
	if got := <-first; got != "1" {
		t.Errorf("first caller got read %s, want 1", got)
	}
	for i, v := range later {
		if v != "2" {
			t.Errorf("caller %d arriving during read 1 got read %s, want 2", i, v)
		}
	}
	if n := reads.Load(); n != 2 {
		t.Errorf("%d reads for 11 callers, want 2", n)
	}
}

// With LookupLive, when the API server does not answer within LookupTimeout, the informer cache does: an
// overloaded API server delays pods by the bound, never more, and they still get credentials.
func TestSlowAPIServerFallsBackToTheCache(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	createSA(t, env, ns, "app", map[string]string{"eks.amazonaws.com/role-arn": testARN})
	cfg := rest.CopyConfig(env.Config)
	var slow atomic.Bool
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			if slow.Load() && req.Method == http.MethodGet && req.URL.Query().Get("watch") != "true" && strings.Contains(req.URL.Path, "/serviceaccounts/") {
				time.Sleep(2 * time.Second)
			}
			return rt.RoundTrip(req)
		})
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := startWebhookWith(t, env, client, ns, Config{}, Options{LookupTimeout: 200 * time.Millisecond, LookupLive: true}, "v1")
	slow.Store(true)
	start := time.Now()
	p, err := env.Client.CoreV1().Pods(ns).Create(envtest.Context(t), podFor(ns, "app", "app"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkIRSA(p, testARN); err != nil {
		t.Error(err)
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("admission took %s with a 200ms lookup bound", took)
	}
	if n := counterValue(w.h.metrics.lookups.WithLabelValues("cache_fallback")); n != 1 {
		t.Errorf("lookups{source=cache_fallback} = %.0f, want 1", n)
	}
}
