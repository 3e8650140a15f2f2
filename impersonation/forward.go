package impersonation

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// forward proxies a plain request (not an upgrade, not a watch or log follow) as id. It is the
// hot path of the proxy and does what httputil.ReverseProxy does for such a request with one
// copy of the request instead of four (ReverseProxy's clone, two context copies and
// RoundTripper's clone): the same header sanitizing and impersonation as RoundTripper, the same
// URL rewrite as ProxyRequest.SetURL, the same query cleaning, hop-by-hop response header
// removal, trailer handling and flushing rule (every write of a response without a
// Content-Length goes out at once). Upgrades and streams keep going through ReverseProxy.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, id Identity) {
	ctx := r.Context()
	out := r.Clone(ctx)
	if r.ContentLength == 0 {
		out.Body = nil // as ReverseProxy: lets the transport retry on a fresh connection
	}
	if out.Body != nil {
		// The transport closes the outbound body on failure; that must not close (and drain)
		// the inbound one under the server. The handler closes it when it returns.
		out.Body = noopCloser{out.Body}
		defer out.Body.Close()
	}
	if out.Header == nil {
		out.Header = http.Header{}
	}
	out.RequestURI = ""
	out.Close = false
	out.Host = ""
	rewriteURL(out.URL, h.target)
	out.Trailer = nil
	Sanitize(out.Header)
	deleteFold(out.Header, h.header)
	SetIdentityHeaders(out.Header, id)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = []string{""} // not Go's default user agent
	}

	resp, err := h.transport.roundTripOwned(out)
	if err != nil {
		h.upstreamError(w, out, err)
		return
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		_ = resp.Body.Close()
		h.upstreamError(w, out, errors.New("the API server switched protocols without an upgrade request"))
		return
	}
	removeResponseHopByHop(resp.Header)
	dst := w.Header()
	for k, vs := range resp.Header {
		dst[k] = append(dst[k], vs...)
	}
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(resp.StatusCode)

	if err := h.copyBody(w, resp); err != nil {
		_ = resp.Body.Close()
		if ctx.Value(http.ServerContextKey) != nil {
			panic(http.ErrAbortHandler) // the server aborts the response, as ReverseProxy does
		}
		return
	}
	_ = resp.Body.Close() // now, to populate resp.Trailer

	if len(resp.Trailer) > 0 {
		// Force chunking, so that the trailers can follow the body.
		_ = http.NewResponseController(w).Flush()
	}
	if len(resp.Trailer) == announced {
		for k, vs := range resp.Trailer {
			dst[k] = append(dst[k], vs...)
		}
		return
	}
	for k, vs := range resp.Trailer {
		k = http.TrailerPrefix + k
		for _, v := range vs {
			dst.Add(k, v)
		}
	}
}

// copyBody copies the response body, flushing the headers at once and after every write when the
// response has no Content-Length (a stream) or is an event stream, and returning write errors and read errors
// other than the end of the body.
func (h *Handler) copyBody(w http.ResponseWriter, resp *http.Response) error {
	flush := resp.ContentLength == -1
	if !flush {
		if ct := resp.Header.Get("Content-Type"); ct != "" && strings.Contains(ct, "event-stream") {
			if mt, _, _ := mime.ParseMediaType(ct); mt == "text/event-stream" {
				flush = true
			}
		}
	}
	var flusher *http.ResponseController
	if flush {
		// The headers go out now: a stream may not send its first bytes for a long time.
		flusher = http.NewResponseController(w)
		if err := flusher.Flush(); err != nil {
			return err
		}
	}
	bp := h.buffers.pool.Get().(*[]byte) // the pointer itself: Put([]byte) allocates one
	defer h.buffers.pool.Put(bp)
	buf := *bp
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if flusher != nil {
				if err := flusher.Flush(); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			if h.log.V(1).Enabled() {
				h.log.V(1).Info("reading the API server's response failed", "error", rerr.Error())
			}
			return rerr
		}
	}
}

type noopCloser struct{ io.Reader }

func (noopCloser) Close() error { return nil }

// rewriteURL points u at target as httputil.ProxyRequest.SetURL does (joined paths, target
// query first) and drops query parameters that do not parse, as ReverseProxy does.
func rewriteURL(u, target *url.URL) {
	u.Scheme = target.Scheme
	u.Host = target.Host
	u.Path, u.RawPath = joinPath(target, u)
	q := cleanQuery(u.RawQuery)
	switch {
	case target.RawQuery == "":
		u.RawQuery = q
	case q == "":
		u.RawQuery = target.RawQuery
	default:
		u.RawQuery = target.RawQuery + "&" + q
	}
}

func joinPath(a, b *url.URL) (path, rawPath string) {
	if a.RawPath == "" && b.RawPath == "" {
		return joinSlash(a.Path, b.Path), ""
	}
	ap, bp := a.EscapedPath(), b.EscapedPath()
	as, bs := strings.HasSuffix(ap, "/"), strings.HasPrefix(bp, "/")
	switch {
	case as && bs:
		return a.Path + b.Path[1:], ap + bp[1:]
	case !as && !bs:
		return a.Path + "/" + b.Path, ap + "/" + bp
	}
	return a.Path + b.Path, ap + bp
}

func joinSlash(a, b string) string {
	as, bs := strings.HasSuffix(a, "/"), strings.HasPrefix(b, "/")
	switch {
	case as && bs:
		return a + b[1:]
	case !as && !bs:
		return a + "/" + b
	}
	return a + b
}

// cleanQuery re-encodes a query that has a ';' or a malformed escape, dropping what does not
// parse (so the proxy and the API server cannot disagree about the parameters).
func cleanQuery(q string) string {
	for i := 0; i < len(q); {
		switch q[i] {
		case ';':
			return reencodeQuery(q)
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return reencodeQuery(q)
			}
			i += 3
		default:
			i++
		}
	}
	return q
}

func reencodeQuery(q string) string {
	v, _ := url.ParseQuery(q)
	return v.Encode()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// responseHopByHop are the hop-by-hop response headers (canonical keys) never passed on.
var responseHopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeResponseHopByHop removes the headers the response's Connection header names and the
// fixed hop-by-hop ones.
func removeResponseHopByHop(hd http.Header) {
	for _, v := range hd["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				hd.Del(tok)
			}
		}
	}
	for _, k := range responseHopByHop {
		delete(hd, k)
	}
}
