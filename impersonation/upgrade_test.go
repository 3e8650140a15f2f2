package impersonation

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// upgradeUpstream echoes bytes over WebSocket and over SPDY streams, like the API server's exec
// endpoint would after its handshake.
func upgradeUpstream(t *testing.T) *recordingUpstream {
	ws := websocket.Upgrader{Subprotocols: []string{"v5.channel.k8s.io"}}
	return newRecordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch strings.ToLower(r.Header.Get("Upgrade")) {
		case "websocket":
			c, err := ws.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			for {
				mt, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				if err := c.WriteMessage(mt, append([]byte("echo:"), msg...)); err != nil {
					return
				}
			}
		case "spdy/3.1":
			conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(s httpstream.Stream, replySent <-chan struct{}) error {
				go func() {
					<-replySent
					_, _ = io.Copy(s, s)
					_ = s.Close()
				}()
				return nil
			})
			if conn != nil {
				<-conn.CloseChan()
			}
		default:
			http.Error(w, "upgrade required", http.StatusBadRequest)
		}
	})
}

func TestUpgradesRoundTripBytesBothWays(t *testing.T) {
	up := upgradeUpstream(t)
	cfg, _ := upstreamConfig(t, up, "proxy-token")
	h := newTestHandler(t, Config{Upstream: cfg, UserExtras: true})
	proxy := serveHandler(t, h)

	t.Run("WebSocket", func(t *testing.T) {
		hdr := http.Header{}
		hdr.Set(DefaultIdentityHeader, testUserARN)
		hdr.Set("Impersonate-User", "system:admin") // must not survive
		// A client credential the API server would accept when the proxy's token fails: removed.
		bearer := "base64url.bearer.authorization.k8s.io.c3RvbGVu"
		d := websocket.Dialer{Subprotocols: []string{bearer, "v5.channel.k8s.io"}, HandshakeTimeout: 5 * time.Second}
		c, resp, err := d.Dial("ws"+strings.TrimPrefix(proxy, "http")+"/api/v1/namespaces/default/pods/p/exec?command=sh", hdr)
		if err != nil {
			t.Fatalf("dial: %v (resp %v)", err, resp)
		}
		defer c.Close()
		if c.Subprotocol() != "v5.channel.k8s.io" {
			t.Errorf("subprotocol %q", c.Subprotocol())
		}
		must(t, c.SetReadDeadline(time.Now().Add(10*time.Second))) // fail, not hang, if the echo is lost
		for i := 0; i < 3; i++ {
			msg := bytes.Repeat([]byte{byte('a' + i)}, 1000*i+1)
			must(t, c.WriteMessage(websocket.BinaryMessage, msg))
			_, got, err := c.ReadMessage()
			must(t, err)
			if !bytes.Equal(got, append([]byte("echo:"), msg...)) {
				t.Fatalf("echo mismatch: %d bytes", len(got))
			}
		}
		assertUpgradeHeaders(t, up.last(t), "websocket")
		if got := up.last(t).Values("Sec-Websocket-Protocol"); len(got) != 1 || got[0] != "v5.channel.k8s.io" {
			t.Errorf("upstream Sec-WebSocket-Protocol %q, want only v5.channel.k8s.io", got)
		}
	})

	t.Run("SPDY", func(t *testing.T) {
		rt, err := spdy.NewRoundTripper(nil)
		must(t, err)
		req, _ := http.NewRequest(http.MethodPost, proxy+"/api/v1/namespaces/default/pods/p/exec?command=sh", nil)
		req.Header.Set(DefaultIdentityHeader, testSessionARN)
		req.Header.Set("X-Stream-Protocol-Version", "v4.channel.k8s.io")
		resp, err := rt.RoundTrip(req)
		must(t, err)
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status %d", resp.StatusCode)
		}
		conn, err := rt.NewConnection(resp)
		must(t, err)
		defer conn.Close()
		defer time.AfterFunc(10*time.Second, func() { conn.Close() }).Stop() // fail, not hang
		s, err := conn.CreateStream(http.Header{"Streamtype": {"stdin"}})
		must(t, err)
		msg := []byte("hello over spdy")
		_, err = s.Write(msg)
		must(t, err)
		got := make([]byte, len(msg))
		_, err = io.ReadFull(s, got)
		must(t, err)
		if !bytes.Equal(got, msg) {
			t.Fatalf("echo %q", got)
		}
		hdr := up.last(t)
		assertUpgradeHeaders(t, hdr, "SPDY/3.1")
		if hdr.Get("X-Stream-Protocol-Version") != "v4.channel.k8s.io" {
			t.Errorf("X-Stream-Protocol-Version %q", hdr.Get("X-Stream-Protocol-Version"))
		}
		if hdr.Get("Impersonate-Extra-Sessionname") != "alice@example.com" {
			t.Errorf("session extra %q", hdr.Get("Impersonate-Extra-Sessionname"))
		}
	})
	waitFor(t, 5*time.Second, "upgrade streams to end", func() bool {
		return metricValue(h.metrics.activeStreams.WithLabelValues("upgrade")) == 0
	})
	if got := metricValue(h.metrics.requests.WithLabelValues("101", "upgrade")); got != 2 {
		t.Errorf("requests{code=101,kind=upgrade} = %v, want 2", got)
	}
}

func assertUpgradeHeaders(t *testing.T, hdr http.Header, upgrade string) {
	t.Helper()
	if hdr.Get("Authorization") != "Bearer proxy-token" {
		t.Errorf("Authorization %q", hdr.Get("Authorization"))
	}
	if u := hdr.Get("Impersonate-User"); !strings.HasPrefix(u, "arn:aws:") {
		t.Errorf("Impersonate-User %q", u)
	}
	if len(hdr.Values("Impersonate-User")) != 1 {
		t.Errorf("Impersonate-User values %q", hdr.Values("Impersonate-User"))
	}
	if !strings.EqualFold(hdr.Get("Upgrade"), upgrade) || !strings.EqualFold(hdr.Get("Connection"), "Upgrade") {
		t.Errorf("Upgrade %q Connection %q", hdr.Get("Upgrade"), hdr.Get("Connection"))
	}
}
