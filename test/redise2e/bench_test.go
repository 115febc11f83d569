package redise2e

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/loadtest"
	"github.com/verigate/verigate/internal/redistest"
)

var benchSeq atomic.Int64

// pair runs one start+check over HTTP; numbers run in sequence so that no
// two in flight share the masked form the console prints.
func pair(b *testing.B, g *gateway) error {
	to := fmt.Sprintf("+49151%08d", benchSeq.Add(1))
	r := g.startVerification(to)
	if r.status != http.StatusCreated {
		return fmt.Errorf("start: %d %v", r.status, r.body)
	}
	code, ok := g.takeCode(to)
	if !ok {
		return fmt.Errorf("gateway ended")
	}
	c := g.check(r.str("id"), code)
	if c.status != http.StatusOK || c.str("status") != "approved" {
		return fmt.Errorf("check: %d %v", c.status, c.body)
	}
	return nil
}

// benchGateway starts a gateway on a private Redis, runs one pair, and
// returns the gateway and a meter of the CPU the gateway, Redis and this
// process (the load generator) spend.
func benchGateway(b *testing.B) (*gateway, *loadtest.CPUMeter) {
	b.Helper()
	srv := redistest.StartServer(b)
	g := startGateway(b, srv.URL(), "VERIGATE_LOG_LEVEL=warn")
	client.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
	if err := pair(b, g); err != nil {
		b.Fatal(err)
	}
	return g, loadtest.NewCPUMeter("loadgen", loadtest.Proc{Name: "gateway", Pid: g.pid()}, loadtest.Proc{Name: "redis", Pid: srv.Pid()})
}

// BenchmarkHTTPStartCheck runs start+check pairs over HTTP against one
// `verigate serve` on Redis, 64 at a time, on one machine with Redis.
func BenchmarkHTTPStartCheck(b *testing.B) {
	g, cpu := benchGateway(b)
	b.SetParallelism(32)
	b.ResetTimer()
	if err := cpu.Start(); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := pair(b, g); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pairs/s")
	cpu.Report(b, b.N)
}

// BenchmarkHTTPStartCheckHalfLoad finds the pairs per second the machine
// sustains (3 s flat out), then issues b.N pairs open loop at half that
// rate and reports latency percentiles from each pair's scheduled time.
func BenchmarkHTTPStartCheckHalfLoad(b *testing.B) {
	g, cpu := benchGateway(b)
	loadtest.HalfLoadMetered(b, func() error { return pair(b, g) }, cpu)
}
