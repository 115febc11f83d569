package route_test

import (
	"context"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/route"
)

func TestRedisLookupCache(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	for _, n := range []string{deMobile, frMobile} {
		rdb.Del(ctx, route.LookupKey(n))
	}
	c := route.NewRedisLookupCache(rdb)
	testLookupCache(t, c, func(d time.Duration) { time.Sleep(d) })

	if err := c.Set(ctx, frMobile, route.LookupResult{Network: "SFR"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	ttl, err := rdb.TTL(ctx, "vg:lookup:{"+frMobile+"}").Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("key vg:lookup:{%s}: ttl %v %v", frMobile, ttl, err)
	}
	rdb.Del(ctx, route.LookupKey(frMobile))
}
