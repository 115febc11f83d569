package route_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/verify"
)

func ptr[T any](v T) *T { return &v }

// num classifies e164 with the real classifier, failing the test if invalid.
func num(t *testing.T, e164 string) verify.Number {
	t.Helper()
	n, err := route.Classifier{}.ParseNumber(e164)
	if err != nil {
		t.Fatalf("%s: %v", e164, err)
	}
	return n
}

const (
	deMobile  = "+4915123456789"
	deFixed   = "+4930123456"
	dePremium = "+499001234567"
	deShared  = "+4918012345"
	gbUAN     = "+445512345678"
	usNumber  = "+12015550123" // fixed_line_or_mobile
	frMobile  = "+33612345678"
	gbVoIP    = "+445612345678"
	usToll    = "+18002345678"
)

func TestDefaults(t *testing.T) {
	for _, tc := range []struct {
		name     string
		number   string
		channel  verify.Channel
		roaming  *bool
		want     verify.Channel
		fallback verify.Channel
		reasons  []string
		err      error
	}{
		{"mobile auto texts", deMobile, verify.ChannelAuto, nil, verify.ChannelSMS, verify.ChannelCall, []string{"default"}, nil},
		{"mobile sms", deMobile, verify.ChannelSMS, nil, verify.ChannelSMS, "", []string{"requested"}, nil},
		{"mobile call", deMobile, verify.ChannelCall, nil, verify.ChannelCall, "", []string{"requested"}, nil},
		{"empty channel is auto", deMobile, "", nil, verify.ChannelSMS, verify.ChannelCall, []string{"default"}, nil},
		{"fixed auto calls", deFixed, verify.ChannelAuto, nil, verify.ChannelCall, "", []string{"fixed line"}, nil},
		{"fixed sms refused", deFixed, verify.ChannelSMS, nil, "", "", nil, verify.ErrUnsupportedNumber},
		{"fixed call", deFixed, verify.ChannelCall, nil, verify.ChannelCall, "", []string{"requested"}, nil},
		{"roaming auto calls", deMobile, verify.ChannelAuto, ptr(true), verify.ChannelCall, verify.ChannelSMS, []string{"roaming"}, nil},
		{"not roaming auto texts", deMobile, verify.ChannelAuto, ptr(false), verify.ChannelSMS, verify.ChannelCall, []string{"default"}, nil},
		{"roaming sms stays sms", deMobile, verify.ChannelSMS, ptr(true), verify.ChannelSMS, "", []string{"requested"}, nil},
		{"US auto texts, honestly", usNumber, verify.ChannelAuto, nil, verify.ChannelSMS, verify.ChannelCall, []string{"fixed line or mobile"}, nil},
		{"US sms allowed", usNumber, verify.ChannelSMS, nil, verify.ChannelSMS, "", []string{"requested"}, nil},
		{"voip auto texts", gbVoIP, verify.ChannelAuto, nil, verify.ChannelSMS, verify.ChannelCall, []string{"default"}, nil},
		{"toll free call", usToll, verify.ChannelCall, nil, verify.ChannelCall, "", []string{"requested"}, nil},
		{"premium refused", dePremium, verify.ChannelAuto, nil, "", "", nil, verify.ErrUnsupportedNumber},
		{"premium call refused", dePremium, verify.ChannelCall, nil, "", "", nil, verify.ErrUnsupportedNumber},
		{"shared cost refused", deShared, verify.ChannelSMS, nil, "", "", nil, verify.ErrUnsupportedNumber},
		{"UAN refused", gbUAN, verify.ChannelCall, nil, "", "", nil, verify.ErrUnsupportedNumber},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := route.Defaults{}.Route(context.Background(), verify.RouteRequest{
				Number: num(t, tc.number), Channel: tc.channel, Roaming: tc.roaming,
			})
			if tc.err != nil {
				var in *verify.InputError
				if !errors.Is(err, tc.err) || !errors.As(err, &in) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Channel != tc.want || got.Fallback != tc.fallback || !slices.Equal(got.Reasons, tc.reasons) {
				t.Errorf("got %s fallback %q reasons %q; want %s fallback %q reasons %q", got.Channel, got.Fallback, got.Reasons, tc.want, tc.fallback, tc.reasons)
			}
		})
	}
}

const rulesYAML = `
route:
  allow_countries: [DE, FR, GB, US, CH, AT]
  deny_countries: [CH]
  rules:
    - name: bank-sip
      match: {tenants: [bank], countries: [DE], line_types: [fixed_line]}
      action: {provider: sip, trunk: pbx-berlin, sender_id: "+4930999999"}
    - name: roamers-call-twilio
      match: {roaming: true, channels: [auto]}
      action: {channel: call, provider: twilio, fallback: none}
    - name: not-france-sms
      match: {countries: ["!FR", "!GB"], line_types: [mobile], channels: [sms, auto]}
      action: {channel: sms, provider: twilio, sender_id: Verigate, fallback: call}
    - name: us-console
      match: {countries: [US], not_countries: [CA]}
      action: {provider: console}
`

func loadConfig(t testing.TB, doc string) route.Config {
	t.Helper()
	var file struct {
		Route route.Config `yaml:"route"`
	}
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	return file.Route
}

func TestRules(t *testing.T) {
	e, err := route.NewEngine(loadConfig(t, rulesYAML), route.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name           string
		tenant, number string
		channel        verify.Channel
		roaming        *bool
		want           verify.Route
		err            error
		checked        []string // rules looked at, in order; the last matched unless none did
		matched        bool
	}{
		{name: "bank landline goes out the PBX", tenant: "bank", number: deFixed, channel: verify.ChannelAuto,
			want:    verify.Route{Channel: verify.ChannelCall, Provider: "sip", Trunk: "pbx-berlin", SenderID: "+4930999999", Reasons: []string{"rule bank-sip", "fixed line"}},
			checked: []string{"bank-sip"}, matched: true},
		{name: "other tenant's landline: defaults", tenant: "shop", number: deFixed, channel: verify.ChannelAuto,
			want:    verify.Route{Channel: verify.ChannelCall, Reasons: []string{"fixed line"}},
			checked: []string{"bank-sip", "roamers-call-twilio", "not-france-sms", "us-console"}},
		{name: "roaming auto: call without fallback", tenant: "shop", number: frMobile, channel: verify.ChannelAuto, roaming: ptr(true),
			want:    verify.Route{Channel: verify.ChannelCall, Provider: "twilio", Reasons: []string{"rule roamers-call-twilio", "roaming"}},
			checked: []string{"bank-sip", "roamers-call-twilio"}, matched: true},
		{name: "roaming but sms asked: next rule", tenant: "shop", number: deMobile, channel: verify.ChannelSMS, roaming: ptr(true),
			want:    verify.Route{Channel: verify.ChannelSMS, Provider: "twilio", SenderID: "Verigate", Fallback: verify.ChannelCall, Reasons: []string{"rule not-france-sms", "requested"}},
			checked: []string{"bank-sip", "roamers-call-twilio", "not-france-sms"}, matched: true},
		{name: "french mobile excluded by !FR", tenant: "shop", number: frMobile, channel: verify.ChannelAuto,
			want:    verify.Route{Channel: verify.ChannelSMS, Fallback: verify.ChannelCall, Reasons: []string{"default"}},
			checked: []string{"bank-sip", "roamers-call-twilio", "not-france-sms", "us-console"}},
		{name: "german mobile asks call: rule's channels do not match", tenant: "shop", number: deMobile, channel: verify.ChannelCall,
			want:    verify.Route{Channel: verify.ChannelCall, Reasons: []string{"requested"}},
			checked: []string{"bank-sip", "roamers-call-twilio", "not-france-sms", "us-console"}},
		{name: "US number keeps the default channel, rule sets provider", tenant: "shop", number: usNumber, channel: verify.ChannelAuto,
			want:    verify.Route{Channel: verify.ChannelSMS, Provider: "console", Fallback: verify.ChannelCall, Reasons: []string{"rule us-console", "fixed line or mobile"}},
			checked: []string{"bank-sip", "roamers-call-twilio", "not-france-sms", "us-console"}, matched: true},
		{name: "denied country", tenant: "shop", number: "+41781234567", channel: verify.ChannelAuto, err: verify.ErrCountryNotAllowed},
		{name: "country not in allow list", tenant: "shop", number: "+819012345678", channel: verify.ChannelAuto, err: verify.ErrCountryNotAllowed},
		{name: "premium refused before any rule", tenant: "bank", number: dePremium, channel: verify.ChannelCall, err: verify.ErrUnsupportedNumber},
		{name: "rule cannot text a landline", tenant: "shop", number: deFixed, channel: verify.ChannelSMS, err: verify.ErrUnsupportedNumber,
			checked: []string{"bank-sip", "roamers-call-twilio", "not-france-sms", "us-console"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := verify.RouteRequest{Tenant: tc.tenant, Number: num(t, tc.number), Channel: tc.channel, Roaming: tc.roaming}
			got, err := e.Route(context.Background(), req)
			ex := e.Explain(context.Background(), req)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				if ex.Refused == nil || ex.Refused.Code != verify.ErrorCode(tc.err) || ex.Refused.Message != err.Error() {
					t.Errorf("explain refused %+v", ex.Refused)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if got.Channel != tc.want.Channel || got.Provider != tc.want.Provider || got.Trunk != tc.want.Trunk ||
					got.SenderID != tc.want.SenderID || got.Fallback != tc.want.Fallback || !slices.Equal(got.Reasons, tc.want.Reasons) {
					t.Errorf("got  %+v\nwant %+v", got, tc.want)
				}
				if ex.Route == nil || ex.Route.Channel != got.Channel || !slices.Equal(ex.Route.Reasons, got.Reasons) {
					t.Errorf("explain route %+v, route %+v", ex.Route, got)
				}
			}
			var names []string
			for i, rc := range ex.Rules {
				names = append(names, rc.Name)
				last := i == len(ex.Rules)-1
				if rc.Matched != (last && tc.matched) {
					t.Errorf("rule %s matched=%v", rc.Name, rc.Matched)
				}
				if !rc.Matched && rc.Why == "" {
					t.Errorf("rule %s: no reason why it did not match", rc.Name)
				}
			}
			if !slices.Equal(names, tc.checked) {
				t.Errorf("rules looked at %q, want %q", names, tc.checked)
			}
		})
	}
}

func TestRuleWhyNot(t *testing.T) {
	cfg := loadConfig(t, rulesYAML)
	cfg.AllowCountries, cfg.DenyCountries = nil, nil
	e, err := route.NewEngine(cfg, route.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ex := e.Explain(context.Background(), verify.RouteRequest{Tenant: "shop", Number: num(t, frMobile), Channel: verify.ChannelAuto})
	want := []string{
		"country FR is not one of DE",
		"the number is not roaming",
		"country FR is excluded",
		"country FR is not one of US",
	}
	for i, rc := range ex.Rules {
		if i >= len(want) || rc.Why != want[i] {
			t.Errorf("rule %s: why %q", rc.Name, rc.Why)
		}
	}
	ex = e.Explain(context.Background(), verify.RouteRequest{Tenant: "bank", Number: num(t, deMobile), Channel: verify.ChannelCall})
	if ex.Rules[0].Why != "line type mobile is not one of fixed_line" || ex.Rules[2].Why != "channel call was asked for, not sms, auto" {
		t.Errorf("why: %+v", ex.Rules)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		doc, key string
	}{
		{"route: {allow_countries: [de]}", "route.allow_countries[0]"},
		{"route: {deny_countries: [GER]}", "route.deny_countries[0]"},
		{"route: {rules: [{match: {countries: [DE]}}]}", "route.rules[0].name"},
		{"route: {rules: [{name: a}, {name: a}]}", "route.rules[1].name"},
		{"route: {rules: [{name: a, match: {countries: [\"!Germany\"]}}]}", "route.rules[0].match.countries[0]"},
		{"route: {rules: [{name: a, match: {not_countries: [xx]}}]}", "route.rules[0].match.not_countries[0]"},
		{"route: {rules: [{name: a, match: {line_types: [mobil]}}]}", "route.rules[0].match.line_types[0]"},
		{"route: {rules: [{name: a, match: {channels: [fax]}}]}", "route.rules[0].match.channels[0]"},
		{"route: {rules: [{name: a, action: {channel: email}}]}", "route.rules[0].action.channel"},
		{"route: {rules: [{name: a, action: {fallback: pigeon}}]}", "route.rules[0].action.fallback"},
		{"route: {lookup: {provider: hlr9}}", "route.lookup.provider"},
		{"route: {lookup: {provider: http, url: \"http://x/\", roaming_field: r}}", "route.lookup.url"},
		{"route: {lookup: {provider: http, url: \"http://x/{number}\"}}", "route.lookup.roaming_field"},
		{"route: {lookup: {provider: twilio}}", "route.lookup.username"},
		{"route: {fallback: {sms_timeout: -1s}}", "route.fallback.sms_timeout"},
	} {
		err := loadConfig(t, tc.doc).Validate()
		if err == nil || !strings.Contains(err.Error(), tc.key+":") {
			t.Errorf("%s: err %v, want one naming %s", tc.doc, err, tc.key)
		}
	}
	if err := loadConfig(t, rulesYAML).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	if err := (route.Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
}

// fakeHistory is a DeliveryHistory with one undelivered number.
type fakeHistory struct {
	number string
	at     time.Time
}

func (f fakeHistory) LastUndelivered(_ context.Context, e164 string) (time.Time, bool, error) {
	return f.at, e164 == f.number, nil
}

func TestHistorySignal(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	e, err := route.NewEngine(route.Config{History: route.HistoryConfig{UndeliveredWindow: time.Hour}},
		route.Deps{History: fakeHistory{number: deMobile, at: now.Add(-30 * time.Minute)}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, _ := e.Route(ctx, verify.RouteRequest{Number: num(t, deMobile), Channel: verify.ChannelAuto})
	if got.Channel != verify.ChannelCall || !slices.Equal(got.Reasons, []string{route.ReasonUndelivered}) {
		t.Errorf("recently undelivered: %+v", got)
	}
	got, _ = e.Route(ctx, verify.RouteRequest{Number: num(t, deMobile), Channel: verify.ChannelSMS})
	if got.Channel != verify.ChannelSMS {
		t.Errorf("sms asked for: %+v", got)
	}
	got, _ = e.Route(ctx, verify.RouteRequest{Number: num(t, frMobile), Channel: verify.ChannelAuto})
	if got.Channel != verify.ChannelSMS {
		t.Errorf("other number: %+v", got)
	}
	old, _ := route.NewEngine(route.Config{History: route.HistoryConfig{UndeliveredWindow: 10 * time.Minute}},
		route.Deps{History: fakeHistory{number: deMobile, at: now.Add(-30 * time.Minute)}, Now: func() time.Time { return now }})
	if got, _ := old.Route(ctx, verify.RouteRequest{Number: num(t, deMobile), Channel: verify.ChannelAuto}); got.Channel != verify.ChannelSMS {
		t.Errorf("outside the window: %+v", got)
	}
}

func TestMemoryHistory(t *testing.T) { testHistory(t, route.NewMemoryHistory(10)) }

// TestRedisHistory: the history gateways on one Redis share behaves as
// the in-process one, keeps the later of two undelivered reports that
// arrive out of order, and its keys expire after the window. On a
// private redis-server: its keys are the number's, with no test prefix.
func TestRedisHistory(t *testing.T) {
	rdb := redistest.StartServer(t).Client(t)
	ctx := context.Background()
	h := route.NewRedisHistory(rdb, time.Hour, nil)
	testHistory(t, h)

	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	v := &verify.Verification{To: deMobile, Channel: verify.ChannelSMS}
	h.Observe(ctx, v, verify.Event{Type: verify.EventFailed, At: at.Add(time.Minute)})
	h.Observe(ctx, v, verify.Event{Type: verify.EventUndelivered, At: at})
	if got, ok, err := h.LastUndelivered(ctx, deMobile); err != nil || !ok || !got.Equal(at.Add(time.Minute)) {
		t.Errorf("after a later failed and an earlier undelivered: %v %v %v", got, ok, err)
	}
	if ttl, err := rdb.PTTL(ctx, route.HistoryKey(deMobile)).Result(); err != nil || ttl <= 0 || ttl > time.Hour {
		t.Errorf("key %s: ttl %v %v", route.HistoryKey(deMobile), ttl, err)
	}
}

func testHistory(t *testing.T, h interface {
	route.DeliveryHistory
	verify.EventObserver
}) {
	t.Helper()
	ctx := context.Background()
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	v := &verify.Verification{To: deMobile, Channel: verify.ChannelSMS}
	if _, ok, _ := h.LastUndelivered(ctx, deMobile); ok {
		t.Fatal("empty history knows a number")
	}
	h.Observe(ctx, v, verify.Event{Type: verify.EventUndelivered, At: at})
	if got, ok, _ := h.LastUndelivered(ctx, deMobile); !ok || !got.Equal(at) {
		t.Errorf("after undelivered: %v %v", got, ok)
	}
	h.Observe(ctx, &verify.Verification{To: deMobile, Channel: verify.ChannelCall}, verify.Event{Type: verify.EventNoAnswer, At: at.Add(time.Minute)})
	if got, _, _ := h.LastUndelivered(ctx, deMobile); !got.Equal(at) {
		t.Errorf("a call's no-answer changed the SMS history: %v", got)
	}
	h.Observe(ctx, v, verify.Event{Type: verify.EventDelivered, At: at.Add(2 * time.Minute)})
	if _, ok, _ := h.LastUndelivered(ctx, deMobile); ok {
		t.Error("a delivered SMS did not clear the history")
	}
}

func TestEngineConcurrent(t *testing.T) {
	e, err := route.NewEngine(loadConfig(t, rulesYAML), route.Deps{History: route.NewMemoryHistory(16)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]verify.Route{}
	nums := map[string]verify.Number{}
	for _, n := range numbers {
		nums[n.e164] = num(t, n.e164)
		r, _ := e.Route(context.Background(), verify.RouteRequest{Tenant: "bank", Number: nums[n.e164], Channel: verify.ChannelAuto})
		want[n.e164] = r
	}
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 300 {
				n := numbers[(g*13+i)%len(numbers)]
				r, _ := e.Route(context.Background(), verify.RouteRequest{Tenant: "bank", Number: nums[n.e164], Channel: verify.ChannelAuto})
				if w := want[n.e164]; r.Channel != w.Channel || !slices.Equal(r.Reasons, w.Reasons) {
					t.Errorf("%s: %+v, earlier %+v", n.e164, r, w)
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}
