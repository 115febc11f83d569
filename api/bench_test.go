package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verigate/verigate/api"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/verify"
)

// codeBook is a Sender for benchmarks: it keeps only the last code per
// verification, so memory and locking stay out of the measurement.
type codeBook struct {
	mu    sync.Mutex
	codes map[string]string
}

func (cb *codeBook) Send(_ context.Context, m verify.Message) (string, error) {
	i := strings.LastIndexAny(m.Body, "0123456789")
	j := i
	for j > 0 && m.Body[j-1] >= '0' && m.Body[j-1] <= '9' {
		j--
	}
	cb.mu.Lock()
	cb.codes[m.VerificationID] = m.Body[j : i+1]
	cb.mu.Unlock()
	return "bench", nil
}

func (cb *codeBook) code(id string) string {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return cb.codes[id]
}

// benchAPI is the API on the in-memory store and limiter, with a send
// limit of a million per number so that limits never interfere (every
// request uses a number of its own anyway).
func benchAPI(b *testing.B) (*echo.Echo, *codeBook) {
	svc, cb := benchService(b)
	e, err := api.New(api.Config{
		Service: svc, APIKeys: map[string]string{keyAcme: "acme"},
		Idempotency: store.NewIdempotencyMemory(nil), Registry: prometheus.NewRegistry(),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	return e, cb
}

func benchService(b *testing.B) (*verifytest.Service, *codeBook) {
	cb := &codeBook{codes: make(map[string]string)}
	svc := verifytest.NewService(b,
		verifytest.WithPolicies(ratelimit.Policy{Name: "number_sms", Scope: ratelimit.ScopeNumber, Channel: verify.ChannelSMS, Limit: 1_000_000, Window: 10 * time.Minute}),
		verifytest.WithConfig(func(c *verify.Config) {
			c.Senders = map[string]verify.Sender{verifytest.Provider: cb}
		}))
	return svc, cb
}

var benchNumber atomic.Int64

// nextNumber returns a valid German mobile number not used before.
func nextNumber() string {
	return fmt.Sprintf("+49151%08d", benchNumber.Add(1)%100_000_000)
}

var benchHeader = http.Header{
	"Authorization": {"Bearer " + keyAcme},
	"Content-Type":  {"application/json"},
}

// serve hands one request to the handler. The request is built directly,
// not parsed from text as httptest.NewRequest does, so that the client's
// cost stays out of the measurement as far as it can; handlers only read
// the header, which they share.
func serve(e *echo.Echo, method, path, body string) *httptest.ResponseRecorder {
	req := &http.Request{
		Method: method, URL: &url.URL{Path: path}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: benchHeader, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
		Host: "example.com", RemoteAddr: "192.0.2.1:1234", RequestURI: path,
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

func idOf(b *testing.B, rec *httptest.ResponseRecorder) string {
	body := rec.Body.Bytes()
	i := bytes.Index(body, []byte(`"id":"`))
	if rec.Code != http.StatusCreated || i < 0 {
		b.Fatalf("start = %d %s", rec.Code, body)
	}
	return string(body[i+6 : i+6+34])
}

// BenchmarkStart measures POST /v1/verifications, each to a new number.
func BenchmarkStart(b *testing.B) {
	e, _ := benchAPI(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			idOf(b, serve(e, "POST", "/v1/verifications", `{"to":"`+nextNumber()+`","channel":"sms"}`))
		}
	})
}

// BenchmarkCheck measures POST /v1/verifications/{id}/check with the right
// code, on verifications started before the timer.
func BenchmarkCheck(b *testing.B) {
	e, cb := benchAPI(b)
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = idOf(b, serve(e, "POST", "/v1/verifications", `{"to":"`+nextNumber()+`"}`))
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := ids[next.Add(1)-1]
			rec := serve(e, "POST", "/v1/verifications/"+id+"/check", `{"code":"`+cb.code(id)+`"}`)
			if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"approved"`)) {
				b.Fatalf("check = %d %s", rec.Code, rec.Body)
			}
		}
	})
}

// BenchmarkStartCheck measures one start and one check of the right code:
// an op is a pair, and pairs/s is reported.
func BenchmarkStartCheck(b *testing.B) {
	e, cb := benchAPI(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := idOf(b, serve(e, "POST", "/v1/verifications", `{"to":"`+nextNumber()+`"}`))
			rec := serve(e, "POST", "/v1/verifications/"+id+"/check", `{"code":"`+cb.code(id)+`"}`)
			if rec.Code != http.StatusOK {
				b.Fatalf("check = %d %s", rec.Code, rec.Body)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}

// BenchmarkServiceStartCheck is BenchmarkStartCheck without HTTP: the same
// service called directly, so the difference is what the API layer costs.
func BenchmarkServiceStartCheck(b *testing.B) {
	svc, cb := benchService(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			v, err := svc.Start(ctx, verify.StartRequest{Tenant: "acme", To: nextNumber(), Channel: verify.ChannelSMS})
			if err != nil {
				b.Fatal(err)
			}
			if v, err = svc.Check(ctx, "acme", v.ID, cb.code(v.ID)); err != nil || v.Status != verify.StatusApproved {
				b.Fatalf("check = %v, %v", v, err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}
