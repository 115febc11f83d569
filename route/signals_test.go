package route_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/routetest"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/verify"
)

// Public documentation ranges are reserved; these are ordinary allocated
// networks, used here only as keys in a test database.
var geoNets = map[string]string{
	"81.2.69.0/24":     "GB",
	"2.125.160.0/19":   "DE",
	"89.160.20.0/24":   "FR",
	"2a02:ff40::/29":   "DE",
	"175.16.199.0/24":  "CN",
	"216.160.83.56/29": "US",
}

func TestGeoIP(t *testing.T) {
	g, err := route.OpenGeoIP(routetest.GeoIPDB(t, geoNets))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for ip, want := range map[string]string{
		"81.2.69.160": "GB", "2.125.160.216": "DE", "89.160.20.112": "FR", "2a02:ff40::1": "DE",
		"216.160.83.57": "US", "8.8.8.8": "", "::ffff:81.2.69.1": "GB",
	} {
		got, err := g.Country(netip.MustParseAddr(ip))
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", ip, got, err, want)
		}
	}
	if _, err := route.OpenGeoIP(t.TempDir() + "/missing.mmdb"); err == nil {
		t.Error("opening a missing database did not fail")
	}
}

func TestGeoIPSignal(t *testing.T) {
	e, err := route.Open(route.Config{GeoIPDB: routetest.GeoIPDB(t, geoNets)}, route.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		name, number, ip string
		hint             *bool
		want             verify.Channel
		reasons          []string
		roaming          bool
	}{
		{"abroad", deMobile, "81.2.69.160", nil, verify.ChannelCall, []string{"roaming"}, true},
		{"at home", deMobile, "2.125.160.216", nil, verify.ChannelSMS, []string{"default"}, false},
		{"at home over IPv6", deMobile, "2a02:ff40::1", nil, verify.ChannelSMS, []string{"default"}, false},
		{"unknown address", deMobile, "8.8.8.8", nil, verify.ChannelSMS, []string{"default"}, false},
		{"private address", deMobile, "10.1.2.3", nil, verify.ChannelSMS, []string{"default"}, false},
		{"not an address", deMobile, "example.org", nil, verify.ChannelSMS, []string{"default"}, false},
		{"hint beats GeoIP", deMobile, "81.2.69.160", ptr(false), verify.ChannelSMS, []string{"default"}, false},
		{"french number from France", frMobile, "89.160.20.112", nil, verify.ChannelSMS, []string{"default"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := verify.RouteRequest{Number: num(t, tc.number), Channel: verify.ChannelAuto, ClientIP: tc.ip, Roaming: tc.hint}
			got, err := e.Route(ctx, req)
			if err != nil || got.Channel != tc.want || !slices.Equal(got.Reasons, tc.reasons) {
				t.Errorf("got %+v %v", got, err)
			}
			ex := e.Explain(ctx, req)
			if ex.Roaming != tc.roaming {
				t.Errorf("explain roaming %v", ex.Roaming)
			}
			if i := slices.IndexFunc(ex.Signals, func(s route.Signal) bool { return s.Name == "geoip" }); i < 0 || ex.Signals[i].Detail == "" {
				t.Errorf("no geoip signal in %+v", ex.Signals)
			}
		})
	}
}

func TestHTTPLookup(t *testing.T) {
	srv := routetest.NewHLR(t, "acct", "secret", map[string]string{
		deMobile: `{"status":"ok","result":{"roaming":true,"ported":"no","network":{"name":"Telekom"},"serving_country":"gb","type":"mobile"}}`,
		frMobile: `{"status":"ok","result":{"roaming":false,"ported":true,"network":{"name":"SFR"},"serving_country":"FR"}}`,
		usNumber: `{"status":"ok","result":{"roaming":"false","network":{"name":"AT&T"},"type":"landline"}}`,
	})
	cfg := route.LookupConfig{
		Provider: "http", URL: srv.URL + "/lookup?msisdn={number}", Username: "acct", Password: "secret",
		RoamingField: "result.roaming", PortedField: "result.ported", NetworkField: "result.network.name",
		CountryField: "result.serving_country", LineTypeField: "result.type",
	}
	hlr, err := route.NewHTTPLookup(cfg, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := hlr.Lookup(ctx, deMobile)
	if err != nil || got.Roaming == nil || !*got.Roaming || got.Ported == nil || *got.Ported ||
		got.Network != "Telekom" || got.Country != "GB" || got.LineType != route.LineMobile {
		t.Errorf("de: %+v %v", got, err)
	}
	got, err = hlr.Lookup(ctx, frMobile)
	if err != nil || *got.Roaming || !*got.Ported || got.Network != "SFR" || got.LineType != "" {
		t.Errorf("fr: %+v %v", got, err)
	}
	if _, err := hlr.Lookup(ctx, "+447400123456"); !errors.Is(err, route.ErrLookup) {
		t.Errorf("unknown number: %v", err)
	}
	bad, _ := route.NewHTTPLookup(route.LookupConfig{URL: cfg.URL, Username: "acct", Password: "wrong", RoamingField: "x"}, srv.Client())
	if _, err := bad.Lookup(ctx, deMobile); !errors.Is(err, route.ErrLookup) {
		t.Errorf("wrong password: %v", err)
	}

	// Through an Engine, with a cache: the HLR decides roaming and line type.
	e, err := route.Open(route.Config{Lookup: cfg}, route.OpenOptions{HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for range 3 {
		r, err := e.Route(ctx, verify.RouteRequest{Number: num(t, deMobile), Channel: verify.ChannelAuto, Roaming: ptr(false)})
		if err != nil || r.Channel != verify.ChannelCall || !slices.Equal(r.Reasons, []string{"roaming"}) {
			t.Errorf("roaming per HLR: %+v %v", r, err)
		}
	}
	if n := srv.Hits(deMobile); n != 2 { // the direct lookup above, then one cached for the Engine
		t.Errorf("HLR asked %d times about %s, want 2 (cache)", n, deMobile)
	}
	r, err := e.Route(ctx, verify.RouteRequest{Number: num(t, usNumber), Channel: verify.ChannelAuto})
	if err != nil || r.Channel != verify.ChannelCall || !slices.Equal(r.Reasons, []string{"fixed line"}) {
		t.Errorf("US landline per HLR: %+v %v", r, err)
	}
	// With sms asked for no lookup is made (it could not change the channel
	// and no rule asks about roaming): the number stays fixed_line_or_mobile.
	if r, err := e.Route(ctx, verify.RouteRequest{Number: num(t, "+12015550100"), Channel: verify.ChannelSMS}); err != nil || r.Channel != verify.ChannelSMS {
		t.Errorf("sms to a US number: %+v %v", r, err)
	}
	if n := srv.Hits("+12015550100"); n != 0 {
		t.Errorf("looked up %d times for channel sms", n)
	}
	// No lookup for channel sms: it could not change the channel.
	before := srv.Hits(frMobile)
	if _, err := e.Route(ctx, verify.RouteRequest{Number: num(t, frMobile), Channel: verify.ChannelSMS}); err != nil {
		t.Fatal(err)
	}
	if srv.Hits(frMobile) != before {
		t.Error("looked a number up for channel sms")
	}
	// A failing lookup never blocks routing.
	r, err = e.Route(ctx, verify.RouteRequest{Number: num(t, "+447400123456"), Channel: verify.ChannelAuto})
	if err != nil || r.Channel != verify.ChannelSMS {
		t.Errorf("lookup failure: %+v %v", r, err)
	}
	ex := e.Explain(ctx, verify.RouteRequest{Number: num(t, "+447400123456"), Channel: verify.ChannelAuto})
	if i := slices.IndexFunc(ex.Signals, func(s route.Signal) bool { return s.Name == "lookup" }); i < 0 || ex.Signals[i].Roaming != nil {
		t.Errorf("failed lookup signal: %+v", ex.Signals)
	}
}

func TestTwilioLookup(t *testing.T) {
	srv := routetest.NewTwilioLookup(t, "AC0123456789abcdef0123456789abcdef", "token", map[string]string{
		usNumber:       `{"carrier_name":"Verizon Wireless","error_code":null,"mobile_country_code":"311","mobile_network_code":"489","type":"mobile"}`,
		"+12015550124": `{"carrier_name":"Level 3 Communications, LLC","error_code":null,"mobile_country_code":null,"mobile_network_code":null,"type":"landline"}`,
		"+12015550125": `{"carrier_name":"Bandwidth/13 - Bandwidth.com - SVR","error_code":null,"mobile_country_code":"313","mobile_network_code":"981","type":"nonFixedVoip"}`,
		"+12015550126": `{"carrier_name":null,"error_code":60600,"mobile_country_code":null,"mobile_network_code":null,"type":null}`,
	})
	cfg := route.LookupConfig{Provider: "twilio", URL: srv.URL, Username: "AC0123456789abcdef0123456789abcdef", Password: "token"}
	tw, err := route.NewTwilioLookup(cfg, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for number, want := range map[string]route.LookupResult{
		usNumber:       {LineType: route.LineMobile, Network: "Verizon Wireless", Source: "twilio"},
		"+12015550124": {LineType: route.LineFixed, Network: "Level 3 Communications, LLC", Source: "twilio"},
		"+12015550125": {LineType: route.LineVoIP, Network: "Bandwidth/13 - Bandwidth.com - SVR", Source: "twilio"},
	} {
		got, err := tw.Lookup(ctx, number)
		if err != nil || got.LineType != want.LineType || got.Network != want.Network || got.Source != want.Source || got.Roaming != nil {
			t.Errorf("%s: %+v %v, want %+v", number, got, err, want)
		}
	}
	if _, err := tw.Lookup(ctx, "+12015550126"); !errors.Is(err, route.ErrLookup) {
		t.Errorf("error_code 60600: %v", err)
	}
	if _, err := tw.Lookup(ctx, "+12015550199"); !errors.Is(err, route.ErrLookup) {
		t.Errorf("404: %v", err)
	}
	wrong, _ := route.NewTwilioLookup(route.LookupConfig{URL: srv.URL, Username: "AC0123456789abcdef0123456789abcdef", Password: "nope"}, srv.Client())
	if _, err := wrong.Lookup(ctx, usNumber); !errors.Is(err, route.ErrLookup) {
		t.Errorf("401: %v", err)
	}

	// The lookup settles fixed_line_or_mobile: a US landline gets a call.
	e, err := route.NewEngine(route.Config{Lookup: cfg}, route.Deps{Lookup: tw})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Route(ctx, verify.RouteRequest{Number: num(t, "+12015550124"), Channel: verify.ChannelAuto})
	if err != nil || r.Channel != verify.ChannelCall || !slices.Equal(r.Reasons, []string{"fixed line"}) {
		t.Errorf("US landline: %+v %v", r, err)
	}
	r, err = e.Route(ctx, verify.RouteRequest{Number: num(t, usNumber), Channel: verify.ChannelAuto})
	if err != nil || r.Channel != verify.ChannelSMS || !slices.Equal(r.Reasons, []string{"default"}) {
		t.Errorf("US mobile: %+v %v", r, err)
	}
	ex := e.Explain(ctx, verify.RouteRequest{Number: num(t, "+12015550124"), Channel: verify.ChannelAuto})
	if ex.Number.LineType != route.LineFixedOrMobile || ex.LineType != route.LineFixed {
		t.Errorf("explain line types: number %s, decided %s", ex.Number.LineType, ex.LineType)
	}
}

func TestMemoryLookupCache(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	c := route.NewMemoryLookupCache(2, func() time.Time { return now })
	testLookupCache(t, c, func(d time.Duration) { now = now.Add(d) })
}

// testLookupCache is the contract every LookupCache passes; advance moves
// time forward (the clock, or a real sleep for Redis).
func testLookupCache(t *testing.T, c route.LookupCache, advance func(time.Duration)) {
	t.Helper()
	ctx := context.Background()
	if _, ok, err := c.Get(ctx, deMobile); ok || err != nil {
		t.Fatalf("empty cache: %v %v", ok, err)
	}
	want := route.LookupResult{Roaming: ptr(true), Ported: ptr(false), Network: "Telekom", Country: "GB", LineType: route.LineMobile, Source: "hlr"}
	if err := c.Set(ctx, deMobile, want, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.Get(ctx, deMobile)
	if err != nil || !ok || *got.Roaming != true || *got.Ported != false || got.Network != want.Network ||
		got.Country != want.Country || got.LineType != want.LineType || got.Source != want.Source {
		t.Fatalf("get: %+v %v %v", got, ok, err)
	}
	if _, ok, _ := c.Get(ctx, frMobile); ok {
		t.Error("another number is cached")
	}
	advance(400 * time.Millisecond)
	if _, ok, _ := c.Get(ctx, deMobile); ok {
		t.Error("entry outlived its TTL")
	}
}

// countingLookup counts calls and answers from a map.
type countingLookup struct {
	calls int
	res   route.LookupResult
}

func (c *countingLookup) Lookup(context.Context, string) (route.LookupResult, error) {
	c.calls++
	return c.res, nil
}

func TestCachedLookup(t *testing.T) {
	next := &countingLookup{res: route.LookupResult{Network: "x"}}
	cl := route.CachedLookup{Next: next, Cache: route.NewMemoryLookupCache(10, nil), TTL: time.Hour}
	for range 3 {
		if r, err := cl.Lookup(context.Background(), deMobile); err != nil || r.Network != "x" {
			t.Fatal(r, err)
		}
	}
	if next.calls != 1 {
		t.Errorf("%d lookups, want 1", next.calls)
	}
}
