package redise2e

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verigate/verigate/api"
	"github.com/verigate/verigate/internal/limittest"
	"github.com/verigate/verigate/internal/loadtest"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/sms"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/verify"
)

// capture is a Sender that keeps each verification's last code.
type capture struct{ codes sync.Map } // verification id → code

func (c *capture) Send(_ context.Context, m verify.Message) (string, error) {
	c.codes.Store(m.VerificationID, m.Body[len(m.Body)-7:len(m.Body)-1]) // "... is 123456."
	return "ref", nil
}

// BenchmarkHTTPInProcessStartCheck serves the REST API (api.New) on Redis
// state and limits from this process on a loopback listener, and runs
// start+check pairs against it over real HTTP with 64 keep-alive clients:
// the gateway's own cost through HTTP, without the console provider's
// output that the binary benchmark reads codes from.
func BenchmarkHTTPInProcessStartCheck(b *testing.B) {
	pair, cpu := inProcessGateway(b)
	flatOut(b, benchConns, pair, cpu)
}

// BenchmarkHTTPInProcessStartCheckHalfLoad: p50 and p99 of the pairs of
// BenchmarkHTTPInProcessStartCheck at half the rate it sustains (loadtest.HalfLoad).
func BenchmarkHTTPInProcessStartCheckHalfLoad(b *testing.B) {
	pair, cpu := inProcessGateway(b)
	loadtest.HalfLoadMetered(b, pair, cpu)
}

// inProcessGateway serves the API on Redis from this process and returns
// a function that runs one start+check pair against it over HTTP, and a
// meter of the CPU this process (gateway and load generator) and Redis
// spend.
func inProcessGateway(b *testing.B) (func() error, *loadtest.CPUMeter) {
	b.Helper()
	srv, cmds := pipelinedRedis(b)
	lim, err := ratelimit.NewRedis(cmds, limittest.Unbounded(ratelimit.DefaultPolicies()), ratelimit.RedisOptions{})
	if err != nil {
		b.Fatal(err)
	}
	h, err := verify.NewHasher([]byte("bench-secret-0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	sender := &capture{}
	quiet := slog.New(slog.DiscardHandler)
	svc, err := verify.NewService(verify.Config{
		Store: store.NewRedis(cmds, store.RedisOptions{Limits: lim}), Limiter: lim, Hasher: h,
		Parser: route.Classifier{}, Router: route.Defaults{}, Formatter: sms.Template{},
		Senders: map[string]verify.Sender{"capture": sender}, DefaultSender: "capture",
		CheckLock: verify.CheckLock{Max: 10, Window: time.Hour}, Logger: quiet,
	})
	if err != nil {
		b.Fatal(err)
	}
	e, err := api.New(api.Config{Service: svc, APIKeys: map[string]string{apiKey: tenant}, Idempotency: store.NewIdempotencyMemory(nil), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(e)
	b.Cleanup(ts.Close)
	lc, err := loadtest.NewClient(ts.Listener.Addr().String(), benchConns, "Authorization: Bearer "+apiKey)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(lc.Close)
	var seq atomic.Int64
	pair := func() error {
		return startAndCheck(lc, fmt.Sprintf("+49151%08d", seq.Add(1)), func(id string) (string, error) {
			code, ok := sender.codes.LoadAndDelete(id)
			if !ok {
				return "", fmt.Errorf("no code for %s", id)
			}
			return code.(string), nil
		})
	}
	if err := pair(); err != nil {
		b.Fatal(err)
	}
	return pair, loadtest.NewCPUMeter("process", loadtest.Proc{Name: "redis", Pid: srv.Pid()})
}
