package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/peertest"
	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/internal/testbuf"
)

// countingProxy forwards to base and counts the requests by operation.
type countingProxy struct {
	mu     sync.Mutex
	counts map[string]int
}

func startCountingProxy(t *testing.T, base string) (*countingProxy, string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := "start"
		switch {
		case strings.HasSuffix(r.URL.Path, "/check"):
			op = "check"
		case r.Method == http.MethodGet:
			op = "get"
		}
		p.mu.Lock()
		p.counts[op]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return p, srv.URL
}

// runBenchJSON runs a bench with --json, decodes its standard output
// (which must be the report alone) into report, and returns its standard
// error.
func runBenchJSON(t *testing.T, report any, args ...string) string {
	t.Helper()
	out, errOut := &testbuf.Buffer{}, &testbuf.Buffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, append(args, "--json"), out, errOut); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, errOut.String())
	}
	if err := json.Unmarshal([]byte(out.String()), report); err != nil {
		t.Fatalf("report does not parse: %v\n%s", err, out.String())
	}
	return errOut.String()
}

// progressLines are the lines of stderr that name's progress printed.
func progressLines(stderr, name string) []string {
	var lines []string
	for l := range strings.Lines(stderr) {
		if strings.HasPrefix(l, name+": ") {
			lines = append(lines, l)
		}
	}
	return lines
}

func opCount(l opLine) int {
	n := l.OK
	for _, v := range l.Errors {
		n += v
	}
	return n
}

// TestBenchAPI runs bench api against an in-process gateway whose SMS go
// through the Twilio provider to the bench's own sink, open and closed
// loop, and holds the report's counts to the requests the gateway got.
func TestBenchAPI(t *testing.T) {
	sink := freeAddr(t)
	gw := freeAddr(t)
	for k, v := range map[string]string{
		"VERIGATE_TWILIO_ACCOUNT_SID":      "AC00000000000000000000000000000001",
		"VERIGATE_TWILIO_AUTH_TOKEN":       "0123456789abcdef0123456789abcdef",
		"VERIGATE_TWILIO_FROM":             "+15005550006",
		"VERIGATE_TWILIO_BASE_URL":         "http://" + sink,
		"VERIGATE_PUBLIC_URL":              "http://" + gw,
		"VERIGATE_LIMITS_POLICIES_2_LIMIT": "1000000000",
		"VERIGATE_LIMITS_POLICIES_3_LIMIT": "1000000000",
		"VERIGATE_LIMITS_POLICIES_4_LIMIT": "1000000000",
		"VERIGATE_LIMITS_POLICIES_5_LIMIT": "1000000000",
	} {
		t.Setenv(k, v)
	}
	base, key, _ := startDevServe(t, gw)

	tests := []struct {
		name      string
		args      []string
		realCodes bool
		mode      string
	}{
		{"open loop through the sink", []string{"--rate", "40", "--conns", "4", "--sink", sink}, true, "open"},
		// Progress on stderr, the report alone on stdout.
		{"closed loop through the sink", []string{"--concurrency", "3", "--sink", sink, "--progress", "--progress-every", "300ms"}, true, "closed"},
		{"closed loop, wrong codes, gets", []string{"--concurrency", "2", "--mix", "start=2,check=1,get=1"}, false, "closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.realCodes {
				// The gateway's SMS still need somewhere to go: a sink the
				// bench does not read from.
				other, err := startSMSSink(context.Background(), sink, "")
				if err != nil {
					t.Fatal(err)
				}
				defer other.Close()
			}
			proxy, proxyURL := startCountingProxy(t, base)
			var rep apiReport
			stderr := runBenchJSON(t, &rep, append([]string{"bench", "api", "--url", proxyURL, "--key", key, "--duration", "1500ms"}, tt.args...)...)
			lines := progressLines(stderr, "bench api")
			if slices.Contains(tt.args, "--progress") {
				if len(lines) == 0 || !strings.Contains(lines[len(lines)-1], " sequences (") || !strings.Contains(lines[0], " failed") {
					t.Errorf("--progress: progress lines %q in stderr:\n%s", lines, stderr)
				}
			} else if len(lines) > 0 {
				t.Errorf("progress without --progress on a stderr that is no terminal: %q", lines)
			}
			proxy.mu.Lock()
			made := proxy.counts
			proxy.mu.Unlock()
			if rep.Mode != tt.mode || rep.RealCodes != tt.realCodes || rep.Sequences == 0 {
				t.Fatalf("report: %+v", rep)
			}
			if got := opCount(rep.Ops["start"]); int64(got) != rep.Sequences || got != made["start"] {
				t.Errorf("starts: report %d (sequences %d), gateway got %d", got, rep.Sequences, made["start"])
			}
			if got := opCount(rep.Ops["check"]); got != made["check"] {
				t.Errorf("checks: report %d, gateway got %d", got, made["check"])
			}
			if got := opCount(rep.Ops["get"]); got != made["get"] {
				t.Errorf("gets: report %d, gateway got %d", got, made["get"])
			}
			if tt.realCodes {
				// Every start sent an SMS the sink caught, and every check
				// with its code approved.
				if s, c := rep.Ops["start"], rep.Ops["check"]; len(s.Errors) > 0 || len(c.Errors) > 0 || c.OK != s.OK {
					t.Errorf("through the sink: start %+v, check %+v", s, c)
				}
				return
			}
			// start=2,check=1,get=1: every other sequence checks and gets.
			if n, want := made["check"], int(rep.Sequences/2); n < want || n > want+1 {
				t.Errorf("%d checks for %d sequences, want half", n, rep.Sequences)
			}
			if len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], "wrong code") {
				t.Errorf("no note that checks use a wrong code: %q", rep.Notes)
			}
		})
	}
}

func TestBenchAPIFlags(t *testing.T) {
	t.Setenv(apiKeyEnv, "") // the case without --key must find none
	for _, args := range [][]string{
		{"--key", "k", "--rate", "10", "--concurrency", "2"},
		{"--key", "k", "--mix", "start=0,check=1"},
		{"--key", "k", "--mix", "start=1,check=2"},
		{"--key", "k", "--mix", "start=1,delete=1"},
		{"--key", "k", "--to-prefix", "4915"},
		{"--key", "k", "--url", "http://example.com:80"},
		{"--key", "k", "--sink", "0.0.0.0:9"},
		{"--key", "k", "--sink-tls", "sink.pem"}, // without --sink
		{"--rate", "10"},
	} {
		if err := run(context.Background(), append([]string{"bench", "api", "--duration", "10ms"}, args...), &testbuf.Buffer{}, &testbuf.Buffer{}); err == nil {
			t.Errorf("bench api %q: no error", args)
		}
	}
}

func TestNumberSpread(t *testing.T) {
	s, err := newNumberSpread("+49151", 13)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 1000 {
		n := s.next()
		if len(n) != 14 || !strings.HasPrefix(n, "+49151") || seen[n] {
			t.Fatalf("number %q (seen %v)", n, seen[n])
		}
		seen[n] = true
	}
}

// TestBenchSIP places a few approve-mode calls from bench sip to an
// in-process test phone and holds the report to what the phone saw.
func TestBenchSIP(t *testing.T) {
	const calls = 4
	var answered, pressed atomic.Int64
	phone, err := siptest.NewPhone(siptest.PhoneConfig{Listen: "127.0.0.1:0", RTPPorts: "41000-41099",
		Press: "#", After: 6 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), // after the prompt asking for # has begun
		OnEvent: func(ev siptest.PhoneEvent) {
			switch ev.Kind {
			case siptest.PhoneAnswered:
				answered.Add(1)
			case siptest.PhonePressed:
				pressed.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = phone.Close() })
	var rep sipReport
	stderr := runBenchJSON(t, &rep, "bench", "sip", "--calls", "4", "--rate", "20", "--hold", "6s",
		"--target", phone.Addr().String(), "--rtp-ports", "41100-41199", "--progress", "--progress-every", "1s")
	if lines := progressLines(stderr, "bench sip"); len(lines) == 0 || !strings.Contains(lines[len(lines)-1], "of 4 calls placed") {
		t.Errorf("--progress: progress lines %q in stderr:\n%s", lines, stderr)
	}
	if rep.Placed != calls || rep.Answered != calls || int64(rep.Answered) != answered.Load() {
		t.Errorf("placed %d, answered %d; the phone answered %d, want %d", rep.Placed, rep.Answered, answered.Load(), calls)
	}
	if rep.Approved != calls || int64(rep.Approved) != pressed.Load() {
		t.Errorf("approved %d; the phone pressed # in %d calls, want %d", rep.Approved, pressed.Load(), calls)
	}
	if rep.PeakActive < 1 || rep.PeakActive > calls || rep.Packets == 0 || rep.Pressed != -1 {
		t.Errorf("report: %+v", rep)
	}
}

// TestBenchSIPThroughSipp runs bench sip against sipp (Debian's
// sip-tester) playing the phone of deploy/sipp/uas_press_pound.xml, the
// scenario docs/BENCHMARKS.md measures with: every call is answered and
// approved by sipp's RFC 4733 #, and sipp, which exits 0 only then, finds
// that every call followed its scenario to the gateway's BYE.
func TestBenchSIPThroughSipp(t *testing.T) {
	const calls = 6
	// sipp presses # this long after the ACK: past the start of the
	// prompt asking for it (3-4 s in); bench sip is told the same.
	const hold = 5 * time.Second
	s := peertest.StartSippUAS(t, peertest.SippUASOptions{Scenario: "../../deploy/sipp/uas_press_pound.xml",
		Calls: calls, Duration: hold, Timeout: 100 * time.Second})
	var rep sipReport
	runBenchJSON(t, &rep, "bench", "sip", "--calls", strconv.Itoa(calls), "--rate", "0", "--hold", hold.String(),
		"--target", s.Addr, "--rtp-ports", "43000-43099")
	if rep.Placed != calls || rep.Answered != calls || rep.Approved != calls || rep.Failed != 0 {
		t.Errorf("placed %d, answered %d, approved %d, failed %d; want %d answered and approved (notes %q)",
			rep.Placed, rep.Answered, rep.Approved, rep.Failed, calls, rep.Notes)
	}
	if rep.PeakActive < 1 || rep.PeakActive > calls || rep.Packets == 0 || rep.Pressed != -1 {
		t.Errorf("report: %+v", rep)
	}
	if err := s.Wait(30 * time.Second); err != nil {
		t.Errorf("sipp: %v", err)
	}
}

// TestSMSSinkTLS: with --sink-tls the sink serves HTTPS with a certificate
// it makes once and keeps in the file, which a client trusts as the
// gateway does through SSL_CERT_FILE, and still catches the codes.
func TestSMSSinkTLS(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sink.pem")
	addr := freeAddr(t)
	var served [][]byte // the certificate of each start
	for range 2 {
		sink, err := startSMSSink(context.Background(), addr, file)
		if err != nil {
			t.Fatal(err)
		}
		pemBytes, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pemBytes) {
			t.Fatal("no certificate in the sink's file")
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
		form := url.Values{"To": {"+4915112345678"}, "From": {"+15005550006"}, "Body": {"Your verification code is 482913."}}
		resp, err := client.PostForm("https://"+addr+"/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages.json", form)
		if err != nil {
			sink.Close()
			t.Fatal(err)
		}
		resp.Body.Close()
		client.CloseIdleConnections()
		if resp.StatusCode != http.StatusCreated || resp.TLS == nil {
			t.Errorf("status %d, TLS %v", resp.StatusCode, resp.TLS != nil)
		} else {
			served = append(served, resp.TLS.PeerCertificates[0].Raw)
		}
		if code, ok := sink.code("+4915112345678", 5*time.Second); !ok || code != "482913" {
			t.Errorf("code %q, %v", code, ok)
		}
		sink.Close()
	}
	if len(served) == 2 && !bytes.Equal(served[0], served[1]) {
		t.Error("the second start made a new certificate instead of reusing the file's")
	}
}
