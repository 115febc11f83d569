package twiliocompat

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/verify"
)

// TestDescribe maps each condition Verigate shares with Twilio to Twilio's
// status and code.
func TestDescribe(t *testing.T) {
	e := echo.New()
	c := e.NewContext(httptest.NewRequest(http.MethodPost, "/v2/Services/VA1/VerificationCheck", nil), httptest.NewRecorder())
	for _, tt := range []struct {
		name         string
		err          error
		status, code int
		retry        bool
	}{
		{"invalid number", verify.Invalid(verify.ErrInvalidNumber, "too short"), 400, CodeInvalidParameter, false},
		{"unsupported number", verify.Invalid(verify.ErrUnsupportedNumber, "premium rate"), 400, CodeInvalidParameter, false},
		{"bad code", verify.Invalid(verify.ErrInvalidRequest, "code must be 4 to 10 digits"), 400, CodeInvalidParameter, false},
		{"country", verify.Invalid(verify.ErrCountryNotAllowed, "not allowed"), 403, CodeGeoPermissionBlocked, false},
		{"number's sends", &verify.LimitError{Channel: verify.ChannelSMS, Policy: "number_sms", RetryAfter: time.Minute}, 429, CodeMaxSendAttempts, true},
		{"user's calls", &verify.LimitError{Channel: verify.ChannelCall, Policy: "user_call", RetryAfter: time.Second}, 429, CodeMaxSendAttempts, true},
		{"tenant cap", &verify.LimitError{Channel: verify.ChannelSMS, Policy: "tenant", Aggregate: true, RetryAfter: time.Second}, 429, CodeTooManyRequests, true},
		{"sms pumping block", &verify.LimitError{Channel: verify.ChannelSMS, Policy: verify.PolicyPumping, Aggregate: true, RetryAfter: time.Hour}, 403, CodeDeliveryBlocked, true},
		{"fraud block", &verify.LimitError{Channel: verify.ChannelCall, Policy: verify.PolicyBlocked, RetryAfter: time.Hour}, 403, CodeDeliveryBlocked, true},
		{"failed-check lock", &verify.LimitError{Policy: "failed_checks", RetryAfter: time.Minute}, 429, CodeMaxCheckAttempts, true},
		{"checks used up", &verify.NotPendingError{Status: verify.StatusMaxAttemptsReached}, 429, CodeMaxCheckAttempts, false},
		{"approved", &verify.NotPendingError{Status: verify.StatusApproved}, 404, CodeNotFound, false},
		{"not found", verify.ErrNotFound, 404, CodeNotFound, false},
		{"busy", errors.Join(verify.ErrBusy, verify.ErrUnavailable), 503, CodeServiceUnavailable, true},
		{"draining", verify.ErrDraining, 503, CodeServiceUnavailable, true},
		{"store down", verify.ErrUnavailable, 503, CodeServiceUnavailable, false},
	} {
		got := describe(c, tt.err, "Code")
		if got.Status != tt.status || got.Code != tt.code || got.Message == "" || (got.RetryAfter > 0) != tt.retry {
			t.Errorf("%s: %d %d %q retry %d, want %d %d retry %v", tt.name, got.Status, got.Code, got.Message, got.RetryAfter, tt.status, tt.code, tt.retry)
		}
	}
	if got := describe(c, verify.Invalid(verify.ErrInvalidRequest, "code must be 4 to 10 digits"), "Code"); got.Message != "Invalid parameter `Code`: code must be 4 to 10 digits" {
		t.Errorf("message %q: want Twilio's wording naming the parameter", got.Message)
	}
	// The Service's refusal of a field is worded with Twilio's parameter.
	for field, want := range map[string]string{
		"locale":    "Invalid parameter `Locale`: \"en US\" is not a language tag",
		"client_ip": "Invalid parameter `DeviceIp`: \"en US\" is not",
	} {
		err := &verify.InputError{Err: verify.ErrInvalidRequest, Field: field, Msg: `"en US" is not a language tag or an address`}
		if got := describe(c, err, ""); got.Code != CodeInvalidParameter || !strings.HasPrefix(got.Message, want) {
			t.Errorf("%s: %d %q, want %q", field, got.Code, got.Message, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	const va, ac = "VA0123456789abcdef0123456789abcdef", "AC0123456789abcdef0123456789abcdef"
	ok := ServiceConfig{SID: va}
	for _, tt := range []struct {
		name string
		cfg  Config
		want string // in the error; "" for valid
	}{
		{"valid", Config{Tenants: []TenantConfig{{Name: "acme", AccountSID: ac, Services: []ServiceConfig{{SID: va, FriendlyName: "Acme", CodeLength: 8, Channels: []string{"sms"}}}}}}, ""},
		{"no name", Config{Tenants: []TenantConfig{{Services: []ServiceConfig{ok}}}}, "tenants[0].name"},
		{"bad account", Config{Tenants: []TenantConfig{{Name: "a", AccountSID: "AC12", Services: []ServiceConfig{ok}}}}, "account_sid"},
		{"no services", Config{Tenants: []TenantConfig{{Name: "a"}}}, "services"},
		{"bad sid", Config{Tenants: []TenantConfig{{Name: "a", Services: []ServiceConfig{{SID: "VA0123456789ABCDEF0123456789ABCDEF"}}}}}, "sid"},
		{"sid twice", Config{Tenants: []TenantConfig{{Name: "a", Services: []ServiceConfig{ok}}, {Name: "b", Services: []ServiceConfig{ok}}}}, "listed twice"},
		{"long name", Config{Tenants: []TenantConfig{{Name: "a", Services: []ServiceConfig{{SID: va, FriendlyName: strings.Repeat("x", 31)}}}}}, "friendly_name"},
		{"code length", Config{Tenants: []TenantConfig{{Name: "a", Services: []ServiceConfig{{SID: va, CodeLength: 12}}}}}, "code_length"},
		{"channel", Config{Tenants: []TenantConfig{{Name: "a", Services: []ServiceConfig{{SID: va, Channels: []string{"whatsapp"}}}}}}, "channels"},
		{"name is another's account", Config{Tenants: []TenantConfig{
			{Name: "acme", AccountSID: ac, Services: []ServiceConfig{ok}},
			{Name: ac, Services: []ServiceConfig{{SID: "VA0123456789abcdef0123456789abcde0"}}},
		}}, `tenants[1].name: "` + ac + `" is the account_sid of twilio_verify.tenants[0] ("acme")`},
		{"name is its own account", Config{Tenants: []TenantConfig{{Name: ac, AccountSID: ac, Services: []ServiceConfig{ok}}}}, ""},
	} {
		err := tt.cfg.Validate("twilio_verify")
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}
