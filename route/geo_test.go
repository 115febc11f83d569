package route_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/verify"
)

const (
	kmMobile  = "+2693212345"   // Comoros
	kmFixed   = "+2697712345"   // Comoros
	iridium   = "+881612345678" // Global Mobile Satellite System
	intlNet   = "+88216123456"  // International Networks
	slMobile  = "+23276123456"  // Sierra Leone
	deMobile2 = "+4916012345678"
)

// geoCase is one request and what the engine must answer.
type geoCase struct {
	name     string
	tenant   string
	number   string
	channel  verify.Channel
	want     verify.Channel // "" when refused
	fallback verify.Channel
	reason   string // the last reason, when set
	err      error  // the refusal: ErrCountryNotAllowed or ErrRateLimited
}

func runGeo(t *testing.T, e *route.Engine, cases []geoCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.Route(context.Background(), verify.RouteRequest{Tenant: tc.tenant, Number: num(t, tc.number), Channel: tc.channel})
			if tc.err != nil {
				if !errors.Is(err, tc.err) || verify.ErrorCode(err) != verify.ErrorCode(tc.err) {
					t.Fatalf("err %v (route %+v), want %v", err, got, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Channel != tc.want || got.Fallback != tc.fallback || (tc.reason != "" && got.Reasons[len(got.Reasons)-1] != tc.reason) {
				t.Errorf("got %s fallback %q reasons %q; want %s fallback %q reason %q", got.Channel, got.Fallback, got.Reasons, tc.want, tc.fallback, tc.reason)
			}
		})
	}
}

func geoEngine(t *testing.T, doc string, blocks route.PrefixBlocks) *route.Engine {
	t.Helper()
	e, err := route.NewEngine(loadConfig(t, doc), route.Deps{Blocks: blocks})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestHighRiskRefusedByDefault: with no configuration, the high-risk
// revenue-share destinations are refused on both channels
// (country_not_allowed), which the code before destination permissions
// let through.
func TestHighRiskRefusedByDefault(t *testing.T) {
	runGeo(t, geoEngine(t, "route: {}", nil), []geoCase{
		{name: "SMS to Comoros", number: kmMobile, channel: verify.ChannelSMS, err: verify.ErrCountryNotAllowed},
		{name: "call to Comoros", number: kmMobile, channel: verify.ChannelCall, err: verify.ErrCountryNotAllowed},
		{name: "auto to a Comoros landline", number: kmFixed, channel: verify.ChannelAuto, err: verify.ErrCountryNotAllowed},
		{name: "call to Iridium (+881)", number: iridium, channel: verify.ChannelCall, err: verify.ErrCountryNotAllowed},
		{name: "SMS to International Networks (+882)", number: intlNet, channel: verify.ChannelSMS, err: verify.ErrCountryNotAllowed},
		{name: "auto to Sierra Leone", number: slMobile, channel: verify.ChannelAuto, err: verify.ErrCountryNotAllowed},
		{name: "Germany is not high risk", number: deMobile, channel: verify.ChannelAuto, want: verify.ChannelSMS, fallback: verify.ChannelCall},
	})
	// route.Defaults, the router of tests and tools, refuses them too.
	_, err := route.Defaults{}.Route(context.Background(), verify.RouteRequest{Number: num(t, kmMobile), Channel: verify.ChannelCall})
	if !errors.Is(err, verify.ErrCountryNotAllowed) || !strings.Contains(err.Error(), "high risk") {
		t.Errorf("route.Defaults: call to +269: %v, want country_not_allowed for a high-risk destination", err)
	}
}

func TestGeoPermissions(t *testing.T) {
	e := geoEngine(t, `
route:
  geo:
    permissions:
      - {tenants: [lab], channels: [sms], allow: [KM]}        # Comoros enabled for one tenant's SMS
      - {channels: [call], allow: ["+881"]}                   # satellite phones called, for everyone
      - {tenants: [bank], deny: ["*"], allow: [DE, AT]}      # an allow list
      - {tenants: [open], allow: ["*"]}                       # "*" enables no high-risk destination
      - {tenants: [strict], allow: [FR], deny: [FR]}          # deny beats allow
      - {tenants: [carve], deny: [DE], allow: ["+49151"]}     # a prefix beats its country
      - {tenants: [nosms], channels: [sms], deny: [FR]}       # FR by call only
      - {tenants: [nocall], channels: [call], deny: [DE]}     # DE by SMS only
`, nil)
	runGeo(t, e, []geoCase{
		{name: "lab texts Comoros", tenant: "lab", number: kmMobile, channel: verify.ChannelSMS, want: verify.ChannelSMS},
		{name: "lab may not call Comoros", tenant: "lab", number: kmMobile, channel: verify.ChannelCall, err: verify.ErrCountryNotAllowed},
		{name: "lab's auto texts Comoros, no fallback to the refused call", tenant: "lab", number: kmMobile, channel: verify.ChannelAuto, want: verify.ChannelSMS},
		{name: "other tenants may not text Comoros", tenant: "acme", number: kmMobile, channel: verify.ChannelSMS, err: verify.ErrCountryNotAllowed},
		{name: "everyone calls Iridium", tenant: "acme", number: iridium, channel: verify.ChannelCall, want: verify.ChannelCall},
		{name: "nobody texts Iridium", tenant: "acme", number: iridium, channel: verify.ChannelSMS, err: verify.ErrCountryNotAllowed},
		{name: "bank: Germany allowed", tenant: "bank", number: deMobile, channel: verify.ChannelSMS, want: verify.ChannelSMS},
		{name: "bank: France not", tenant: "bank", number: frMobile, channel: verify.ChannelSMS, err: verify.ErrCountryNotAllowed},
		{name: "bank: nor Comoros", tenant: "bank", number: kmMobile, channel: verify.ChannelCall, err: verify.ErrCountryNotAllowed},
		{name: "others: France allowed", tenant: "acme", number: frMobile, channel: verify.ChannelSMS, want: verify.ChannelSMS},
		{name: "* allows France", tenant: "open", number: frMobile, channel: verify.ChannelCall, want: verify.ChannelCall},
		{name: "* does not enable Comoros", tenant: "open", number: kmMobile, channel: verify.ChannelSMS, err: verify.ErrCountryNotAllowed},
		{name: "deny beats allow", tenant: "strict", number: frMobile, channel: verify.ChannelSMS, err: verify.ErrCountryNotAllowed},
		{name: "prefix beats country: +49151", tenant: "carve", number: deMobile, channel: verify.ChannelSMS, want: verify.ChannelSMS},
		{name: "prefix beats country: +49160", tenant: "carve", number: deMobile2, channel: verify.ChannelSMS, err: verify.ErrCountryNotAllowed},
		{name: "auto gives way to the call", tenant: "nosms", number: frMobile, channel: verify.ChannelAuto, want: verify.ChannelCall, reason: "sms " + route.ReasonNotPermitted},
		{name: "asked for sms: refused", tenant: "nosms", number: frMobile, channel: verify.ChannelSMS, err: verify.ErrCountryNotAllowed},
		{name: "auto texts without the refused call as fallback", tenant: "nocall", number: deMobile, channel: verify.ChannelAuto, want: verify.ChannelSMS},
	})
}

func TestHighRiskList(t *testing.T) {
	for _, tc := range []struct {
		list    string
		km, jm  bool // allowed
		iridium bool
	}{
		{list: "[]", km: false, jm: true, iridium: false},
		{list: "[none]", km: true, jm: true, iridium: true},
		{list: "[JM]", km: true, jm: false, iridium: true},
		{list: "[default, JM]", km: false, jm: false, iridium: false},
		{list: `["+2693"]`, km: false, jm: true, iridium: true},
	} {
		t.Run(tc.list, func(t *testing.T) {
			e := geoEngine(t, "route:\n  geo:\n    high_risk: "+tc.list+"\n", nil)
			for _, n := range []struct {
				number string
				want   bool
			}{{kmMobile, tc.km}, {"+18765550123", tc.jm}, {iridium, tc.iridium}} {
				_, err := e.Route(context.Background(), verify.RouteRequest{Number: num(t, n.number), Channel: verify.ChannelCall})
				if (err == nil) != n.want {
					t.Errorf("call to %s: %v, want allowed %v", n.number, err, n.want)
				}
			}
		})
	}
}

// blocks is a PrefixBlocks that blocks the prefixes it holds.
type blocks struct {
	until   time.Time
	sms     []string
	callToo bool
}

func (b blocks) Blocked(number string, ch verify.Channel) (time.Time, bool) {
	if ch == verify.ChannelCall && !b.callToo {
		return time.Time{}, false
	}
	for _, p := range b.sms {
		if strings.HasPrefix(number, p) {
			return b.until, true
		}
	}
	return time.Time{}, false
}

// TestPumpingBlock: SMS to a prefix the watch blocked gives way to a call
// where the route allows one, and is otherwise refused with 429 and the
// block's end as Retry-After; calls are refused only when the watch blocks
// them too.
func TestPumpingBlock(t *testing.T) {
	until := time.Now().Add(11 * time.Hour)
	e := geoEngine(t, `
route:
  rules:
    - name: sms-with-fallback
      match: {tenants: [fb]}
      action: {channel: sms, fallback: call}
`, blocks{until: until, sms: []string{"+336"}})
	runGeo(t, e, []geoCase{
		{name: "auto calls instead", number: frMobile, channel: verify.ChannelAuto, want: verify.ChannelCall, reason: "sms " + route.ReasonPumping},
		{name: "asked for sms: refused", number: frMobile, channel: verify.ChannelSMS, err: verify.ErrRateLimited},
		{name: "a rule's sms with a call fallback calls", tenant: "fb", number: frMobile, channel: verify.ChannelSMS, want: verify.ChannelCall, reason: "sms " + route.ReasonPumping},
		{name: "calls go through", number: frMobile, channel: verify.ChannelCall, want: verify.ChannelCall},
		{name: "other prefixes text", number: deMobile, channel: verify.ChannelSMS, want: verify.ChannelSMS},
	})
	_, err := e.Route(context.Background(), verify.RouteRequest{Number: num(t, frMobile), Channel: verify.ChannelSMS})
	var le *verify.LimitError
	if !errors.As(err, &le) || !le.Aggregate || le.Policy != verify.PolicyPumping || le.RetryAfter < 10*time.Hour || le.RetryAfter > 11*time.Hour {
		t.Errorf("refusal %#v, want an aggregate sms_pumping LimitError until the block ends", err)
	}
	// A call to a number whose SMS route is blocked does not fall back to SMS.
	got, err := e.Route(context.Background(), verify.RouteRequest{Number: num(t, "+33142685300"), Channel: verify.ChannelAuto})
	if err != nil || got.Channel != verify.ChannelCall || got.Fallback != "" {
		t.Errorf("auto to a French landline: %+v, %v; want a call without SMS fallback", got, err)
	}

	calls := geoEngine(t, "route: {}", blocks{until: until, sms: []string{"+336"}, callToo: true})
	runGeo(t, calls, []geoCase{
		{name: "blocked both ways: auto refused", number: frMobile, channel: verify.ChannelAuto, err: verify.ErrRateLimited},
		{name: "blocked both ways: call refused", number: frMobile, channel: verify.ChannelCall, err: verify.ErrRateLimited},
	})
}

func TestGeoConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		doc, want string
	}{
		{"route: {geo: {high_risk: [KM, '+882', default]}}", ""},
		{"route: {geo: {high_risk: [none]}}", ""},
		{"route: {geo: {high_risk: [none, KM]}}", "route.geo.high_risk[0]"},
		{"route: {geo: {high_risk: ['*']}}", "route.geo.high_risk[0]"},
		{"route: {geo: {high_risk: [Comoros]}}", "route.geo.high_risk[0]"},
		{"route: {geo: {permissions: [{tenants: [a]}]}}", "route.geo.permissions[0]: a permission needs allow or deny"},
		{"route: {geo: {permissions: [{allow: [KM], channels: [auto]}]}}", "route.geo.permissions[0].channels[0]"},
		{"route: {geo: {permissions: [{allow: [KM, '+0']}]}}", "route.geo.permissions[0].allow[1]"},
		{"route: {geo: {permissions: [{deny: ['+49x']}]}}", "route.geo.permissions[0].deny[0]"},
		{"route: {geo: {permissions: [{allow: ['*'], tenants: ['']}]}}", "route.geo.permissions[0].tenants[0]"},
	} {
		err := loadConfig(t, tc.doc).Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.doc, err, tc.want)
		}
	}
	if !slices.Contains(route.DefaultHighRisk(), "KM") || !slices.Contains(route.DefaultHighRisk(), "+882") {
		t.Errorf("DefaultHighRisk %v lacks Comoros or +882", route.DefaultHighRisk())
	}
}
