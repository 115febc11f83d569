package redise2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/internal/loadtest"
	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/store"
)

// BenchmarkHTTPFloor is the least a start+check pair through HTTP with
// Redis costs on this machine, whatever the gateway does: the same load
// generator, connections and Go HTTP server as the other benchmarks, and
// per request one script on the same auto-pipelined client, which does
// nothing ("return 1") and an empty JSON answer. The gap between its
// pairs/s and the gateway's is what the gateway's own work costs; its
// CPU per pair is the floor under the gateway's, Redis's and the load
// generator's.
func BenchmarkHTTPFloor(b *testing.B) {
	pair, cpu := floorGateway(b)
	flatOut(b, benchConns, pair, cpu)
}

// BenchmarkHTTPFloorHalfLoad: p50 and p99 of the floor's pairs at half the
// rate it sustains (loadtest.HalfLoad), the least latency the machine adds.
func BenchmarkHTTPFloorHalfLoad(b *testing.B) {
	pair, cpu := floorGateway(b)
	loadtest.HalfLoadMetered(b, pair, cpu)
}

// floorGateway serves BenchmarkHTTPFloor's do-nothing handler and returns
// a pair against it and a meter of this process's and Redis's CPU.
func floorGateway(b *testing.B) (func() error, *loadtest.CPUMeter) {
	b.Helper()
	srv, cmds := pipelinedRedis(b)
	noop := redis.NewScript(`return 1`)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := noop.Run(r.Context(), cmds, []string{"vg:floor"}).Err(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"floor","status":"approved"}`)
	}))
	b.Cleanup(ts.Close)
	lc, err := loadtest.NewClient(ts.Listener.Addr().String(), benchConns, "Authorization: Bearer "+apiKey)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(lc.Close)
	post := func(cn *loadtest.Conn, path, body string) error {
		s, got, err := cn.Post(path, body)
		if err != nil {
			return err
		}
		if st, _ := loadtest.StringField(got, "status"); s != http.StatusOK || st != "approved" {
			return fmt.Errorf("%s: %d %s", path, s, got)
		}
		return nil
	}
	pair := func() error {
		cn := lc.Conn()
		defer lc.Release(cn)
		if err := post(cn, "/v1/verifications", `{"to":"+4915112345678","channel":"sms"}`); err != nil {
			return err
		}
		return post(cn, "/v1/verifications/floor/check", `{"code":"123456"}`)
	}
	if err := pair(); err != nil {
		b.Fatal(err)
	}
	return pair, loadtest.NewCPUMeter("process", loadtest.Proc{Name: "redis", Pid: srv.Pid()})
}

// pipelinedRedis starts a private redis-server and returns it with an
// auto-pipelined client on it, as serve uses by default.
func pipelinedRedis(b *testing.B) (*redistest.Server, redis.UniversalClient) {
	b.Helper()
	srv := redistest.StartServer(b)
	rc, err := store.OpenRedis(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rc.Close() })
	cmds, err := store.AutoPipeline(rc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmds.Close() }) // runs before rc's: flushes what is queued
	return srv, cmds
}
