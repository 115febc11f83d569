package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/verigate/verigate/internal/testbuf"

	twilio "github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
	verifyv2 "github.com/twilio/twilio-go/rest/verify/v2"

	"github.com/verigate/verigate/internal/redistest"
)

// Twilio identifiers of the test configuration.
const (
	tvAccount  = "AC0123456789abcdef0123456789abcdef"
	tvKey      = "AcmeVerifyKey0123456789"            // alphanumeric: twilio-go refuses any other password
	tvService  = "VA00000000000000000000000000000001" // sms only, friendly name, 8 digits
	tvService2 = "VA00000000000000000000000000000002" // sms and call, the gateway's defaults
	tvOther    = "VA00000000000000000000000000000003" // another tenant's
)

const tvConfig = `
route:
  deny_countries: [FR]
twilio_verify:
  tenants:
    - name: acme
      account_sid: ` + tvAccount + `
      services:
        - {sid: ` + tvService + `, friendly_name: Acme Bank, code_length: 8, channels: [sms]}
        - {sid: ` + tvService2 + `}
    - name: other
      services:
        - {sid: ` + tvOther + `}
`

// startTwilioVerifyGateway builds the gateway `serve --dev` would from
// tvConfig and serves it on loopback; the console SMS provider writes
// into the returned buffer.
func startTwilioVerifyGateway(t *testing.T, vars ...string) (base string, sms *testbuf.Buffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "verigate.yaml")
	if err := os.WriteFile(path, []byte(tvConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{"VERIGATE_API_KEYS": "acme:" + tvKey + ",other:OtherVerifyKey0123456789"}
	for i := 0; i+1 < len(vars); i += 2 {
		m[vars[i]] = vars[i+1]
	}
	env := lookupFrom(m)
	cfg, _, err := loadServeConfig(serveFlags{configPath: path, dev: true}, env, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sms = &testbuf.Buffer{}
	g, err := buildGateway(context.Background(), cfg, true, sms, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.handler)
	t.Cleanup(func() {
		srv.Close()
		if err := g.Close(); err != nil {
			t.Error(err)
		}
	})
	return srv.URL, sms
}

// rehost sends every request to base's scheme and host: twilio-go has no
// base-URL setting (the Verify host is a constant, and TWILIO_EDGE and
// TWILIO_REGION only change parts of twilio.com), so its HTTP client's
// transport is where it is pointed elsewhere.
type rehost struct{ base *url.URL }

func (r rehost) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host, out.Host = r.base.Scheme, r.base.Host, ""
	return http.DefaultTransport.RoundTrip(out)
}

// twilioVerify returns twilio-go's own Verify v2 client, unchanged apart
// from where it connects.
func twilioVerify(t *testing.T, base, user, pass string) *verifyv2.ApiService {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c := &client.Client{
		Credentials: client.NewCredentials(user, pass),
		HTTPClient:  &http.Client{Transport: rehost{u}},
	}
	c.SetAccountSid(user)
	return twilio.NewRestClientWithParams(twilio.ClientParams{Client: c}).VerifyV2
}

// restError is the Twilio error twilio-go returned, or fails the test.
func restError(t *testing.T, err error) *client.TwilioRestError {
	t.Helper()
	var te *client.TwilioRestError
	if !errors.As(err, &te) {
		t.Fatalf("want a Twilio error, got %v", err)
	}
	return te
}

func wantTwilioError(t *testing.T, what string, err error, status, code int) {
	t.Helper()
	te := restError(t, err)
	if te.Status != status || te.Code != code || te.Message == "" || te.MoreInfo != fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code) {
		t.Errorf("%s: got %d %d %q (%s), want %d %d", what, te.Status, te.Code, te.Message, te.MoreInfo, status, code)
	}
}

func str(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// smsCode waits for the console SMS to the number ending in tail and
// returns its body.
func smsBody(t *testing.T, sms *testbuf.Buffer, tail string) string {
	t.Helper()
	return waitFor(t, sms, regexp.MustCompile(`sms to=\+\d+\*+`+tail+` body=(.*)`))
}

func TestTwilioVerifyWithTwilioGo(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		base, sms := startTwilioVerifyGateway(t)
		twilioVerifyFlow(t, base, sms)
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel() // its own Redis server: nothing shared with the memory run
		srv := redistest.StartServer(t)
		base, sms := startTwilioVerifyGateway(t, "VERIGATE_REDIS_URL", srv.URL())
		twilioVerifyFlow(t, base, sms)
	})
}

// twilioVerifyFlow runs start, checks, fetch, cancel and approve through
// twilio-go against the gateway at base.
func twilioVerifyFlow(t *testing.T, base string, sms *testbuf.Buffer) {
	tv := twilioVerify(t, base, tvAccount, tvKey)

	// Start: Twilio's Verification, with the service's friendly name and
	// code length in the SMS.
	v, err := tv.CreateVerification(tvService, (&verifyv2.CreateVerificationParams{}).SetTo("+4915123456701").SetChannel("sms"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^VE[0-9a-f]{32}$`).MatchString(str(v.Sid)) || str(v.ServiceSid) != tvService || str(v.AccountSid) != tvAccount ||
		str(v.To) != "+4915123456701" || str(v.Channel) != "sms" || str(v.Status) != "pending" || v.Valid == nil || *v.Valid ||
		v.DateCreated == nil || v.DateUpdated == nil || v.SendCodeAttempts == nil || len(*v.SendCodeAttempts) != 1 ||
		str(v.Url) != base+"/v2/Services/"+tvService+"/Verifications/"+str(v.Sid) {
		t.Fatalf("created: %+v", v)
	}
	attempt, _ := (*v.SendCodeAttempts)[0].(map[string]any)
	if !regexp.MustCompile(`^VL[0-9a-f]{32}$`).MatchString(fmt.Sprint(attempt["attempt_sid"])) || attempt["channel"] != "sms" || attempt["time"] == "" {
		t.Errorf("send_code_attempts: %v", *v.SendCodeAttempts)
	}
	body := smsBody(t, sms, "701")
	code := regexp.MustCompile(`Your Acme Bank verification code is (\d{8})\.`).FindStringSubmatch(body)
	if code == nil {
		t.Fatalf("SMS %q: want the service's friendly name and an 8-digit code", body)
	}

	// A wrong code, checked by number, leaves it pending.
	wrong := "00000000"
	if code[1] == wrong {
		wrong = "11111111"
	}
	c, err := tv.CreateVerificationCheck(tvService, (&verifyv2.CreateVerificationCheckParams{}).SetTo("+4915123456701").SetCode(wrong))
	if err != nil {
		t.Fatal(err)
	}
	if str(c.Status) != "pending" || c.Valid == nil || *c.Valid || str(c.Sid) != str(v.Sid) {
		t.Fatalf("wrong code: %+v", c)
	}
	// The right one, checked by verification SID, approves.
	c, err = tv.CreateVerificationCheck(tvService, (&verifyv2.CreateVerificationCheckParams{}).SetVerificationSid(str(v.Sid)).SetCode(code[1]))
	if err != nil {
		t.Fatal(err)
	}
	// Checked by SID alone, the answer masks the number.
	if str(c.Status) != "approved" || c.Valid == nil || !*c.Valid || str(c.To) != "+49151*****701" || str(c.AccountSid) != tvAccount {
		t.Fatalf("right code: %+v", c)
	}
	// As on Twilio, an approved verification is gone, for Fetch and checks.
	_, err = tv.FetchVerification(tvService, str(v.Sid))
	wantTwilioError(t, "fetch after approval", err, 404, 20404)
	_, err = tv.CreateVerificationCheck(tvService, (&verifyv2.CreateVerificationCheckParams{}).SetVerificationSid(str(v.Sid)).SetCode(code[1]))
	wantTwilioError(t, "check after approval", err, 404, 20404)

	// Update: canceled, then approved without a code on another.
	v2, err := tv.CreateVerification(tvService2, (&verifyv2.CreateVerificationParams{}).SetTo("+4915123456702").SetChannel("sms").SetCustomFriendlyName("Acme Shop").SetLocale("de"))
	if err != nil {
		t.Fatal(err)
	}
	if body := smsBody(t, sms, "702"); !strings.Contains(body, "Acme Shop") || !regexp.MustCompile(`\b\d{6}\b`).MatchString(body) {
		t.Errorf("SMS %q: want CustomFriendlyName and the gateway's 6 digits", body)
	}
	u, err := tv.UpdateVerification(tvService2, str(v2.Sid), (&verifyv2.UpdateVerificationParams{}).SetStatus("canceled"))
	if err != nil {
		t.Fatal(err)
	}
	if str(u.Status) != "canceled" || *u.Valid {
		t.Fatalf("canceled: %+v", u)
	}
	_, err = tv.UpdateVerification(tvService2, str(v2.Sid), (&verifyv2.UpdateVerificationParams{}).SetStatus("approved"))
	wantTwilioError(t, "approve a canceled verification", err, 404, 20404)

	v3, err := tv.CreateVerification(tvService2, (&verifyv2.CreateVerificationParams{}).SetTo("+4915123456703").SetChannel("sms"))
	if err != nil {
		t.Fatal(err)
	}
	u, err = tv.UpdateVerification(tvService2, str(v3.Sid), (&verifyv2.UpdateVerificationParams{}).SetStatus("approved"))
	if err != nil {
		t.Fatal(err)
	}
	if str(u.Status) != "approved" || !*u.Valid {
		t.Fatalf("approved by update: %+v", u)
	}
	_, err = tv.FetchVerification(tvService2, str(v3.Sid))
	wantTwilioError(t, "fetch after approval by update", err, 404, 20404)
}

// TestTwilioVerifyErrors checks Twilio's codes for the conditions Verigate
// shares with Twilio, through twilio-go.
func TestTwilioVerifyErrors(t *testing.T) {
	base, sms := startTwilioVerifyGateway(t)
	tv := twilioVerify(t, base, tvAccount, tvKey)
	start := func(service, to, channel string) (*verifyv2.VerifyV2Verification, error) {
		return tv.CreateVerification(service, (&verifyv2.CreateVerificationParams{}).SetTo(to).SetChannel(channel))
	}

	for _, c := range []struct {
		name         string
		user, pass   string
		status, code int
	}{
		{"wrong key", tvAccount, "WrongKey0123456789abcdef", 401, 20003},
		{"unknown account", "AC0123456789abcdef0123456789abcdee", tvKey, 401, 20003},
		{"another tenant's key", tvAccount, "OtherVerifyKey0123456789", 401, 20003},
	} {
		_, err := twilioVerify(t, base, c.user, c.pass).CreateVerification(tvService, (&verifyv2.CreateVerificationParams{}).SetTo("+4915123456710").SetChannel("sms"))
		wantTwilioError(t, c.name, err, c.status, c.code)
	}
	// The tenant name serves as the username too.
	if _, err := twilioVerify(t, base, "acme", tvKey).CreateVerification(tvService, (&verifyv2.CreateVerificationParams{}).SetTo("+4915123456711").SetChannel("sms")); err != nil {
		t.Errorf("tenant name as username: %v", err)
	}

	_, err := start("VA0000000000000000000000000000000f", "+4915123456712", "sms")
	wantTwilioError(t, "unknown service", err, 404, 20404)
	_, err = start(tvOther, "+4915123456712", "sms")
	wantTwilioError(t, "another tenant's service", err, 404, 20404)
	_, err = start(tvService, "+4915123456712", "call")
	wantTwilioError(t, "call on an sms-only service", err, 400, 60223)
	_, err = start(tvService2, "+4915123456712", "whatsapp")
	wantTwilioError(t, "whatsapp", err, 400, 60223)
	_, err = start(tvService2, "+4915123456712", "pigeon")
	wantTwilioError(t, "unknown channel", err, 400, 60200)
	_, err = start(tvService2, "+49151", "sms")
	wantTwilioError(t, "invalid number", err, 400, 60200)
	_, err = start(tvService2, "+33612345678", "sms")
	wantTwilioError(t, "denied country", err, 403, 60605)
	_, err = tv.CreateVerification(tvService2, (&verifyv2.CreateVerificationParams{}).SetTo("+4915123456712").SetChannel("sms").SetCustomCode("123456"))
	wantTwilioError(t, "custom code", err, 400, 60204)
	_, err = tv.FetchVerification(tvService2, "VE0123456789abcdef0123456789abcdef")
	wantTwilioError(t, "unknown verification", err, 404, 20404)
	_, err = tv.CreateVerificationCheck(tvService2, (&verifyv2.CreateVerificationCheckParams{}).SetTo("+4915123456713").SetCode("123456"))
	wantTwilioError(t, "check with nothing pending", err, 404, 20404)
	_, err = tv.CreateVerificationCheck(tvService2, (&verifyv2.CreateVerificationCheckParams{}).SetTo("+4915123456713").SetCode("12"))
	wantTwilioError(t, "short code", err, 400, 60200)

	// Max send attempts: the number's 5 SMS per 10 minutes (a start and
	// four resends of the same verification), then 60203.
	for i := range 5 {
		if _, err := start(tvService2, "+4915123456714", "sms"); err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
	}
	_, err = start(tvService2, "+4915123456714", "sms")
	wantTwilioError(t, "sixth send", err, 429, 60203)
	if te := restError(t, err); !strings.Contains(te.Message, "You've reached our limit on text verification codes.") {
		t.Errorf("sixth send: %q, want Verigate's limit message", te.Message)
	}

	// Max check attempts: the fifth wrong check ends it, the next is 60202.
	v, err := start(tvService2, "+4915123456715", "sms")
	if err != nil {
		t.Fatal(err)
	}
	code := regexp.MustCompile(`(\d{6})`).FindString(smsBody(t, sms, "715"))
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for i := range 5 {
		c, err := tv.CreateVerificationCheck(tvService2, (&verifyv2.CreateVerificationCheckParams{}).SetVerificationSid(str(v.Sid)).SetCode(wrong))
		if err != nil {
			t.Fatalf("check %d: %v", i+1, err)
		}
		if want := map[bool]string{true: "max_attempts_reached", false: "pending"}[i == 4]; str(c.Status) != want {
			t.Fatalf("check %d: %s, want %s", i+1, str(c.Status), want)
		}
	}
	_, err = tv.CreateVerificationCheck(tvService2, (&verifyv2.CreateVerificationCheckParams{}).SetVerificationSid(str(v.Sid)).SetCode(code))
	wantTwilioError(t, "check after max attempts", err, 429, 60202)

	_, err = tv.UpdateVerification(tvService2, str(v.Sid), (&verifyv2.UpdateVerificationParams{}).SetStatus("deleted"))
	wantTwilioError(t, "update to another status", err, 400, 60200)
}

// TestTwilioVerifyBounds: what is too large is refused before it is
// parsed, in Twilio's shape; unknown paths and methods under /v2 answer
// in Twilio's shape too.
func TestTwilioVerifyBounds(t *testing.T) {
	base, _ := startTwilioVerifyGateway(t)
	post := func(path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(tvAccount, tvKey)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	verifications := "/v2/Services/" + tvService2 + "/Verifications"
	for _, c := range []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"oversize body", verifications, "To=%2B4915123456720&Channel=sms&Tags=" + strings.Repeat("x", 17<<10), 413, `"code":60200`},
		{"too many params", verifications, "To=%2B4915123456720&Channel=sms" + strings.Repeat("&x=1", 64), 413, `"code":60200`},
		{"repeated param", verifications, "To=%2B4915123456720&To=%2B4915123456721&Channel=sms", 400, `"code":60200`},
		{"unknown path", "/v2/Services/" + tvService2 + "/Nothing", "", 404, `"code":20404`},
	} {
		status, body := post(c.path, c.body)
		if status != c.status || !strings.Contains(body, c.code) || !strings.Contains(body, `"more_info":"https://www.twilio.com/docs/errors/`) {
			t.Errorf("%s: %d %s, want %d %s", c.name, status, body, c.status, c.code)
		}
	}
	res, err := http.Get(base + "/v2/Services/" + tvService2 + "/VerificationCheck")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 405 || !strings.Contains(string(b), `"code":20004`) {
		t.Errorf("GET of a POST-only path: %d %s, want 405 20004", res.StatusCode, b)
	}

	// Wrong credentials: 401 with Twilio's 20003 body and a Basic challenge.
	req, _ := http.NewRequest(http.MethodGet, base+verifications+"/VE0123456789abcdef0123456789abcdef", nil)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 401 || !strings.Contains(string(b), `"code":20003`) || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("no credentials: %d %s %q", res.StatusCode, b, res.Header.Get("WWW-Authenticate"))
	}
}
