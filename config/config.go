// Package config loads Verigate's configuration: a YAML file, then
// environment variables (VERIGATE_<SECTION>_<KEY>, and VERIGATE_<KEY>_FILE
// to read a secret from a file), then validation that names the key at fault.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/verigate/verigate/api/twiliocompat"
	"github.com/verigate/verigate/callback"
	"github.com/verigate/verigate/directory"
	"github.com/verigate/verigate/entra"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/pumping"
	"github.com/verigate/verigate/radius"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/twilio"
	"github.com/verigate/verigate/verify"
)

// Config is the whole configuration. Every field's yaml key is also an
// environment variable: VERIGATE_ plus the key path in upper case joined
// by underscores (http.addr → VERIGATE_HTTP_ADDR). Fields tagged
// secret:"true" are never printed.
type Config struct {
	HTTP HTTP `yaml:"http"`
	// PublicURL is the gateway's base URL as providers reach it (Twilio webhooks).
	PublicURL string `yaml:"public_url"`
	// Secret is the server key for code HMACs; at least 16 bytes.
	Secret string `yaml:"secret" secret:"true"`
	// APIKeys are the tenants' bearer keys: "tenant1:key1,tenant2:key2".
	APIKeys string `yaml:"api_keys" secret:"true"`

	Verify Verify `yaml:"verify"`
	Limits Limits `yaml:"limits"`
	Redis  Redis  `yaml:"redis"`
	SMS    SMS    `yaml:"sms"`
	Log    Log    `yaml:"log"`

	// Callbacks sign and deliver status changes to the clients' callback_url.
	Callbacks callback.Config `yaml:"callbacks"`
	// Prompts selects the locale fallback and operator overrides of texts and audio.
	Prompts prompts.Config `yaml:"prompts"`
	// Twilio delivers SMS and calls through Twilio when account_sid is set.
	Twilio twilio.Config `yaml:"twilio"`
	// SIP places calls through a PBX or SIP trunk when a trunk is configured.
	SIP sip.Config `yaml:"sip"`
	// Route decides channel and provider per verification.
	Route route.Config `yaml:"route"`
	// TwilioVerify turns on the Twilio Verify v2-compatible API (/v2) for
	// the tenants it lists, each with its Verify services.
	TwilioVerify twiliocompat.Config `yaml:"twilio_verify"`
	// Directory finds people and their numbers (a file, LDAP, Microsoft
	// Graph) for the front ends that call someone by name (radius).
	Directory directory.Config `yaml:"directory"`
	// RADIUS is the RADIUS front end (docs/RADIUS.md), off while
	// radius.listen is empty; it finds numbers in Directory.
	RADIUS radius.Config `yaml:"radius"`
	// Entra is the Microsoft Entra ID external authentication method
	// (docs/ENTRA.md), off while entra.apps is empty; it finds numbers in
	// Directory.
	Entra entra.Config `yaml:"entra"`
	// Admin is the operators' listener: pprof and the metrics.
	Admin Admin `yaml:"admin"`
	// DrainTimeout bounds serve's drain on SIGTERM or SIGINT (docs/DRAIN.md):
	// calls in progress get until DrainTimeout less DrainReserve to end by
	// themselves; then the rest are hung up and the callbacks queued in
	// memory flushed. 0 hangs up at once. Kept, with the preStop hook and
	// the HTTP shutdown, below Kubernetes' terminationGracePeriodSeconds.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// DefaultDrainTimeout is drain_timeout's default: with the Kubernetes
// manifests' 5 s preStop hook and up to 4 s of HTTP shutdown it stays
// below their terminationGracePeriodSeconds of 30.
const DefaultDrainTimeout = 20 * time.Second

// DrainReserve is the part of a drain timeout kept for hanging up the
// calls still in progress and flushing callbacks: a quarter, at most 5 s.
func DrainReserve(timeout time.Duration) time.Duration {
	return min(timeout/4, 5*time.Second)
}

// Admin configures the admin listener, which serves net/http/pprof and
// /metrics to whoever reaches it, without a key: off unless Addr is set,
// and on a loopback address unless AllowRemote says otherwise.
type Admin struct {
	Addr string `yaml:"addr"` // host:port; empty: no admin listener
	// AllowRemote allows an Addr that is not a loopback address: the
	// profiles show the process's memory and code paths to the network.
	AllowRemote bool `yaml:"allow_remote"`
}

// HTTP configures the REST API listener.
type HTTP struct {
	Addr      string `yaml:"addr"`
	BodyLimit int64  `yaml:"body_limit"` // bytes per request body
	// MaxWait is the longest GET /v1/verifications/{id}?wait= waits; a
	// longer wait is cut to it.
	MaxWait time.Duration `yaml:"max_wait"`
	// MaxWaiters and MaxWaitersPerTenant bound the long-polls and event
	// streams open at once on this gateway, in all and per tenant.
	MaxWaiters          int `yaml:"max_waiters"`
	MaxWaitersPerTenant int `yaml:"max_waiters_per_tenant"`
}

// Verify configures the verification lifecycle.
type Verify struct {
	CodeLength    int           `yaml:"code_length"`
	Lifetime      time.Duration `yaml:"lifetime"`
	MaxAttempts   int           `yaml:"max_attempts"`
	FraudBlock    time.Duration `yaml:"fraud_block"`
	DefaultRegion string        `yaml:"default_region"` // ISO 3166 region for national-format numbers
}

// Limits configures the send limits, the failed-check lock and the
// SMS-pumping watch.
type Limits struct {
	// Policies replace ratelimit.DefaultPolicies as a whole when given:
	// a list that leaves out the aggregate caps has none.
	Policies          []ratelimit.Policy `yaml:"policies"`
	FailedChecks      int                `yaml:"failed_checks"`
	FailedCheckWindow time.Duration      `yaml:"failed_check_window"`
	// The long window of the failed-check lock: it bounds the odds of
	// guessing a code over a month (docs/SECURITY.md).
	FailedChecksLong      int           `yaml:"failed_checks_long"`
	FailedCheckWindowLong time.Duration `yaml:"failed_check_window_long"`
	// SMSPumping blocks destination prefixes whose SMS are not approved.
	SMSPumping pumping.Config `yaml:"sms_pumping"`
}

// Redis switches state and limits to Redis when URL is set.
type Redis struct {
	URL string `yaml:"url" secret:"true"` // may carry a password
	// AutoPipeline sends the commands of concurrent requests to Redis
	// together (store.AutoPipeline); on by default.
	AutoPipeline bool `yaml:"autopipeline"`
}

// SMS configures text messages.
type SMS struct {
	AppName string `yaml:"app_name"`
	// Provider is console, twilio or none (a gateway that only calls, such
	// as a PBX-only one); chosen from what is configured when empty.
	Provider string `yaml:"provider"`
}

// SMSProviderNone is sms.provider for a gateway that sends no SMS (calls
// only, e.g. through a PBX): SMS requests are refused as unsupported.
const SMSProviderNone = "none"

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Default returns the configuration with every default filled in.
func Default() Config {
	return Config{
		HTTP: HTTP{Addr: "127.0.0.1:8080", BodyLimit: 64 << 10,
			MaxWait: time.Minute, MaxWaiters: 1000, MaxWaitersPerTenant: 100},
		Redis: Redis{AutoPipeline: true},
		Verify: Verify{
			CodeLength: verify.DefaultCodeLength, Lifetime: verify.DefaultLifetime,
			MaxAttempts: verify.DefaultMaxAttempts, FraudBlock: verify.DefaultFraudBlock,
		},
		Limits: Limits{
			Policies: ratelimit.DefaultPolicies(), FailedChecks: 10, FailedCheckWindow: time.Hour,
			FailedChecksLong: 50, FailedCheckWindowLong: 30 * 24 * time.Hour,
			SMSPumping: pumping.DefaultConfig(),
		},
		SMS:          SMS{AppName: "Verigate"},
		SIP:          sip.DefaultConfig(),
		Log:          Log{Level: "info", Format: "text"},
		DrainTimeout: DefaultDrainTimeout,
	}
}

// Load reads the YAML file at path (none if path is empty) over the
// defaults, then the environment (lookup is os.LookupEnv in production),
// then validates.
func Load(path string, lookup func(string) (string, bool)) (Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		if err := decodeYAML(data, &cfg); err != nil {
			return cfg, &YAMLError{Path: path, Err: nameKeys(data, err)}
		}
	}
	// Every variable and setting at fault at once, not one per run.
	envErr := applyEnv(&cfg, lookup)
	return cfg, errors.Join(envErr, cfg.Validate())
}

func decodeYAML(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file is no settings, not an error.
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// Validate reports every invalid setting, each naming its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.HTTP.Addr == "" {
		bad("http.addr", "must not be empty")
	}
	if c.HTTP.BodyLimit < 1024 {
		bad("http.body_limit", "must be at least 1024 bytes, not %d", c.HTTP.BodyLimit)
	}
	if c.HTTP.MaxWait < time.Second || c.HTTP.MaxWait > 10*time.Minute {
		bad("http.max_wait", "must be between 1s and 10m, not %s", c.HTTP.MaxWait)
	}
	if c.HTTP.MaxWaiters < 1 {
		bad("http.max_waiters", "must be at least 1, not %d", c.HTTP.MaxWaiters)
	}
	if c.HTTP.MaxWaitersPerTenant < 1 {
		bad("http.max_waiters_per_tenant", "must be at least 1, not %d", c.HTTP.MaxWaitersPerTenant)
	}
	if c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://") {
		bad("public_url", "must start with http:// or https://")
	}
	if c.Secret != "" && len(c.Secret) < 16 {
		bad("secret", "must be at least 16 characters")
	}
	if c.Verify.CodeLength < verify.MinCodeLength || c.Verify.CodeLength > verify.MaxCodeLength {
		bad("verify.code_length", "must be between %d and %d, not %d", verify.MinCodeLength, verify.MaxCodeLength, c.Verify.CodeLength)
	}
	if c.Verify.Lifetime < time.Minute || c.Verify.Lifetime > 24*time.Hour {
		bad("verify.lifetime", "must be between 1m and 24h, not %s", c.Verify.Lifetime)
	}
	if c.Verify.MaxAttempts < 1 || c.Verify.MaxAttempts > 20 {
		bad("verify.max_attempts", "must be between 1 and 20, not %d", c.Verify.MaxAttempts)
	}
	if c.Verify.FraudBlock < 0 {
		bad("verify.fraud_block", "must not be negative")
	}
	if r := c.Verify.DefaultRegion; r != "" && (len(r) != 2 || strings.ToUpper(r) != r) {
		bad("verify.default_region", "must be an upper-case ISO 3166 region such as DE, not %q", r)
	}
	for i, p := range c.Limits.Policies {
		if err := p.Validate(); err != nil {
			bad(fmt.Sprintf("limits.policies[%d]", i), "%v", err)
		}
	}
	if c.Limits.FailedChecks < 0 || (c.Limits.FailedChecks > 0 && c.Limits.FailedCheckWindow <= 0) {
		bad("limits.failed_checks", "needs a positive limits.failed_check_window")
	}
	if c.Limits.FailedChecksLong < 0 || (c.Limits.FailedChecksLong > 0 && c.Limits.FailedCheckWindowLong <= 0) {
		bad("limits.failed_checks_long", "needs a positive limits.failed_check_window_long")
	}
	if p := c.Limits.SMSPumping; !p.Off {
		if p.Maturity == 0 {
			p.Maturity = c.Verify.Lifetime // what the gateway will use
		}
		if err := p.Validate("limits.sms_pumping"); err != nil {
			errs = append(errs, fmt.Errorf("config: %w", err))
		}
	}
	if err := c.Callbacks.Validate("callbacks"); err != nil {
		errs = append(errs, fmt.Errorf("config: %w", err))
	}
	switch c.SMS.Provider {
	case "", "console", "twilio", SMSProviderNone:
	default:
		bad("sms.provider", "must be console, twilio or none, not %q", c.SMS.Provider)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "must be text or json, not %q", c.Log.Format)
	}
	if len(c.SIP.Trunks) > 0 {
		errs = append(errs, prefixed(c.SIP.Validate()))
	}
	errs = append(errs, prefixed(c.Route.Validate()))
	errs = append(errs, prefixed(c.TwilioVerify.Validate("twilio_verify")))
	errs = append(errs, prefixed(c.Directory.Validate("directory")))
	errs = append(errs, prefixed(c.RADIUS.Validate("radius")))
	if c.RADIUS.Enabled() && !c.Directory.Enabled() {
		bad("radius.listen", "needs a directory (directory.static, directory.ldap or directory.graph) to find the numbers to call")
	}
	if c.Entra.Enabled() {
		errs = append(errs, prefixed(c.Entra.Validate("entra")))
		if !c.Directory.Enabled() {
			bad("entra.apps", "needs a directory (directory.static, directory.ldap or directory.graph) to find the numbers to call")
		}
		if c.PublicURL == "" {
			bad("entra.apps", "needs public_url: the issuer and the endpoints Entra is given are under it")
		}
	}
	if c.DrainTimeout < 0 || c.DrainTimeout > 10*time.Minute {
		bad("drain_timeout", "must be between 0s and 10m, not %s", c.DrainTimeout)
	}
	if err := c.Admin.validate(); err != nil {
		bad("admin.addr", "%v", err)
	}
	return errors.Join(errs...)
}

// prefixed marks a section's own validation errors as configuration errors.
func prefixed(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("config: %w", err)
}

// validate refuses an address that is not host:port, and one that is not
// loopback (an empty host listens on every interface) unless AllowRemote.
func (a Admin) validate() error {
	if a.Addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(a.Addr)
	if err != nil {
		return fmt.Errorf("must be host:port such as 127.0.0.1:6060: %w", err)
	}
	if a.AllowRemote {
		return nil
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address: pprof and metrics would be open to the network (set admin.allow_remote: true to mean it)", a.Addr)
}
