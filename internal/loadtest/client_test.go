package loadtest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// server is an httptest server that counts the connections it accepts.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	return ts, &conns
}

func client(t *testing.T, ts *httptest.Server, conns int) *Client {
	t.Helper()
	c, err := NewClient(ts.Listener.Addr().String(), conns, "Authorization: Bearer k")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// post runs one Post on a connection of c and copies the body.
func post(c *Client, path, body string) (int, string, error) {
	cn := c.Conn()
	defer c.Release(cn)
	s, b, err := cn.Post(path, body)
	return s, string(b), err
}

// echo answers with the request it got, as JSON with a Content-Length.
func echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"method":%q,"path":%q,"auth":%q,"type":%q,"length":%d,"body":%q}`,
		r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), r.ContentLength, b)
}

func TestClientKeepAlive(t *testing.T) {
	ts, conns := server(t, echo)
	c := client(t, ts, 1)
	for i := range 20 {
		body := fmt.Sprintf(`{"n":%d}`, i)
		s, b, err := post(c, "/v1/x", body)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`{"method":"POST","path":"/v1/x","auth":"Bearer k","type":"application/json","length":%d,"body":%q}`, len(body), body)
		if s != http.StatusCreated || b != want {
			t.Fatalf("request %d: %d %s, want 201 %s", i, s, b, want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("20 requests on a 1-connection client opened %d connections", n)
	}
}

func TestClientConcurrent(t *testing.T) {
	ts, conns := server(t, echo)
	c := client(t, ts, 4)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				body := fmt.Sprintf(`{"g":%d,"i":%d}`, g, i)
				s, b, err := post(c, "/c", body)
				if err != nil || s != http.StatusCreated || !strings.Contains(b, fmt.Sprintf("%q", body)) {
					t.Errorf("%d %s %v", s, b, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := conns.Load(); n > 4 {
		t.Errorf("a 4-connection client opened %d connections", n)
	}
}

func TestClientChunkedAndStatuses(t *testing.T) {
	ts, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked": // a flush before the end makes net/http chunk
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, `{"id":"a`)
			w.(http.Flusher).Flush()
			io.WriteString(w, strings.Repeat("b", 5000)+`"}`)
		case "/error":
			http.Error(w, `{"error":{"code":"not_found"}}`, http.StatusNotFound)
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		}
	})
	c := client(t, ts, 1)
	for range 2 { // twice: the connection stays usable after each
		s, b, err := post(c, "/chunked", "{}")
		if want := `{"id":"a` + strings.Repeat("b", 5000) + `"}`; err != nil || s != 200 || b != want {
			t.Errorf("chunked: %d %.40s… (%d bytes) %v", s, b, len(b), err)
		}
		s, b, err = post(c, "/error", "{}")
		if err != nil || s != 404 || b != `{"error":{"code":"not_found"}}`+"\n" {
			t.Errorf("error: %d %q %v", s, b, err)
		}
		s, b, err = post(c, "/empty", "{}")
		if err != nil || s != 204 || b != "" {
			t.Errorf("no content: %d %q %v", s, b, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// TestClientServerCloses: a server that answers with Connection: close,
// one that answers and closes without a length, and one that closes
// without answering. The client reads what there is, and dials again.
func TestClientServerCloses(t *testing.T) {
	ts, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, `{"status":"bye"}`)
		case "/eof", "/drop":
			conn, bw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			if r.URL.Path == "/eof" {
				bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"until\":\"eof\"}")
				bw.Flush()
			}
			conn.Close()
		default:
			echo(w, r)
		}
	})
	c := client(t, ts, 1)
	if s, b, err := post(c, "/close", "{}"); err != nil || s != 200 || b != `{"status":"bye"}` {
		t.Errorf("Connection: close: %d %q %v", s, b, err)
	}
	if s, _, err := post(c, "/", "{}"); err != nil || s != 201 {
		t.Errorf("after Connection: close: %d %v", s, err)
	}
	if s, b, err := post(c, "/eof", "{}"); err != nil || s != 200 || b != `{"until":"eof"}` {
		t.Errorf("body up to the end of the connection: %d %q %v", s, b, err)
	}
	if s, _, err := post(c, "/", "{}"); err != nil || s != 201 {
		t.Errorf("after a body up to the end: %d %v", s, err)
	}
	if s, b, err := post(c, "/drop", "{}"); err == nil {
		t.Errorf("a server that closes without answering: %d %q, nil error", s, b)
	}
	if s, _, err := post(c, "/", "{}"); err != nil || s != 201 {
		t.Errorf("after a dropped connection: %d %v", s, err)
	}
	if n := conns.Load(); n != 4 {
		t.Errorf("%d connections, want 4 (one per close)", n)
	}
}

// TestClientBrokenAnswers: answers the client must refuse, each on a
// fresh connection of a raw server.
func TestClientBrokenAnswers(t *testing.T) {
	for _, answer := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", // short body
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"SMTP ready\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("x", 5000) + "\r\n\r\n",
	} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
			br := bufio.NewReader(conn)
			for { // read the request's head, and answer
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if line == "\r\n" {
					break
				}
			}
			io.WriteString(conn, answer)
		}()
		c, err := NewClient(l.Addr().String(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if s, b, err := post(c, "/", ""); err == nil {
			t.Errorf("answer %.60q: %d %q, nil error", answer, s, b)
		}
		c.Close()
		l.Close()
	}
}

func TestNewClientLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"10.0.0.1:80", "example.com:80", "localhost:80", "127.0.0.1"} {
		if _, err := NewClient(addr, 1); err == nil {
			t.Errorf("NewClient(%q): nil error", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:80", "[::1]:80"} {
		if _, err := NewClient(addr, 1); err != nil {
			t.Errorf("NewClient(%q): %v", addr, err)
		}
	}
	if _, err := NewClient("127.0.0.1:80", 1, "X-Bad\r\nInjected: 1"); err == nil {
		t.Error("a header line with CRLF: nil error")
	}
}

func TestClientGet(t *testing.T) {
	ts, conns := server(t, echo)
	c := client(t, ts, 1)
	for range 2 { // a GET and a POST share the connection
		cn := c.Conn()
		s, b, err := cn.Get("/v1/x/1")
		want := `{"method":"GET","path":"/v1/x/1","auth":"Bearer k","type":"application/json","length":0,"body":""}`
		if err != nil || s != http.StatusCreated || string(b) != want {
			t.Errorf("get: %d %s %v, want 201 %s", s, b, err, want)
		}
		c.Release(cn)
		if s, b, err := post(c, "/p", "{}"); err != nil || s != http.StatusCreated || !strings.Contains(b, `"method":"POST"`) {
			t.Errorf("post after get: %d %s %v", s, b, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("GET and POST opened %d connections, want 1", n)
	}
}
