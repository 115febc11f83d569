package route

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/verigate/verigate/verify"
)

// GeoConfig is who may send where: the destinations at high risk of
// telephony fraud, refused unless enabled, and the operator's permissions
// per tenant and channel. The `route.geo` section of the YAML file.
//
// A destination is "*" (every number), an ISO 3166-1 alpha-2 country
// (KM), or "+" and the first digits of the E.164 number (+882, +2693).
// For a request the most specific destination that matches the number
// decides, among the high-risk list and the allow and deny lists of every
// permission that applies to the tenant and channel: a prefix beats a
// country (a longer prefix a shorter one), a country beats "*". At equal
// specificity a permission's deny beats its allow, and both beat the
// high-risk list. Nothing matching: allowed. So "*" in an allow list never
// enables a high-risk destination; naming it (KM, +269) does.
type GeoConfig struct {
	// HighRisk are the destinations refused unless a permission allows
	// them. Empty: DefaultHighRisk. The word "default" in the list stands
	// for DefaultHighRisk (to add to it); ["none"] turns the list off.
	HighRisk []string `yaml:"high_risk"`
	// Permissions allow and deny destinations per tenant and channel.
	Permissions []Permission `yaml:"permissions"`
}

// Permission allows and denies destinations to some tenants on some channels.
type Permission struct {
	// Tenants it applies to; empty: every tenant.
	Tenants []string `yaml:"tenants"`
	// Channels it applies to, sms or call; empty: both.
	Channels []verify.Channel `yaml:"channels"`
	// Allow and Deny are destinations ("*", a country, or a +prefix).
	// deny: ["*"] with allow: [DE, AT] is an allow list.
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
}

// Words of GeoConfig.HighRisk.
const (
	HighRiskDefault = "default"
	HighRiskNone    = "none"
)

// DefaultHighRisk returns the destinations refused by default: the
// satellite and international networks and the international premium rate
// service of the ITU's global codes (+870 Inmarsat, +881 Global Mobile
// Satellite System, +882 and +883 International Networks, +979
// International Premium Rate Service), and the small markets with high
// termination rates that public fraud guidance names again and again for
// international revenue share fraud and SMS pumping: each is in Microsoft
// Entra's list of country codes that need an opt-in for SMS and voice
// verification, and most in the default blocks of telephone carriers and
// other verification services. docs/ROUTING.md ("Destination permissions")
// lists the sources. A deployment that serves people there enables them
// per tenant and channel.
func DefaultHighRisk() []string {
	return []string{
		// ITU-T E.164 global services.
		"+870", "+881", "+882", "+883", "+979",
		// Africa.
		"BI", "BJ", "CD", "CF", "CG", "DJ", "ER", "GM", "GN", "GQ", "GW", "KM", "LR", "MR",
		"SC", "SD", "SL", "SO", "SS", "ST", "TD",
		// Asia.
		"AF", "AZ", "KG", "MV", "SY", "TJ", "TL", "TM", "UZ", "YE",
		// Oceania.
		"CK", "KI", "NR", "NU", "PG", "SB", "TK", "TO", "TV", "VU", "WS",
		// The Americas.
		"CU", "HT",
	}
}

// dest is one destination of a list, ready to match.
type dest struct {
	raw    string
	prefix string // "+digits", or "" for a country or "*"
}

// specificity says how closely d matches num: 0 no match, 1 "*", 2 the
// country, 2 + digits for a prefix.
func (d dest) specificity(num verify.Number) int {
	switch {
	case d.raw == "*":
		return 1
	case d.prefix != "":
		if strings.HasPrefix(num.E164, d.prefix) {
			return 2 + len(d.prefix) - 1
		}
	case d.raw == num.Region:
		return 2
	}
	return 0
}

// name is the destination in words, for refusals.
func (d dest) name() string {
	switch {
	case d.raw == "*":
		return "this destination"
	case d.prefix != "":
		return "numbers starting " + d.prefix
	}
	return "numbers in " + d.raw
}

func parseDests(list []string) []dest {
	ds := make([]dest, 0, len(list))
	for _, s := range list {
		d := dest{raw: s}
		if strings.HasPrefix(s, "+") {
			d.prefix = s
		}
		ds = append(ds, d)
	}
	return ds
}

// validDest reports whether s is "*", a country or a +prefix.
func validDest(s string) bool {
	if s == "*" || isCountry(s) {
		return true
	}
	if len(s) < 2 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	return strings.Trim(s[1:], "0123456789") == ""
}

// geoRules are the compiled GeoConfig.
type geoRules struct {
	highRisk []dest
	perms    []geoPermission
}

type geoPermission struct {
	tenants     []string
	channels    []verify.Channel
	allow, deny []dest
}

func compileGeo(c GeoConfig) geoRules {
	var g geoRules
	var high []string
	switch {
	case len(c.HighRisk) == 0:
		high = DefaultHighRisk()
	case len(c.HighRisk) == 1 && c.HighRisk[0] == HighRiskNone:
	default:
		for _, s := range c.HighRisk {
			if s == HighRiskDefault {
				high = append(high, DefaultHighRisk()...)
			} else {
				high = append(high, s)
			}
		}
	}
	g.highRisk = parseDests(high)
	for _, p := range c.Permissions {
		g.perms = append(g.perms, geoPermission{tenants: p.Tenants, channels: p.Channels, allow: parseDests(p.Allow), deny: parseDests(p.Deny)})
	}
	return g
}

// Kinds of geoVerdict, in the order they win at equal specificity.
const (
	verdictHighRisk = iota + 1
	verdictAllow
	verdictDeny
)

// geoVerdict is the destination that decided, and how.
type geoVerdict struct {
	kind        int
	specificity int
	dest        dest
}

// decide returns nil when tenant may send to num on ch, else the refusal
// (a *verify.InputError wrapping ErrCountryNotAllowed).
func (g geoRules) decide(tenant string, ch verify.Channel, num verify.Number) error {
	var best geoVerdict
	consider := func(kind int, ds []dest) {
		for _, d := range ds {
			sp := d.specificity(num)
			if sp > best.specificity || (sp == best.specificity && sp > 0 && kind > best.kind) {
				best = geoVerdict{kind: kind, specificity: sp, dest: d}
			}
		}
	}
	consider(verdictHighRisk, g.highRisk)
	for _, p := range g.perms {
		if (len(p.tenants) > 0 && !slices.Contains(p.tenants, tenant)) || (len(p.channels) > 0 && !slices.Contains(p.channels, ch)) {
			continue
		}
		consider(verdictAllow, p.allow)
		consider(verdictDeny, p.deny)
	}
	what := "text messages"
	if ch == verify.ChannelCall {
		what = "verification calls"
	}
	switch best.kind {
	case verdictHighRisk:
		return verify.Invalid(verify.ErrCountryNotAllowed,
			"%s to %s are not enabled on this gateway: the destination is at high risk of telephony fraud; ask its operator to enable it, or use another number", what, best.dest.name())
	case verdictDeny:
		return verify.Invalid(verify.ErrCountryNotAllowed,
			"%s to %s are not allowed for this account: ask the gateway's operator to allow them, or use another number", what, best.dest.name())
	}
	return nil
}

// PrefixBlocks says which destinations are blocked for a while: the
// SMS-pumping watch (package pumping) is one.
type PrefixBlocks interface {
	// Blocked reports whether sends on channel to the E.164 number are
	// blocked, and until when.
	Blocked(number string, channel verify.Channel) (until time.Time, blocked bool)
}

// refusal says why tenant may not send on ch to num now: the destination
// permissions (*verify.InputError, country_not_allowed), or a block of its
// prefix (an aggregate *verify.LimitError, 429 with Retry-After). nil: it may.
func (e *Engine) refusal(tenant string, ch verify.Channel, num verify.Number) error {
	if ch == verify.ChannelSMS && e.deps.NoSMS {
		return verify.Invalid(verify.ErrUnsupportedNumber, ErrNoSMSMessage)
	}
	if err := e.geo.decide(tenant, ch, num); err != nil {
		return err
	}
	if e.deps.Blocks == nil {
		return nil
	}
	if until, ok := e.deps.Blocks.Blocked(num.E164, ch); ok {
		return &verify.LimitError{Channel: ch, Policy: verify.PolicyPumping, RetryAfter: until.Sub(e.deps.Now()), Aggregate: true}
	}
	return nil
}

// permit applies the destination permissions and prefix blocks to route,
// the channel chosen for r. A refused channel gives way to the other when
// the gateway chose it (channel auto and no rule forced it) or the route
// already falls back to the other, and the other is not refused too; a
// refused fallback is dropped.
func (e *Engine) permit(r verify.RouteRequest, route verify.Route, gatewayChose, fixed bool) (verify.Route, error) {
	other := verify.ChannelSMS
	if route.Channel == verify.ChannelSMS {
		other = verify.ChannelCall
	}
	err := e.refusal(r.Tenant, route.Channel, r.Number)
	if err == nil {
		if route.Fallback != "" && e.refusal(r.Tenant, route.Fallback, r.Number) != nil {
			route.Fallback = ""
		}
		return route, nil
	}
	if (!gatewayChose && route.Fallback != other) || (other == verify.ChannelSMS && fixed) || e.refusal(r.Tenant, other, r.Number) != nil {
		return verify.Route{}, err
	}
	why := ReasonNotPermitted
	if le := (*verify.LimitError)(nil); errors.As(err, &le) {
		why = ReasonPumping
	}
	route.Reasons = append(route.Reasons, fmt.Sprintf("%s %s", route.Channel, why))
	route.Channel, route.Fallback = other, ""
	return route, nil
}

// validate reports every invalid setting, naming its key under route.geo.
func (c GeoConfig) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("route.geo.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	for i, s := range c.HighRisk {
		switch {
		case s == HighRiskNone && len(c.HighRisk) > 1:
			bad(fmt.Sprintf("high_risk[%d]", i), "%q turns the list off and must stand alone", s)
		case s == HighRiskNone, s == HighRiskDefault:
		case s == "*" || !validDest(s):
			bad(fmt.Sprintf("high_risk[%d]", i), "%q is not a country code such as KM, a prefix such as +882, %q or %q", s, HighRiskDefault, HighRiskNone)
		}
	}
	for i, p := range c.Permissions {
		key := fmt.Sprintf("permissions[%d]", i)
		if len(p.Allow) == 0 && len(p.Deny) == 0 {
			bad(key, "a permission needs allow or deny destinations")
		}
		for j, t := range p.Tenants {
			if t == "" {
				bad(fmt.Sprintf("%s.tenants[%d]", key, j), "must not be empty")
			}
		}
		for j, ch := range p.Channels {
			if ch != verify.ChannelSMS && ch != verify.ChannelCall {
				bad(fmt.Sprintf("%s.channels[%d]", key, j), "%q is not sms or call", ch)
			}
		}
		for _, l := range []struct {
			name  string
			dests []string
		}{{"allow", p.Allow}, {"deny", p.Deny}} {
			for j, d := range l.dests {
				if !validDest(d) {
					bad(fmt.Sprintf("%s.%s[%d]", key, l.name, j), "%q is not *, a country code such as KM or a prefix such as +882", d)
				}
			}
		}
	}
	return errs
}
