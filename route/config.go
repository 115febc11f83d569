package route

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/verigate/verigate/verify"
)

// Defaults for Config fields left zero.
const (
	DefaultLookupTimeout     = 2 * time.Second
	DefaultLookupTTL         = 24 * time.Hour
	DefaultUndeliveredWindow = 24 * time.Hour
)

// Config is the routing configuration, the `route:` section of the YAML
// file. Lists of rules come only from YAML; scalar keys can also be set
// from the environment (VERIGATE_ROUTE_GEOIP_DB, VERIGATE_ROUTE_LOOKUP_URL...).
type Config struct {
	// Rules are tried in order; the first that matches decides.
	Rules []Rule `yaml:"rules"`
	// AllowCountries, when not empty, are the only destination countries
	// (ISO 3166-1 alpha-2) verifications go to. DenyCountries are never
	// reached. Both apply before any rule.
	AllowCountries []string `yaml:"allow_countries"`
	DenyCountries  []string `yaml:"deny_countries"`
	// Geo are the destination permissions per tenant and channel, and the
	// high-risk destinations refused unless enabled. They apply after the
	// channel is chosen.
	Geo GeoConfig `yaml:"geo"`
	// GeoIPDB is the path of a MaxMind MMDB country database (GeoLite2-Country
	// or compatible). The client IP's country differing from the number's
	// is a roaming signal. Empty: no GeoIP.
	GeoIPDB string `yaml:"geoip_db"`
	// Carrier adds carrier names to classified numbers (loads ~1 MiB of
	// phonenumbers data on first use).
	Carrier bool `yaml:"carrier"`
	// CacheSize bounds the cache of classified numbers; DefaultCacheSize if 0.
	CacheSize int `yaml:"cache_size"`

	Lookup   LookupConfig   `yaml:"lookup"`
	History  HistoryConfig  `yaml:"history"`
	Fallback FallbackConfig `yaml:"fallback"`
}

// LookupConfig configures the number lookup (HLR) provider.
type LookupConfig struct {
	// Provider is "" (none), "http" (a generic HTTP HLR API) or "twilio"
	// (Twilio Lookup v2, line type intelligence).
	Provider string `yaml:"provider"`
	// URL: for http, a template with {number} (E.164, escaped), e.g.
	// https://hlr.example/v1/lookup?msisdn={number}; for twilio, the base URL,
	// https://lookups.twilio.com when empty.
	URL string `yaml:"url"`
	// Username and Password are sent as HTTP Basic auth (for twilio, the
	// Account SID or API key and its secret).
	Username string `yaml:"username"`
	Password string `yaml:"password" secret:"true"`
	// Header and Token send a token in a header instead (http only),
	// e.g. Authorization and "Bearer abc".
	Header string `yaml:"header"`
	Token  string `yaml:"token" secret:"true"`
	// RoamingField, PortedField, NetworkField, CountryField and
	// LineTypeField are dot paths into the http provider's JSON answer,
	// e.g. "result.roaming".
	RoamingField  string `yaml:"roaming_field"`
	PortedField   string `yaml:"ported_field"`
	NetworkField  string `yaml:"network_field"`
	CountryField  string `yaml:"country_field"`
	LineTypeField string `yaml:"line_type_field"`
	// Timeout bounds one lookup; DefaultLookupTimeout if 0. A lookup that
	// fails or times out does not block the verification.
	Timeout time.Duration `yaml:"timeout"`
	// TTL is how long a lookup result is cached; DefaultLookupTTL if 0.
	TTL time.Duration `yaml:"ttl"`
	// Always looks numbers up for every request; by default only when the
	// channel is auto (the only time the answer can change the channel)
	// or a rule matches on roaming.
	Always bool `yaml:"always"`
}

// HistoryConfig configures the delivery-history signal.
type HistoryConfig struct {
	// UndeliveredWindow is how long an undelivered SMS to a number makes
	// `auto` call it first; DefaultUndeliveredWindow if 0, off if negative.
	UndeliveredWindow time.Duration `yaml:"undelivered_window"`
}

// window is UndeliveredWindow with its default; not positive means off.
func (c HistoryConfig) window() time.Duration {
	if c.UndeliveredWindow == 0 {
		return DefaultUndeliveredWindow
	}
	return c.UndeliveredWindow
}

// FallbackConfig configures the fallback between channels.
type FallbackConfig struct {
	// Off stops the default fallback (SMS to call, call to SMS) that
	// requests with channel auto get. Rules may still set one.
	Off bool `yaml:"off"`
	// SMSTimeout: an SMS with no delivery report this long after it was
	// sent counts as undelivered (0: only an undelivered report counts).
	// Needs a provider that reports delivery (Twilio does, console does not).
	SMSTimeout time.Duration `yaml:"sms_timeout"`
	// CheckEvery is how often the SMS timeout is checked;
	// sms.DefaultCheckEvery if 0.
	CheckEvery time.Duration `yaml:"check_every"`
}

// Rule is one routing rule: when Match matches a request, Action decides.
type Rule struct {
	Name   string `yaml:"name"`
	Match  Match  `yaml:"match"`
	Action Action `yaml:"action"`
}

// Match says which requests a rule is for. Empty fields match everything;
// all set fields must match.
type Match struct {
	// Countries of the number (ISO 3166-1 alpha-2). An entry starting with
	// ! excludes that country; if any entry without ! is given, the number's
	// country must be one of them.
	Countries []string `yaml:"countries"`
	// NotCountries excludes countries, like "!XX" entries in Countries.
	NotCountries []string `yaml:"not_countries"`
	// LineTypes of the number, as classified (and refined by a lookup).
	LineTypes []string `yaml:"line_types"`
	// Roaming, when set, matches the combined roaming decision.
	Roaming *bool `yaml:"roaming"`
	// Channels the client asked for: sms, call, auto.
	Channels []verify.Channel `yaml:"channels"`
	// Tenants the request comes from.
	Tenants []string `yaml:"tenants"`
}

// Action is what a matching rule decides. Empty fields keep what the
// built-in defaults would choose.
type Action struct {
	// Channel: sms or call; auto (or empty) leaves the choice to the defaults.
	Channel verify.Channel `yaml:"channel"`
	// Provider names the SMS or call provider, e.g. twilio, console, sip.
	Provider string `yaml:"provider"`
	// Trunk names the SIP trunk a call goes out on.
	Trunk string `yaml:"trunk"`
	// SenderID is the SMS sender ID, or the caller ID of a call.
	SenderID string `yaml:"sender_id"`
	// Fallback is the channel tried when this one fails: sms, call, or
	// none to turn the default fallback off.
	Fallback string `yaml:"fallback"`
}

// FallbackNone in Action.Fallback turns the fallback off.
const FallbackNone = "none"

// Validate reports every invalid setting, naming its key under route.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("route.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	for i, cc := range c.AllowCountries {
		if !isCountry(cc) {
			bad(fmt.Sprintf("allow_countries[%d]", i), "%q is not an upper-case ISO 3166 country code such as DE", cc)
		}
	}
	for i, cc := range c.DenyCountries {
		if !isCountry(cc) {
			bad(fmt.Sprintf("deny_countries[%d]", i), "%q is not an upper-case ISO 3166 country code such as DE", cc)
		}
	}
	errs = append(errs, c.Geo.validate()...)
	names := map[string]bool{}
	for i, r := range c.Rules {
		key := fmt.Sprintf("rules[%d]", i)
		if r.Name == "" {
			bad(key+".name", "every rule needs a name (it is shown in the route's reasons)")
		} else if names[r.Name] {
			bad(key+".name", "%q is used by an earlier rule", r.Name)
		}
		names[r.Name] = true
		for j, cc := range r.Match.Countries {
			if !isCountry(strings.TrimPrefix(cc, "!")) {
				bad(fmt.Sprintf("%s.match.countries[%d]", key, j), "%q is not a country code such as DE or !DE", cc)
			}
		}
		for j, cc := range r.Match.NotCountries {
			if !isCountry(cc) {
				bad(fmt.Sprintf("%s.match.not_countries[%d]", key, j), "%q is not a country code such as DE", cc)
			}
		}
		for j, lt := range r.Match.LineTypes {
			if !slices.Contains(LineTypes(), lt) {
				bad(fmt.Sprintf("%s.match.line_types[%d]", key, j), "%q is not one of %s", lt, strings.Join(LineTypes(), ", "))
			}
		}
		for j, ch := range r.Match.Channels {
			if !ch.Valid() {
				bad(fmt.Sprintf("%s.match.channels[%d]", key, j), "%q is not sms, call or auto", ch)
			}
		}
		if ch := r.Action.Channel; ch != "" && !ch.Valid() {
			bad(key+".action.channel", "%q is not sms, call or auto", ch)
		}
		switch r.Action.Fallback {
		case "", FallbackNone, string(verify.ChannelSMS), string(verify.ChannelCall):
		default:
			bad(key+".action.fallback", "%q is not sms, call or none", r.Action.Fallback)
		}
	}
	switch c.Lookup.Provider {
	case "":
	case "http":
		if !strings.Contains(c.Lookup.URL, "{number}") {
			bad("lookup.url", "the http lookup needs a URL template with {number}")
		}
		if c.Lookup.RoamingField == "" && c.Lookup.PortedField == "" && c.Lookup.NetworkField == "" && c.Lookup.LineTypeField == "" {
			bad("lookup.roaming_field", "the http lookup needs at least one of roaming_field, ported_field, network_field, line_type_field")
		}
	case "twilio":
		if c.Lookup.Username == "" || c.Lookup.Password == "" {
			bad("lookup.username", "the twilio lookup needs username (Account SID or API key) and password")
		}
	default:
		bad("lookup.provider", "must be http or twilio, not %q", c.Lookup.Provider)
	}
	if c.Lookup.Timeout < 0 || c.Lookup.TTL < 0 {
		bad("lookup.timeout", "timeout and ttl must not be negative")
	}
	if c.Fallback.SMSTimeout < 0 || c.Fallback.CheckEvery < 0 {
		bad("fallback.sms_timeout", "sms_timeout and check_every must not be negative")
	}
	if c.CacheSize < 0 {
		bad("cache_size", "must not be negative")
	}
	return errors.Join(errs...)
}

func isCountry(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}
