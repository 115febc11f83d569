package redise2e

import (
	"fmt"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/limittest"
	"github.com/verigate/verigate/internal/loadtest"
	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/ratelimit"
)

// benchConns is how many requests the benchmarks keep in flight: one
// keep-alive connection each.
const benchConns = 64

// saturatingConns is how many BenchmarkHTTPStartCheck also keeps in flight
// to find the ceiling: at benchConns this 2-core machine still idles about
// 20 % of its CPU (vmstat) while requests wait for each other's Redis
// batches; at saturatingConns about 15 %, and the larger batches cost less
// CPU per pair in the gateway, Redis and the load generator.
const saturatingConns = 256

var benchSeq atomic.Int64

// pair runs one start+check over HTTP on one connection of lc; numbers
// run in sequence so that no two in flight share the masked form the
// console prints.
func pair(g *gateway, lc *loadtest.Client) error {
	to := fmt.Sprintf("+49151%08d", benchSeq.Add(1))
	return startAndCheck(lc, to, func(string) (string, error) {
		code, ok := g.takeCode(to)
		if !ok {
			return "", fmt.Errorf("gateway ended")
		}
		return code, nil
	})
}

// startAndCheck starts a verification of to by SMS on one connection of
// lc, reads its code with code(id) and checks it: approved or an error.
func startAndCheck(lc *loadtest.Client, to string, code func(id string) (string, error)) error {
	cn := lc.Conn()
	defer lc.Release(cn)
	s, body, err := cn.Post("/v1/verifications", `{"to":"`+to+`","channel":"sms"}`)
	if err != nil {
		return err
	}
	id, _ := loadtest.StringField(body, "id")
	if s != http.StatusCreated || id == "" {
		return fmt.Errorf("start: %d %s", s, body)
	}
	c, err := code(id)
	if err != nil {
		return err
	}
	s, body, err = cn.Post("/v1/verifications/"+id+"/check", `{"code":"`+c+`"}`)
	if err != nil {
		return err
	}
	if st, _ := loadtest.StringField(body, "status"); s != http.StatusOK || st != "approved" {
		return fmt.Errorf("check: %d %s", s, body)
	}
	return nil
}

// benchGateway starts a gateway on a private Redis, runs one pair, and
// returns a function that runs a pair, and a meter of the CPU the
// gateway, Redis and this process (the load generator) spend.
func benchGateway(b *testing.B, conns int) (func() error, *loadtest.CPUMeter) {
	b.Helper()
	srv := redistest.StartServer(b)
	g := startGateway(b, srv.URL(), append(unboundedCaps(), "VERIGATE_LOG_LEVEL=warn")...)
	lc, err := loadtest.NewClient(g.addr, conns, "Authorization: Bearer "+apiKey)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(lc.Close)
	run := func() error { return pair(g, lc) }
	if err := run(); err != nil {
		b.Fatal(err)
	}
	return run, loadtest.NewCPUMeter("loadgen", loadtest.Proc{Name: "gateway", Pid: g.pid()}, loadtest.Proc{Name: "redis", Pid: srv.Pid()})
}

// flatOut runs b.N pairs, conns at a time, and reports pairs per
// second and the CPU per pair cpu measures.
func flatOut(b *testing.B, conns int, pair func() error, cpu *loadtest.CPUMeter) {
	b.Helper()
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((conns + procs - 1) / procs) // RunParallel runs parallelism × GOMAXPROCS goroutines
	b.ResetTimer()
	if err := cpu.Start(); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := pair(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pairs/s")
	cpu.Report(b, b.N)
}

// BenchmarkHTTPStartCheck runs start+check pairs over HTTP against one
// `verigate serve` on Redis, on one machine with Redis, flat out with
// benchConns and with saturatingConns requests in flight.
func BenchmarkHTTPStartCheck(b *testing.B) {
	for _, conns := range []int{benchConns, saturatingConns} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			pair, cpu := benchGateway(b, conns)
			flatOut(b, conns, pair, cpu)
		})
	}
}

// BenchmarkHTTPStartCheckHalfLoad finds the pairs per second the machine
// sustains (3 s flat out), then issues b.N pairs open loop at half that
// rate and reports latency percentiles from each pair's scheduled time.
func BenchmarkHTTPStartCheckHalfLoad(b *testing.B) {
	pair, cpu := benchGateway(b, benchConns)
	loadtest.HalfLoadMetered(b, pair, cpu)
}

// unboundedCaps are the environment that raises the default aggregate
// caps (tenant, prefix, country, global) of `verigate serve` out of reach,
// by their index in limits.policies: one tenant's pairs at machine speed
// into one prefix would meet them within a second. The buckets stay, so a
// start costs what it costs with the defaults.
func unboundedCaps() []string {
	var env []string
	for i, p := range ratelimit.DefaultPolicies() {
		if p.Scope.Aggregate() {
			env = append(env, fmt.Sprintf("VERIGATE_LIMITS_POLICIES_%d_LIMIT=%d", i, limittest.UnboundedLimit))
		}
	}
	return env
}
