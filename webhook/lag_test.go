package webhook

import (
	"io"
	"net/http"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// laggingWatchClient returns a client whose watch streams deliver every byte lag after the API
// server sent it: an informer as far behind as on a busy cluster, where a pod can be admitted
// before the watch delivers its just-created service account (upstream issues #174, #264).
func laggingWatchClient(cfg *rest.Config, lag time.Duration) (kubernetes.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if err == nil && req.URL.Query().Get("watch") == "true" {
				resp.Body = newLaggingBody(resp.Body, lag)
			}
			return resp, err
		})
	}
	return kubernetes.NewForConfig(cfg)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type chunk struct {
	data []byte
	at   time.Time
}

type laggingBody struct {
	*io.PipeReader
	orig io.ReadCloser
}

func newLaggingBody(orig io.ReadCloser, lag time.Duration) io.ReadCloser {
	pr, pw := io.Pipe()
	chunks := make(chan chunk, 1024)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 32<<10)
			n, err := orig.Read(buf)
			if n > 0 {
				chunks <- chunk{data: buf[:n], at: time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		for c := range chunks {
			time.Sleep(time.Until(c.at.Add(lag)))
			if _, err := pw.Write(c.data); err != nil {
				break
			}
		}
		_ = pw.Close()
	}()
	return laggingBody{PipeReader: pr, orig: orig}
}

func (b laggingBody) Close() error {
	_ = b.PipeReader.Close()
	return b.orig.Close()
}
