package route

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/verigate/verigate/verify"
)

// Reasons, in the plain words a Route carries and `route explain` prints.
const (
	ReasonRequested     = "requested"
	ReasonDefault       = "default"
	ReasonFixedLine     = "fixed line"
	ReasonFixedOrMobile = "fixed line or mobile"
	ReasonRoaming       = "roaming"
	ReasonUndelivered   = "sms undelivered recently"
	ReasonPremiumRate   = "premium rate"
	ReasonSharedCost    = "shared cost"
	ReasonUAN           = "universal access number"
	ReasonCountry       = "country not allowed"
	// ReasonNotPermitted and ReasonPumping follow the channel that gave
	// way to the other: "sms not permitted to this destination".
	ReasonNotPermitted = "not permitted to this destination"
	ReasonPumping      = "paused for this prefix (suspected SMS pumping)"
	reasonRulePrefix   = "rule "
)

// refused are line types no verification is sent to: they bill the caller
// (toll fraud). No rule can route to them.
var refused = map[string]string{
	LinePremiumRate: ReasonPremiumRate,
	LineSharedCost:  ReasonSharedCost,
	LineUAN:         ReasonUAN,
}

// Deps are the signal sources an Engine may use; each is optional.
type Deps struct {
	GeoIP   CountryLocator
	Lookup  NumberLookup // put a CachedLookup here to cache results
	History DeliveryHistory
	// Blocks are the destinations blocked for a while (the SMS-pumping watch).
	Blocks PrefixBlocks
	Logger *slog.Logger
	Now    func() time.Time
	// NoSMS is a gateway without an SMS provider (sms.provider: none, a
	// PBX-only deployment): SMS is refused as unsupported, and channel
	// auto calls.
	NoSMS bool
}

// ErrNoSMSMessage is what a request for an SMS on a gateway without an SMS
// provider (Deps.NoSMS) is told.
const ErrNoSMSMessage = "this gateway sends no SMS (sms.provider: none): ask for channel call or auto"

// Engine is the routing decision: a verify.Router whose every decision can
// also be explained. It is safe for concurrent use.
type Engine struct {
	cfg           Config
	deps          Deps
	allow, deny   map[string]bool
	geo           geoRules
	rulesAskRoam  bool
	lookupTimeout time.Duration
	historyWindow time.Duration
	closeFn       func() error
}

var _ verify.Router = (*Engine)(nil)

// NewEngine checks cfg and returns an Engine over deps.
func NewEngine(cfg Config, deps Deps) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	e := &Engine{cfg: cfg, deps: deps, allow: set(cfg.AllowCountries), deny: set(cfg.DenyCountries), geo: compileGeo(cfg.Geo)}
	for _, r := range cfg.Rules {
		if r.Match.Roaming != nil {
			e.rulesAskRoam = true
		}
	}
	e.lookupTimeout = cfg.Lookup.Timeout
	if e.lookupTimeout == 0 {
		e.lookupTimeout = DefaultLookupTimeout
	}
	e.historyWindow = cfg.History.window()
	return e, nil
}

func set(items []string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, s := range items {
		m[s] = true
	}
	return m
}

// Close releases what Open opened (the GeoIP database).
func (e *Engine) Close() error {
	if e.closeFn != nil {
		return e.closeFn()
	}
	return nil
}

// Route implements verify.Router.
func (e *Engine) Route(ctx context.Context, r verify.RouteRequest) (verify.Route, error) {
	return e.decide(ctx, r, nil)
}

// Explanation is a routing decision with everything that led to it.
type Explanation struct {
	Number      verify.Number  `json:"number"`
	Tenant      string         `json:"tenant,omitempty"`
	Requested   verify.Channel `json:"requested_channel"`
	RoamingHint *bool          `json:"roaming_hint,omitempty"`
	ClientIP    string         `json:"client_ip,omitempty"`
	// LineType is the line type decided on: the number's, or the lookup's
	// when it knew better.
	LineType string `json:"line_type"`
	// Signals are the roaming and delivery signals consulted, in order.
	Signals []Signal `json:"signals"`
	// Roaming is the combined roaming decision.
	Roaming bool `json:"roaming"`
	// Rules are the rules looked at, in order, up to the first that matched.
	Rules []RuleCheck `json:"rules"`
	// Route is the decision, unless Refused says why there is none.
	Route   *verify.Route `json:"route,omitempty"`
	Refused *Refusal      `json:"refused,omitempty"`
}

// Signal is one input to the decision.
type Signal struct {
	// Name: hint, geoip, lookup or history.
	Name string `json:"name"`
	// Roaming is what this signal says about roaming, if anything.
	Roaming *bool `json:"roaming,omitempty"`
	// Used is true for the signal the roaming decision was taken from.
	Used   bool   `json:"used,omitempty"`
	Detail string `json:"detail"`
}

// RuleCheck says whether a rule matched and, if not, why not.
type RuleCheck struct {
	Name    string `json:"name"`
	Matched bool   `json:"matched"`
	Why     string `json:"why,omitempty"`
}

// Refusal is a refused request: the REST error code and its message.
type Refusal struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Explain decides as Route does and returns every step. A refusal is in
// Explanation.Refused, not an error.
func (e *Engine) Explain(ctx context.Context, r verify.RouteRequest) *Explanation {
	ex := &Explanation{
		Number: r.Number, Tenant: r.Tenant, Requested: r.Channel, RoamingHint: r.Roaming,
		ClientIP: r.ClientIP, LineType: r.Number.LineType, Signals: []Signal{}, Rules: []RuleCheck{},
	}
	route, err := e.decide(ctx, r, ex)
	if err != nil {
		ex.Refused = &Refusal{Code: verify.ErrorCode(err), Message: err.Error()}
		return ex
	}
	ex.Route = &route
	return ex
}

// signals is the combined view of the roaming and delivery signals.
type signals struct {
	lineType    string
	roaming     bool
	roamWhy     string
	undelivered bool
}

func (e *Engine) decide(ctx context.Context, r verify.RouteRequest, ex *Explanation) (verify.Route, error) {
	if r.Channel == "" {
		r.Channel = verify.ChannelAuto
	}
	num := r.Number
	if e.deny[num.Region] || (len(e.allow) > 0 && !e.allow[num.Region]) {
		return verify.Route{}, verify.Invalid(verify.ErrCountryNotAllowed,
			"verifications to numbers in %s are not allowed on this gateway: ask its operator to allow the country, or use a number from another country", countryName(num.Region))
	}
	if what, ok := refused[num.LineType]; ok {
		return verify.Route{}, verify.Invalid(verify.ErrUnsupportedNumber,
			"%s numbers are not supported: verification messages and calls are never sent to numbers that bill the caller; use a mobile or landline number", what)
	}
	sig := e.signals(ctx, r, ex)
	if what, ok := refused[sig.lineType]; ok {
		return verify.Route{}, verify.Invalid(verify.ErrUnsupportedNumber,
			"%s numbers are not supported (number lookup): use a mobile or landline number", what)
	}

	var rule *Rule
	for i := range e.cfg.Rules {
		why := e.cfg.Rules[i].Match.mismatch(r, sig)
		if ex != nil {
			ex.Rules = append(ex.Rules, RuleCheck{Name: e.cfg.Rules[i].Name, Matched: why == "", Why: why})
		}
		if why == "" {
			rule = &e.cfg.Rules[i]
			break
		}
	}

	route := verify.Route{Reasons: make([]string, 0, 3)}
	channel := r.Channel
	if rule != nil {
		route.Reasons = append(route.Reasons, reasonRulePrefix+rule.Name)
		if rule.Action.Channel == verify.ChannelSMS || rule.Action.Channel == verify.ChannelCall {
			channel = rule.Action.Channel
		}
		route.Provider, route.Trunk, route.SenderID = rule.Action.Provider, rule.Action.Trunk, rule.Action.SenderID
	}
	fixed := sig.lineType == LineFixed
	ruleChose := rule != nil && channel != r.Channel
	switch {
	case ruleChose:
		// The rule chose; still say what is known of the number.
		if fixed {
			route.Reasons = append(route.Reasons, ReasonFixedLine)
		}
		if sig.roaming {
			route.Reasons = append(route.Reasons, ReasonRoaming)
		}
	case channel != verify.ChannelAuto:
		route.Reasons = append(route.Reasons, ReasonRequested)
	case fixed:
		channel = verify.ChannelCall
		route.Reasons = append(route.Reasons, ReasonFixedLine)
	case sig.roaming:
		channel = verify.ChannelCall
		route.Reasons = append(route.Reasons, ReasonRoaming)
	case sig.undelivered:
		channel = verify.ChannelCall
		route.Reasons = append(route.Reasons, ReasonUndelivered)
	case sig.lineType == LineFixedOrMobile:
		// The digits cannot tell: text it (most verified numbers are
		// mobiles) and let the fallback call it if the SMS goes nowhere.
		channel = verify.ChannelSMS
		route.Reasons = append(route.Reasons, ReasonFixedOrMobile)
	default:
		channel = verify.ChannelSMS
		route.Reasons = append(route.Reasons, ReasonDefault)
	}
	if channel == verify.ChannelSMS && fixed {
		return verify.Route{}, verify.Invalid(verify.ErrUnsupportedNumber,
			"this number is a fixed line and cannot receive SMS: ask for channel call or auto")
	}
	route.Channel = channel
	route.Fallback = e.fallbackFor(r, rule, channel, fixed)
	return e.permit(r, route, r.Channel == verify.ChannelAuto && !ruleChose, fixed)
}

// fallbackFor is the channel tried when channel fails: the rule's, or by
// default the other channel for requests that let the gateway choose.
func (e *Engine) fallbackFor(r verify.RouteRequest, rule *Rule, channel verify.Channel, fixed bool) verify.Channel {
	other := verify.ChannelSMS
	if channel == verify.ChannelSMS {
		other = verify.ChannelCall
	}
	if rule != nil && rule.Action.Fallback != "" {
		if rule.Action.Fallback == FallbackNone || verify.Channel(rule.Action.Fallback) == channel {
			return ""
		}
		if fixed && other == verify.ChannelSMS {
			return ""
		}
		return other
	}
	if e.cfg.Fallback.Off || r.Channel != verify.ChannelAuto || (fixed && other == verify.ChannelSMS) {
		return ""
	}
	return other
}

// signals gathers the roaming and delivery signals for r. The most
// authoritative one decides roaming: a number lookup (the network knows),
// then the client's hint, then GeoIP (a guess: people use VPNs and travel
// without roaming). Failing sources are passed over, never fatal.
func (e *Engine) signals(ctx context.Context, r verify.RouteRequest, ex *Explanation) signals {
	s := signals{lineType: r.Number.LineType}
	var hint, geo, look *bool
	var geoWhy, lookWhy string

	if r.Roaming != nil {
		hint = r.Roaming
		if ex != nil {
			ex.Signals = append(ex.Signals, Signal{Name: "hint", Roaming: hint, Detail: "the request says roaming=" + fmt.Sprint(*hint)})
		}
	}
	if e.deps.GeoIP != nil && r.ClientIP != "" {
		geo, geoWhy = e.geoSignal(r)
		if ex != nil {
			ex.Signals = append(ex.Signals, Signal{Name: "geoip", Roaming: geo, Detail: geoWhy})
		}
	}
	if e.deps.Lookup != nil && e.wantsLookup(r) {
		look, lookWhy = e.lookupSignal(ctx, r, &s)
		if ex != nil {
			ex.Signals = append(ex.Signals, Signal{Name: "lookup", Roaming: look, Detail: lookWhy})
			if s.lineType != r.Number.LineType {
				ex.LineType = s.lineType
			}
		}
	}
	used := ""
	switch {
	case look != nil:
		s.roaming, s.roamWhy, used = *look, lookWhy, "lookup"
	case hint != nil:
		s.roaming, s.roamWhy, used = *hint, "the request says so", "hint"
	case geo != nil:
		s.roaming, s.roamWhy, used = *geo, geoWhy, "geoip"
	}
	if e.deps.History != nil && e.historyWindow > 0 && r.Channel == verify.ChannelAuto {
		at, ok, err := e.deps.History.LastUndelivered(ctx, r.Number.E164)
		detail := "no undelivered SMS recorded"
		switch {
		case err != nil:
			detail = "history not available: " + err.Error()
		case ok && e.deps.Now().Sub(at) < e.historyWindow:
			s.undelivered = true
			detail = "an SMS to this number went undelivered at " + at.UTC().Format(time.RFC3339)
		case ok:
			detail = "last undelivered SMS is older than " + e.historyWindow.String()
		}
		if ex != nil {
			ex.Signals = append(ex.Signals, Signal{Name: "history", Detail: detail, Used: s.undelivered})
		}
	}
	if ex != nil {
		ex.Roaming = s.roaming
		for i := range ex.Signals {
			if ex.Signals[i].Name == used {
				ex.Signals[i].Used = true
			}
		}
	}
	return s
}

// wantsLookup: lookups cost money and time, so only when the answer can
// change the decision, for numbers a lookup can say something about.
func (e *Engine) wantsLookup(r verify.RouteRequest) bool {
	if !e.cfg.Lookup.Always && r.Channel != verify.ChannelAuto && !e.rulesAskRoam {
		return false
	}
	switch r.Number.LineType {
	case LineMobile, LineFixedOrMobile, LineVoIP, LinePersonal, LineUnknown:
		return true
	}
	return false
}

func (e *Engine) geoSignal(r verify.RouteRequest) (*bool, string) {
	ip, err := netip.ParseAddr(r.ClientIP)
	if err != nil {
		return nil, fmt.Sprintf("client IP %q is not an IP address", r.ClientIP)
	}
	ip = ip.Unmap()
	if !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return nil, "client IP " + ip.String() + " is not a public address"
	}
	country, err := e.deps.GeoIP.Country(ip)
	if err != nil {
		return nil, "GeoIP lookup failed: " + err.Error()
	}
	if country == "" {
		return nil, "GeoIP does not know " + ip.String()
	}
	roaming := country != r.Number.Region
	if roaming {
		return &roaming, fmt.Sprintf("client IP is in %s, the number is from %s", country, r.Number.Region)
	}
	return &roaming, "client IP is in " + country + ", like the number"
}

func (e *Engine) lookupSignal(ctx context.Context, r verify.RouteRequest, s *signals) (*bool, string) {
	ctx, cancel := context.WithTimeout(ctx, e.lookupTimeout)
	defer cancel()
	res, err := e.deps.Lookup.Lookup(ctx, r.Number.E164)
	if err != nil {
		e.deps.Logger.Warn("number lookup failed", "to", verify.MaskNumber(r.Number.E164), "err", err)
		return nil, "lookup failed: " + err.Error()
	}
	var parts []string
	if res.Source != "" {
		parts = append(parts, res.Source)
	}
	if res.LineType != "" && res.LineType != LineUnknown {
		parts = append(parts, "line type "+res.LineType)
		// The lookup settles what the digits cannot (fixed_line_or_mobile),
		// and knows of numbers ported between fixed and mobile.
		s.lineType = res.LineType
	}
	if res.Network != "" {
		parts = append(parts, "network "+res.Network)
	}
	if res.Ported != nil && *res.Ported {
		parts = append(parts, "ported")
	}
	roaming := res.Roaming
	if roaming == nil && res.Country != "" {
		abroad := res.Country != r.Number.Region
		roaming = &abroad
	}
	if roaming != nil {
		if *roaming {
			parts = append(parts, "roaming")
		} else {
			parts = append(parts, "not roaming")
		}
		if res.Country != "" {
			parts = append(parts, "in "+res.Country)
		}
	}
	if len(parts) == 0 {
		return roaming, "lookup knew nothing about the number"
	}
	return roaming, strings.Join(parts, ", ")
}

// mismatch returns why m does not match, or "" when it does.
func (m Match) mismatch(r verify.RouteRequest, s signals) string {
	region := r.Number.Region
	var in []string
	for _, c := range m.Countries {
		if strings.HasPrefix(c, "!") {
			if c[1:] == region {
				return "country " + region + " is excluded"
			}
			continue
		}
		in = append(in, c)
	}
	if len(in) > 0 && !slices.Contains(in, region) {
		return fmt.Sprintf("country %s is not one of %s", region, strings.Join(in, ", "))
	}
	if slices.Contains(m.NotCountries, region) {
		return "country " + region + " is excluded"
	}
	if len(m.LineTypes) > 0 && !slices.Contains(m.LineTypes, s.lineType) {
		return fmt.Sprintf("line type %s is not one of %s", s.lineType, strings.Join(m.LineTypes, ", "))
	}
	if m.Roaming != nil && *m.Roaming != s.roaming {
		if s.roaming {
			return "the number is roaming"
		}
		return "the number is not roaming"
	}
	if len(m.Channels) > 0 && !slices.Contains(m.Channels, r.Channel) {
		return fmt.Sprintf("channel %s was asked for, not %s", r.Channel, joinChannels(m.Channels))
	}
	if len(m.Tenants) > 0 && !slices.Contains(m.Tenants, r.Tenant) {
		return fmt.Sprintf("tenant %q is not one of %s", r.Tenant, strings.Join(m.Tenants, ", "))
	}
	return ""
}

func joinChannels(cs []verify.Channel) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}

func countryName(region string) string {
	if region == "" || region == "001" || region == "ZZ" {
		return "that numbering plan"
	}
	return region
}

// errNoGeoIP is returned by Open when a configured GeoIP database is missing.
var errNoGeoIP = errors.New("geoip database")
