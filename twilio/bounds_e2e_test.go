package twilio_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/internal/logbound"
	"github.com/verigate/verigate/twilio"
	"github.com/verigate/verigate/verify"
)

// floodBody is the attacker's form: 9,999 parameters of 1 KB, ~10 MB.
func floodBody() []byte {
	var b bytes.Buffer
	v := strings.Repeat("v", 1000)
	for i := range 9999 {
		if i > 0 {
			b.WriteByte('&')
		}
		fmt.Fprintf(&b, "k%07d=%s", i, v)
	}
	return b.Bytes()
}

// rawPost sends one request over a fresh connection and reads the answer
// while the body is still being written, as an attacker's client would;
// chunked sends the body without a Content-Length. The connection has a
// deadline, so a gateway that never answers fails the test instead of
// hanging it.
func rawPost(t *testing.T, base, target string, header http.Header, body []byte, chunked bool) int {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	var head bytes.Buffer
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\n", target, u.Host)
	header.Write(&head)
	if chunked {
		head.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	} else {
		fmt.Fprintf(&head, "Content-Length: %d\r\n\r\n", len(body))
	}
	go func() {
		// Write errors are expected: the gateway may close the
		// connection after refusing the request.
		if _, err := conn.Write(head.Bytes()); err != nil {
			return
		}
		for rest := body; len(rest) > 0; {
			n := min(len(rest), 64<<10)
			chunk := rest[:n]
			if chunked {
				if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", n, chunk); err != nil {
					return
				}
			} else if _, err := conn.Write(chunk); err != nil {
				return
			}
			rest = rest[n:]
		}
		if chunked {
			io.WriteString(conn, "0\r\n\r\n")
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestForgedWebhookFloodIsBounded: anyone can post to /twilio/*, so a
// request is bounded before it is parsed or its signature computed. A
// 10 MB forged form is refused with 413 without the gateway holding it
// (it once cost 1.7 GB and 21 s of CPU); too many parameters and bodies
// that are not forms are refused too, and none of it changes the
// verification.
func TestForgedWebhookFloodIsBounded(t *testing.T) {
	h := newHarness(t)
	id := h.start(startBody{To: mobile, Channel: verify.ChannelSMS})
	h.settle()
	before := h.get(id)
	flood := floodBody()
	forged := http.Header{"X-Twilio-Signature": {"Zm9yZ2VkIHNpZ25hdHVyZSAxMjM0NTY3OA=="[:28]}, "Content-Type": {"application/x-www-form-urlencoded"}}
	manyParams := []byte(strings.Repeat("a=1&", twilio.MaxWebhookParams) + "b=2")

	tests := []struct {
		name    string
		route   string
		header  http.Header
		body    []byte
		chunked bool
		want    int
	}{
		{"10 MB form, sms status", twilio.RouteSMSStatus + "?v=" + id, forged, flood, false, http.StatusRequestEntityTooLarge},
		{"10 MB form, gather", twilio.RouteGather + "?v=" + id, forged, flood, false, http.StatusRequestEntityTooLarge},
		{"10 MB form, chunked", twilio.RouteCallStatus + "?v=" + id, forged, flood, true, http.StatusRequestEntityTooLarge},
		{"too many parameters", twilio.RouteSMSStatus + "?v=" + id, forged, manyParams, false, http.StatusRequestEntityTooLarge},
		{"too many query parameters", twilio.RouteSMSStatus + "?" + strings.Repeat("v=1&", twilio.MaxWebhookParams) + "v=" + id, forged, []byte("a=1"), false, http.StatusRequestEntityTooLarge},
		{"not a form", twilio.RouteSMSStatus + "?v=" + id, http.Header{"X-Twilio-Signature": forged["X-Twilio-Signature"], "Content-Type": {"application/json"}}, []byte(`{"MessageStatus":"undelivered"}`), false, http.StatusBadRequest},
		{"malformed signature, large body", twilio.RouteSMSStatus + "?v=" + id, http.Header{"X-Twilio-Signature": {"x"}, "Content-Type": {"application/x-www-form-urlencoded"}}, flood, false, http.StatusForbidden},
		{"small forged form", twilio.RouteSMSStatus + "?v=" + id, forged, []byte("MessageSid=SMx&MessageStatus=undelivered"), false, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			status := rawPost(t, h.gw.URL, twilio.PathPrefix+tt.route, tt.header, tt.body, tt.chunked)
			runtime.ReadMemStats(&m1)
			if status != tt.want {
				t.Errorf("status %d, want %d", status, tt.want)
			}
			// The whole process's allocations while the request was
			// served: the client's writes allocate little, so this is the
			// gateway's work. Bounded bodies keep it to a few hundred KB.
			if grew := m1.TotalAlloc - m0.TotalAlloc; grew > 8<<20 {
				t.Errorf("serving it allocated %s, want under 8 MiB", strconv.FormatUint(grew>>20, 10)+" MiB")
			}
		})
	}
	after := h.get(id)
	if len(after.Events) != len(before.Events) || after.Status != before.Status {
		t.Fatalf("refused requests changed the verification: %v → %v", eventTypes(before), eventTypes(after))
	}
}

type noReporter struct{}

func (noReporter) Report(context.Context, string, verify.Event) error { return nil }

// TestForgedWebhooksLogBounded: each forged request may be worth a warning,
// but a stranger sending thousands must not fill the log: a few lines a
// minute per message pass, the rest are counted.
func TestForgedWebhooksLogBounded(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	wh, err := twilio.NewWebhooks(twilio.Config{
		AccountSID: accountSID, AuthToken: authToken, From: fromNumber,
		PublicURL: publicURL, Secret: "a server secret of enough length",
	}, noReporter{}, twilio.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	wh.Register(e.Group(twilio.PathPrefix))
	srv := httptest.NewServer(e)
	defer srv.Close()
	const forged = 500
	for i := range forged {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+twilio.PathPrefix+twilio.RouteSMSStatus+"?v=VE1",
			strings.NewReader("MessageSid=SM"+strconv.Itoa(i)+"&MessageStatus=delivered"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", "Zm9yZ2VkIHNpZ25hdHVyZSAxMjM0NTY3OA=="[:28])
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("forged request %d: status %d", i, resp.StatusCode)
		}
	}
	mu.Lock()
	lines := strings.Count(logs.String(), "\n")
	mu.Unlock()
	if lines == 0 || lines > 2*logbound.DefaultBurst {
		t.Fatalf("%d forged requests logged %d lines, want 1 to %d", forged, lines, 2*logbound.DefaultBurst)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
