// Package twiliocompat is Verigate's Twilio Verify v2-compatible API: the
// Verification, VerificationCheck and Verification update endpoints under
// /v2/Services/{ServiceSid}, form-encoded in and Twilio-shaped JSON out,
// with Twilio's error bodies and codes and HTTP Basic auth, so that an
// identity server written against a Twilio Verify client works unchanged
// when pointed at the gateway. It is a front end on verify.Service's public
// operations, as the REST API v1 is, mounted on the same Echo server.
package twiliocompat

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/api"
	"github.com/verigate/verigate/verify"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the API (openapi.json), which
// the tests check against the routes and the answers.
func OpenAPI() []byte { return slices.Clone(openAPI) }

// Verifier is what the API needs of verify.Service.
type Verifier interface {
	Start(ctx context.Context, req verify.StartRequest) (*verify.Verification, error)
	Check(ctx context.Context, tenant, id, code string) (*verify.Verification, error)
	CheckByNumber(ctx context.Context, tenant, to, code string) (*verify.Verification, error)
	Get(ctx context.Context, tenant, id string) (*verify.Verification, error)
	Cancel(ctx context.Context, tenant, id string) (*verify.Verification, error)
	Approve(ctx context.Context, tenant, id string) (*verify.Verification, error)
	// Relay delivers a message the client wrote (the Messages API).
	Relay(ctx context.Context, req verify.MessageRequest) (*verify.Verification, error)
}

var _ Verifier = (*verify.Service)(nil)

// Config is the operator's configuration of the API, embedded by the
// config package under the key twilio_verify. The API is on when a tenant
// is listed.
type Config struct {
	Tenants []TenantConfig `yaml:"tenants"`
}

// TenantConfig lets one tenant of api_keys use the API.
type TenantConfig struct {
	// Name is the tenant, as api_keys names it. The HTTP Basic username is
	// the AccountSID, or this name; the password is one of its API keys.
	Name string `yaml:"name"`
	// AccountSID ("AC" and 32 hex digits), if set, is accepted as the
	// username and shown as account_sid; Twilio clients that insist on an
	// account SID get one.
	AccountSID string `yaml:"account_sid"`
	// Services are the tenant's Verify services, each with its settings.
	Services []ServiceConfig `yaml:"services"`
}

// ServiceConfig is one Verify service: its SID, as the client's
// configuration names it, and the settings its verifications get.
type ServiceConfig struct {
	SID string `yaml:"sid"` // "VA" and 32 hex digits
	// FriendlyName names the app in the SMS ("Your <name> verification
	// code is ..."); the gateway's sms.app_name when empty. At most 30
	// characters, as Twilio's.
	FriendlyName string `yaml:"friendly_name"`
	// CodeLength is the length of its codes; verify.code_length when 0.
	CodeLength int `yaml:"code_length"`
	// Channels are the channels enabled: sms, call; both when empty. A
	// start on another channel gets Twilio's 60223.
	Channels []string `yaml:"channels"`
}

// MaxFriendlyName is the longest friendly name, as Twilio's.
const MaxFriendlyName = 30

var (
	accountSIDPattern      = regexp.MustCompile(`^AC[0-9a-f]{32}$`)
	serviceSIDPattern      = regexp.MustCompile(`^VA[0-9a-f]{32}$`)
	verificationSIDPattern = regexp.MustCompile(`^VE[0-9a-f]{32}$`)
)

// Enabled reports whether any tenant is configured.
func (c Config) Enabled() bool { return len(c.Tenants) > 0 }

// Validate reports what is wrong, naming each key under prefix (the
// config package passes "twilio_verify").
func (c Config) Validate(prefix string) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	names, accounts, services := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, t := range c.Tenants {
		tk := fmt.Sprintf("%s.tenants[%d]", prefix, i)
		switch {
		case t.Name == "":
			bad(tk+".name", "must name a tenant of api_keys")
		case names[t.Name]:
			bad(tk+".name", "tenant %q is listed twice", t.Name)
		}
		names[t.Name] = true
		if t.AccountSID != "" {
			if !accountSIDPattern.MatchString(t.AccountSID) {
				bad(tk+".account_sid", "must be AC and 32 lower-case hex digits, not %q", t.AccountSID)
			} else if accounts[t.AccountSID] {
				bad(tk+".account_sid", "%s is another tenant's too", t.AccountSID)
			}
			accounts[t.AccountSID] = true
		}
		if len(t.Services) == 0 {
			bad(tk+".services", "list at least one service (sid: VA...)")
		}
		for j, s := range t.Services {
			sk := fmt.Sprintf("%s.services[%d]", tk, j)
			if !serviceSIDPattern.MatchString(s.SID) {
				bad(sk+".sid", "must be VA and 32 lower-case hex digits, not %q", s.SID)
			} else if services[s.SID] {
				bad(sk+".sid", "%s is listed twice", s.SID)
			}
			services[s.SID] = true
			if len(s.FriendlyName) > MaxFriendlyName || strings.ContainsAny(s.FriendlyName, "{}\r\n") {
				bad(sk+".friendly_name", "must be at most %d characters, without braces or line breaks", MaxFriendlyName)
			}
			if s.CodeLength != 0 && (s.CodeLength < verify.MinCodeLength || s.CodeLength > verify.MaxCodeLength) {
				bad(sk+".code_length", "must be 0 (verify.code_length) or %d to %d, not %d", verify.MinCodeLength, verify.MaxCodeLength, s.CodeLength)
			}
			for _, ch := range s.Channels {
				if ch != string(verify.ChannelSMS) && ch != string(verify.ChannelCall) {
					bad(sk+".channels", "must list sms or call, not %q", ch)
				}
			}
		}
	}
	// Both name and account SID sign a tenant in: a name that is another
	// tenant's account SID would take that tenant's place.
	for i, t := range c.Tenants {
		for j, u := range c.Tenants {
			if i != j && t.Name != "" && t.Name == u.AccountSID {
				bad(fmt.Sprintf("%s.tenants[%d].name", prefix, i), "%q is the account_sid of %s.tenants[%d] (%q): a username must name one tenant", t.Name, prefix, j, u.Name)
			}
		}
	}
	return errors.Join(errs...)
}

// AppNameChecker proves at start-up that a friendly name fits the SMS
// (prompts.Catalogue implements it).
type AppNameChecker interface {
	CheckAppName(app string, codeLength int) error
}

// Options are what New needs besides the configuration.
type Options struct {
	Verifier Verifier
	// APIKeys maps each API key to its tenant (api.ParseAPIKeys), as the
	// v1 API's; every configured tenant needs one.
	APIKeys map[string]string
	// CodeLength is the gateway's code length (verify.code_length), for
	// services that set none.
	CodeLength int
	// AppNames, if set, checks every friendly name (and each
	// CustomFriendlyName) against the SMS texts.
	AppNames AppNameChecker
	// PublicURL, if set, is the base of the url field; without it the
	// request's own scheme and host are used.
	PublicURL string
	Logger    *slog.Logger
}

// API serves the Twilio Verify-compatible endpoints.
type API struct {
	svc       Verifier
	keys      *api.Keyring
	tenants   map[string]*tenant // by name and by account SID
	services  map[string]*service
	appNames  AppNameChecker
	publicURL string
	codeLen   int
	log       *slog.Logger
}

type tenant struct {
	name       string
	accountSID string
}

type service struct {
	sid        string
	tenant     *tenant
	appName    string
	codeLength int
	channels   []verify.Channel
}

// New builds the API from cfg, which must validate.
func New(cfg Config, opts Options) (*API, error) {
	if opts.Verifier == nil {
		return nil, errors.New("twilio verify api: no verification service")
	}
	if err := cfg.Validate("twilio_verify"); err != nil {
		return nil, err
	}
	keys, err := api.NewKeyring(opts.APIKeys)
	if err != nil {
		return nil, err
	}
	if opts.CodeLength == 0 {
		opts.CodeLength = verify.DefaultCodeLength
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	a := &API{
		svc: opts.Verifier, keys: keys, tenants: map[string]*tenant{}, services: map[string]*service{},
		appNames: opts.AppNames, publicURL: strings.TrimSuffix(opts.PublicURL, "/"), codeLen: opts.CodeLength, log: opts.Logger,
	}
	hasKey := map[string]bool{}
	for _, t := range opts.APIKeys {
		hasKey[t] = true
	}
	for i, tc := range cfg.Tenants {
		if !hasKey[tc.Name] {
			return nil, fmt.Errorf("twilio_verify.tenants[%d].name: tenant %q has no API key in api_keys (VERIGATE_API_KEYS): it could never sign in", i, tc.Name)
		}
		t := &tenant{name: tc.Name, accountSID: tc.AccountSID}
		a.tenants[tc.Name] = t
		if tc.AccountSID != "" {
			a.tenants[tc.AccountSID] = t
		}
		for j, sc := range tc.Services {
			s := &service{sid: sc.SID, tenant: t, appName: sc.FriendlyName, codeLength: sc.CodeLength}
			if s.codeLength == 0 {
				s.codeLength = opts.CodeLength
			}
			for _, ch := range sc.Channels {
				s.channels = append(s.channels, verify.Channel(ch))
			}
			if len(s.channels) == 0 {
				s.channels = []verify.Channel{verify.ChannelSMS, verify.ChannelCall}
			}
			if s.appName != "" && a.appNames != nil {
				if err := a.appNames.CheckAppName(s.appName, s.codeLength); err != nil {
					return nil, fmt.Errorf("twilio_verify.tenants[%d].services[%d].friendly_name: %w", i, j, err)
				}
			}
			a.services[sc.SID] = s
		}
	}
	return a, nil
}

// Routes, as Echo names them.
const (
	RouteVerifications     = "/v2/Services/:service/Verifications"
	RouteVerification      = "/v2/Services/:service/Verifications/:sid"
	RouteVerificationCheck = "/v2/Services/:service/VerificationCheck"
)

// Register mounts the API under /v2 on e. Every answer under /v2, the
// unknown paths included, is Twilio-shaped.
func (a *API) Register(e *echo.Echo) {
	g := e.Group("/v2", a.twilioErrors)
	sub := func(route string) string { return strings.TrimPrefix(route, "/v2") }
	// Every method first, so that a known path asked with another method
	// answers 405 rather than the group's 404; the routes below replace
	// the methods they serve.
	for _, r := range []string{RouteVerifications, RouteVerification, RouteVerificationCheck} {
		g.Any(sub(r), func(echo.Context) error { return echo.ErrMethodNotAllowed })
	}
	g.POST(sub(RouteVerifications), a.authed(a.start))
	g.GET(sub(RouteVerification), a.authed(a.fetch))
	g.POST(sub(RouteVerification), a.authed(a.update))
	g.POST(sub(RouteVerificationCheck), a.authed(a.check))
}

func (s *service) enabled(ch verify.Channel) bool { return slices.Contains(s.channels, ch) }
