package metrics_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/metrics"
)

// Commands are timed under their bounded name, a missing key is no error,
// a refused command and a failing pipeline are.
func TestRedisHook(t *testing.T) {
	c := redistest.Client(t)
	h := metrics.NewRedisHook()
	c.AddHook(h)
	ctx := context.Background()
	key := redistest.Prefix(t) + "metrics"
	_ = c.Get(ctx, key).Err() // redis.Nil
	if err := c.Do(ctx, "NOSUCHCOMMAND").Err(); err == nil {
		t.Fatal("an unknown command succeeded")
	}
	pipe := c.Pipeline()
	pipe.Set(ctx, key, "x", 0)
	pipe.Incr(ctx, key) // not an integer: fails
	_, _ = pipe.Exec(ctx)

	got := series(t, h)
	want := map[string]float64{
		`verigate_redis_errors_total{command="other"}`:    1,
		`verigate_redis_errors_total{command="pipeline"}`: 1,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], w, got)
		}
	}
	if _, ok := got[`verigate_redis_errors_total{command="get"}`]; ok {
		t.Error("a missing key counted as an error")
	}
	if n := testutil.CollectAndCount(h, "verigate_redis_command_duration_seconds"); n < 3 {
		t.Errorf("%d duration series, want get, other and pipeline", n)
	}
}

func TestCountryBounded(t *testing.T) {
	for in, want := range map[string]string{"DE": "DE", "": "unknown", "001": "other", "de": "unknown", "DEU": "unknown", "+49": "unknown"} {
		if got := metrics.Country(in); got != want {
			t.Errorf("Country(%q) = %q, want %q", in, got, want)
		}
	}
}
