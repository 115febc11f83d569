package route_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/nyaruka/phonenumbers"

	"github.com/verigate/verigate/internal/routetest"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/verify"
)

// BenchmarkClassifyAndRoute is the per-request routing cost once the
// classification cache is warm: ParseNumber (cache hit) plus the Engine's
// decision over the rules of rulesYAML, cycling through the 60 numbers of
// the classification table (refusals included).
func BenchmarkClassifyAndRoute(b *testing.B) {
	c := route.NewClassifier(route.ClassifierOptions{Carrier: true})
	cfg := loadConfig(b, rulesYAML)
	cfg.AllowCountries, cfg.DenyCountries = nil, []string{"CH"}
	e, err := route.NewEngine(cfg, route.Deps{History: route.NewMemoryHistory(0)})
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range numbers {
		if _, err := c.ParseNumber(n.e164); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		n := numbers[i%len(numbers)]
		num, err := c.ParseNumber(n.e164)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = e.Route(ctx, verify.RouteRequest{Tenant: "shop", Number: num, Channel: verify.ChannelAuto})
	}
}

// BenchmarkClassifyUncached is phonenumbers' own cost per number (parse,
// validity, type, E.164, carrier), which the cache saves.
func BenchmarkClassifyUncached(b *testing.B) {
	c := route.NewClassifier(route.ClassifierOptions{Carrier: true, CacheSize: -1})
	b.ReportAllocs()
	for i := range b.N {
		if _, err := c.ParseNumber(numbers[i%len(numbers)].e164); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMetadataHeap reports the heap the number data takes: the whole
// process's heap before any number is parsed (phonenumbers parses its
// metadata at init; this is an upper bound, the test binary's other
// packages included), the carrier names loaded on first use, and one cache
// entry. Run it alone (-run '^$' -bench MetadataHeap -benchtime 1x): the
// carrier data loads once per process.
func BenchmarkMetadataHeap(b *testing.B) {
	for range b.N {
		atInit := heap()

		before := heap()
		pn, _ := phonenumbers.Parse("+4915123456789", "")
		_, _ = phonenumbers.GetCarrierForNumber(pn, "en")
		carrier := heap() - before

		c := route.NewClassifier(route.ClassifierOptions{CacheSize: 10000})
		before = heap()
		for i := range 10000 {
			_, _ = c.ParseNumber("+49151" + pad8(i))
		}
		perEntry := (heap() - before) / 10000
		runtime.KeepAlive(c)

		b.ReportMetric(float64(atInit)/(1<<20), "heap-at-init-MiB")
		b.ReportMetric(float64(carrier)/(1<<20), "carrier-MiB")
		b.ReportMetric(float64(perEntry), "B/cached-number")
	}
}

func heap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

func pad8(i int) string {
	s := []byte("00000000")
	for p := 7; p >= 0 && i > 0; p-- {
		s[p] = byte('0' + i%10)
		i /= 10
	}
	return string(s)
}

// BenchmarkRouteGeoIP adds the GeoIP signal (a lookup in a small MMDB) to
// BenchmarkClassifyAndRoute's work.
func BenchmarkRouteGeoIP(b *testing.B) {
	c := route.NewClassifier(route.ClassifierOptions{Carrier: true})
	e, err := route.Open(route.Config{GeoIPDB: routetest.GeoIPDB(b, geoNets)}, route.OpenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for i := range b.N {
		num, err := c.ParseNumber(numbers[i%len(numbers)].e164)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = e.Route(ctx, verify.RouteRequest{Number: num, Channel: verify.ChannelAuto, ClientIP: "81.2.69.160"})
	}
}
