package httpclient

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// tlsServer starts a TLS server that answers every request with a JSON
// object in chunks (no Content-Length, as a large or streamed answer
// comes), counting the connections it accepts.
func tlsServer(t *testing.T, h2 bool) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"sid":"SM`))
		w.(http.Flusher).Flush()
		w.Write([]byte(`0123","status":"queued"}` + "\n"))
		// What follows the value (whitespace here; a second document, a
		// trailer) is never read by a JSON decoder.
		w.(http.Flusher).Flush()
		w.Write([]byte(strings.Repeat(" ", 4096)))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.EnableHTTP2 = h2
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func trusting(srv *httptest.Server) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return &tls.Config{RootCAs: pool}
}

// TestReuse sends many requests from a few goroutines at once, decoding
// each answer as a client library does (json.Decoder, then Close), and
// counts the connections the server accepted: about one per request in
// flight, not one per request. The bound is a few times the concurrency,
// not the concurrency itself, because Go's transport dials for a request
// that finds no idle connection even when one is about to come back (a
// worker's next request can overtake its own connection's return to the
// pool); the connection dialed then stays idle for the next such race, so
// the count levels off instead of growing with the requests (16 workers
// measured 23-45 connections for 3,200 requests under the race detector).
// The untuned case holds the premise: two idle connections per host, as
// http.DefaultTransport keeps, open several times as many (about 190).
func TestReuse(t *testing.T) {
	const workers, perWorker = 16, 50
	const requests, bound = workers * perWorker, 4 * workers
	for _, tc := range []struct {
		name    string
		h2      bool
		proto   int
		untuned bool
	}{
		{"http1.1", false, 1, false},
		{"http2", true, 2, false},
		{"http1.1 untuned", false, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, conns := tlsServer(t, tc.h2)
			tr := NewTransport(Options{TLSConfig: trusting(srv)})
			if tc.untuned {
				tr.MaxIdleConnsPerHost = http.DefaultMaxIdleConnsPerHost
			}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: DrainBodies(tr)}
			var wg sync.WaitGroup
			var protoSeen atomic.Int64
			for range workers {
				wg.Go(func() {
					for range perWorker {
						resp, err := hc.Post(srv.URL+"/2010-04-01/Accounts/AC1/Messages.json", "application/x-www-form-urlencoded", strings.NewReader("To=%2B4915112345678"))
						if err != nil {
							t.Error(err)
							return
						}
						var v struct{ Sid string }
						err = json.NewDecoder(resp.Body).Decode(&v)
						resp.Body.Close()
						if err != nil || v.Sid != "SM0123" {
							t.Errorf("answer: %+v, %v", v, err)
							return
						}
						protoSeen.Store(int64(resp.ProtoMajor))
					}
				})
			}
			wg.Wait()
			if got := protoSeen.Load(); got != int64(tc.proto) {
				t.Errorf("protocol HTTP/%d, want HTTP/%d", got, tc.proto)
			}
			n := conns.Load()
			t.Logf("%d requests, %d at a time: %d connections", requests, workers, n)
			if !tc.untuned && n > bound {
				t.Errorf("%d requests, %d at a time, opened %d connections; want at most %d", requests, workers, n, bound)
			}
			if tc.untuned && n <= bound {
				t.Errorf("untuned: %d requests, %d at a time, opened only %d connections; the premise is that they open far more than %d", requests, workers, n, bound)
			}
		})
	}
}

// TestNoDrainLosesConnections shows what DrainBodies is for: the same
// client without it closes each connection whose answer the decoder did
// not read to the end, so the server sees a connection per request.
func TestNoDrainLosesConnections(t *testing.T) {
	srv, conns := tlsServer(t, false)
	tr := NewTransport(Options{TLSConfig: trusting(srv)})
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	const n = 10
	for range n {
		resp, err := hc.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		var v struct{ Sid string }
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := conns.Load(); got != n {
		t.Errorf("%d sequential requests without draining opened %d connections; the premise of DrainBodies is that they open %d", n, got, n)
	}
}

func TestOptions(t *testing.T) {
	tr := NewTransport(Options{})
	if tr.MaxIdleConnsPerHost != DefaultIdlePerHost || tr.MaxConnsPerHost != 0 || !tr.ForceAttemptHTTP2 ||
		tr.TLSHandshakeTimeout != DefaultTLSTimeout || tr.ResponseHeaderTimeout != DefaultHeaderTimeout ||
		tr.IdleConnTimeout != DefaultIdleTimeout || tr.Proxy == nil {
		t.Errorf("defaults not applied: %+v", tr)
	}
	if tr := NewTransport(Options{IdlePerHost: 8, NoProxy: true}); tr.MaxIdleConnsPerHost != 8 || tr.Proxy != nil {
		t.Errorf("options not applied: idle %d, proxy set %v", tr.MaxIdleConnsPerHost, tr.Proxy != nil)
	}
}
