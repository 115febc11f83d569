package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/api"
	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/verify"
)

const deMobile = "+4915123456789"

func TestSMSFlow(t *testing.T) {
	en := newEnv(t, nil)
	id, res := en.start(keyAcme, `{"to":"+49 151 23456789","channel":"sms"}`)
	if res.Code != http.StatusCreated {
		t.Fatalf("start = %d, want 201", res.Code)
	}
	v := res.json(t)
	want := map[string]any{"status": "pending", "channel": "sms", "to": "+49151*****789", "attempts_left": 5.0, "sends": 1.0, "locale": "en"}
	for k, w := range want {
		if v[k] != w {
			t.Errorf("start %s = %v, want %v", k, v[k], w)
		}
	}
	if !strings.HasPrefix(id, "VE") || len(id) != 34 {
		t.Errorf("id %q: want VE and 32 hex digits", id)
	}
	if _, ok := v["call_mode"]; ok {
		t.Errorf("an SMS verification shows call_mode %v", v["call_mode"])
	}
	if strings.Contains(string(res.Body), "15123456789") {
		t.Errorf("response carries the full number: %s", res.Body)
	}
	code := en.svc.Sender.LastCode(t, deMobile)
	wrong := fmt.Sprintf("%06d", (atoi(code)+1)%1000000)

	steps := []struct {
		code       string
		wantCode   int
		wantStatus string
		wantLeft   float64
	}{
		{wrong, 200, "pending", 4},
		{code, 200, "approved", 3}, // the right code is an attempt too
	}
	for _, s := range steps {
		r := en.do("POST", "/v1/verifications/"+id+"/check", keyAcme, `{"code":"`+s.code+`"}`)
		m := r.json(t)
		if r.Code != s.wantCode || m["status"] != s.wantStatus || m["attempts_left"] != s.wantLeft || m["id"] != id {
			t.Fatalf("check = %d %s, want %d status %s attempts_left %v", r.Code, r.Body, s.wantCode, s.wantStatus, s.wantLeft)
		}
	}
	// The same code again: the verification has ended.
	r := en.do("POST", "/v1/verifications/"+id+"/check", keyAcme, `{"code":"`+code+`"}`)
	if r.Code != http.StatusConflict || r.errCode(t) != "not_pending" || r.errField(t, "status") != "approved" {
		t.Fatalf("second check = %d %s, want 409 not_pending with status approved", r.Code, r.Body)
	}
	g := en.do("GET", "/v1/verifications/"+id, keyAcme, "").json(t)
	types := eventTypes(g)
	if !slices.Equal(types, []string{"created", "check_failed", "approved"}) {
		t.Errorf("events = %v", types)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func eventTypes(v map[string]any) []string {
	var out []string
	evs, _ := v["events"].([]any)
	for _, e := range evs {
		out = append(out, e.(map[string]any)["type"].(string))
	}
	return out
}

func TestCheckByNumber(t *testing.T) {
	en := newEnv(t, nil, verifytest.WithDefaultRegion("DE"))
	id, _ := en.start(keyAcme, `{"to":"`+deMobile+`"}`)
	code := en.svc.Sender.LastCode(t, deMobile)
	cases := []struct {
		name     string
		key      string
		body     string
		wantCode int
		wantErr  string
		wantStat string
	}{
		{"other tenant", keyGlobex, `{"to":"` + deMobile + `","code":"` + code + `"}`, 404, "not_found", ""},
		{"unknown number", keyAcme, `{"to":"+4915199999999","code":"` + code + `"}`, 404, "not_found", ""},
		{"invalid number", keyAcme, `{"to":"+49 12","code":"` + code + `"}`, 400, "invalid_number", ""},
		{"malformed code", keyAcme, `{"to":"` + deMobile + `","code":"12-34"}`, 400, "invalid_request", ""},
		{"national form approves", keyAcme, `{"to":"0151 23456789","code":"` + code + `"}`, 200, "", "approved"},
		{"nothing pending any more", keyAcme, `{"to":"` + deMobile + `","code":"` + code + `"}`, 404, "not_found", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := en.do("POST", "/v1/verifications/check", c.key, c.body)
			if r.Code != c.wantCode {
				t.Fatalf("= %d %s, want %d", r.Code, r.Body, c.wantCode)
			}
			if c.wantErr != "" && r.errCode(t) != c.wantErr {
				t.Fatalf("error code %q, want %q", r.errCode(t), c.wantErr)
			}
			if c.wantStat != "" {
				if m := r.json(t); m["status"] != c.wantStat || m["id"] != id {
					t.Fatalf("= %s, want status %s id %s", r.Body, c.wantStat, id)
				}
			}
		})
	}
}

func TestTenantIsolation(t *testing.T) {
	en := newEnv(t, nil)
	id, _ := en.start(keyAcme, `{"to":"`+deMobile+`"}`)
	code := en.svc.Sender.LastCode(t, deMobile)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/verifications/" + id, ""},
		{"POST", "/v1/verifications/" + id + "/check", `{"code":"` + code + `"}`},
		{"POST", "/v1/verifications/" + id + "/cancel", ""},
		{"POST", "/v1/verifications/check", `{"to":"` + deMobile + `","code":"` + code + `"}`},
	} {
		r := en.do(c.method, c.path, keyGlobex, c.body)
		if r.Code != http.StatusNotFound || r.errCode(t) != "not_found" {
			t.Errorf("globex %s %s = %d %s, want 404 not_found", c.method, c.path, r.Code, r.Body)
		}
	}
	// acme's verification is untouched: still pending with every attempt.
	if m := en.do("GET", "/v1/verifications/"+id, keyAcme, "").json(t); m["status"] != "pending" || m["attempts_left"] != 5.0 {
		t.Fatalf("after globex's tries acme sees %v", m)
	}
	// globex starting for the same number gets a verification of its own.
	gid, r := en.start(keyGlobex, `{"to":"`+deMobile+`"}`)
	if gid == id || r.Code != http.StatusCreated {
		t.Fatalf("globex start = %d id %s; want 201 and a new id", r.Code, gid)
	}
}

func TestGetAndCancel(t *testing.T) {
	en := newEnv(t, nil)
	id, _ := en.start(keyAcme, `{"to":"`+deMobile+`"}`)
	code := en.svc.Sender.LastCode(t, deMobile)
	cases := []struct {
		name, method, path, body string
		wantCode                 int
		wantErr, wantStatus      string
	}{
		{"get", "GET", "/v1/verifications/" + id, "", 200, "", "pending"},
		{"get unknown", "GET", "/v1/verifications/VE00000000000000000000000000000000", "", 404, "not_found", ""},
		{"cancel unknown", "POST", "/v1/verifications/VEnope/cancel", "", 404, "not_found", ""},
		{"cancel", "POST", "/v1/verifications/" + id + "/cancel", "", 200, "", "canceled"},
		{"cancel again", "POST", "/v1/verifications/" + id + "/cancel", "", 409, "not_pending", ""},
		{"check canceled", "POST", "/v1/verifications/" + id + "/check", `{"code":"` + code + `"}`, 409, "not_pending", ""},
		{"get canceled", "GET", "/v1/verifications/" + id, "", 200, "", "canceled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := en.do(c.method, c.path, keyAcme, c.body)
			if r.Code != c.wantCode {
				t.Fatalf("= %d %s, want %d", r.Code, r.Body, c.wantCode)
			}
			if c.wantErr != "" && r.errCode(t) != c.wantErr {
				t.Fatalf("error %s, want %s", r.Body, c.wantErr)
			}
			if c.wantErr == "not_pending" && r.errField(t, "status") != "canceled" {
				t.Fatalf("not_pending without status canceled: %s", r.Body)
			}
			if c.wantStatus != "" && r.json(t)["status"] != c.wantStatus {
				t.Fatalf("status %v, want %s", r.json(t)["status"], c.wantStatus)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	en := newEnv(t, nil)
	cases := []struct {
		name, auth string
	}{
		{"no header", ""},
		{"not bearer", "Basic " + keyAcme},
		{"no key", "Bearer "},
		{"wrong key", "Bearer not-a-key-0123456789abc"},
		{"prefix of a key", "Bearer " + keyAcme[:10]},
		{"key plus extra", "Bearer " + keyAcme + "x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hs []header
			if c.auth != "" {
				hs = append(hs, header{"Authorization", c.auth})
			}
			r := en.do("POST", "/v1/verifications", "", `{"to":"`+deMobile+`"}`, hs...)
			if r.Code != http.StatusUnauthorized || r.errCode(t) != "unauthorized" || r.Header.Get("WWW-Authenticate") == "" {
				t.Fatalf("= %d %v %s, want 401 unauthorized with WWW-Authenticate", r.Code, r.Header, r.Body)
			}
		})
	}
	if n := len(en.svc.Sender.Messages()); n != 0 {
		t.Fatalf("%d messages sent without a valid key", n)
	}
	t.Run("lower-case scheme", func(t *testing.T) {
		r := en.do("GET", "/v1/verifications/VEx", "", "", header{"Authorization", "bearer " + keyAcme})
		if r.Code != http.StatusNotFound {
			t.Fatalf("= %d %s, want 404 (authenticated)", r.Code, r.Body)
		}
	})
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/v1/openapi.json"} {
		if r := en.do("GET", path, "", ""); r.Code != http.StatusOK {
			t.Errorf("GET %s without a key = %d, want 200", path, r.Code)
		}
	}
}

func TestResend(t *testing.T) {
	en := newEnv(t, nil)
	id, _ := en.start(keyAcme, `{"to":"`+deMobile+`"}`)
	first := en.svc.Sender.LastCode(t, deMobile)

	en.svc.Clock.Add(time.Minute)
	id2, r := en.start(keyAcme, `{"to":"`+deMobile+`"}`)
	m := r.json(t)
	if r.Code != http.StatusOK || id2 != id || m["sends"] != 2.0 {
		t.Fatalf("resend = %d id %s sends %v; want 200, the same id, 2 sends", r.Code, id2, m["sends"])
	}
	if second := en.svc.Sender.LastCode(t, deMobile); len(en.svc.Sender.Messages()) != 2 || second == "" {
		t.Fatalf("resend sent %d messages", len(en.svc.Sender.Messages()))
	}

	// Switch to a call in code mode: same verification, now a call.
	_, r = en.start(keyAcme, `{"to":"`+deMobile+`","channel":"call","call_mode":"code"}`)
	m = r.json(t)
	if m["id"] != id || m["channel"] != "call" || m["call_mode"] != "code" || m["sends"] != 3.0 {
		t.Fatalf("switch to call = %s", r.Body)
	}
	calls := en.svc.Caller.Calls()
	if len(calls) != 1 || calls[0].VerificationID != id || calls[0].Mode != verify.CallModeCode || len(calls[0].Code) != 6 {
		t.Fatalf("calls = %+v", calls)
	}
	if got := eventTypes(en.do("GET", "/v1/verifications/"+id, keyAcme, "").json(t)); !slices.Equal(got, []string{"created", "resent", "resent"}) {
		t.Fatalf("events = %v", got)
	}

	// The first code, sent before both resends, still approves.
	r = en.do("POST", "/v1/verifications/"+id+"/check", keyAcme, `{"code":"`+first+`"}`)
	if r.json(t)["status"] != "approved" {
		t.Fatalf("earliest code = %s, want approved", r.Body)
	}

	// A start after the verification ended (approved) is a new verification.
	id3, r := en.start(keyAcme, `{"to":"`+deMobile+`"}`)
	if r.Code != http.StatusCreated || id3 == id {
		t.Fatalf("start after approval = %d id %s; want 201 and a new id", r.Code, id3)
	}
	// And one after expiry too.
	en.svc.Clock.Add(verify.DefaultLifetime)
	id4, r := en.start(keyAcme, `{"to":"`+deMobile+`"}`)
	if r.Code != http.StatusCreated || id4 == id3 {
		t.Fatalf("start after expiry = %d id %s; want 201 and a new id", r.Code, id4)
	}
	if st := en.do("GET", "/v1/verifications/"+id3, keyAcme, "").json(t)["status"]; st != "expired" {
		t.Fatalf("the expired verification reads %v", st)
	}
}

func TestExpiry(t *testing.T) {
	en := newEnv(t, nil)
	id, _ := en.start(keyAcme, `{"to":"`+deMobile+`"}`)
	code := en.svc.Sender.LastCode(t, deMobile)
	en.svc.Clock.Add(verify.DefaultLifetime - time.Second)
	if st := en.do("GET", "/v1/verifications/"+id, keyAcme, "").json(t)["status"]; st != "pending" {
		t.Fatalf("a second before expiry: %v", st)
	}
	en.svc.Clock.Add(time.Second)
	if st := en.do("GET", "/v1/verifications/"+id, keyAcme, "").json(t)["status"]; st != "expired" {
		t.Fatalf("at expiry: %v", st)
	}
	r := en.do("POST", "/v1/verifications/"+id+"/check", keyAcme, `{"code":"`+code+`"}`)
	if r.Code != http.StatusOK || r.json(t)["status"] != "expired" {
		t.Fatalf("check after expiry = %d %s, want 200 expired", r.Code, r.Body)
	}
	r = en.do("POST", "/v1/verifications/"+id+"/check", keyAcme, `{"code":"`+code+`"}`)
	if r.Code != http.StatusConflict || r.errField(t, "status") != "expired" {
		t.Fatalf("second check after expiry = %d %s, want 409 with status expired", r.Code, r.Body)
	}
}

func TestMaxAttempts(t *testing.T) {
	en := newEnv(t, nil)
	id, _ := en.start(keyAcme, `{"to":"`+deMobile+`"}`)
	code := en.svc.Sender.LastCode(t, deMobile)
	wrong := fmt.Sprintf("%06d", (atoi(code)+7)%1000000)
	for left := 4; left >= 0; left-- {
		want := "pending"
		if left == 0 {
			want = "max_attempts_reached"
		}
		m := en.do("POST", "/v1/verifications/"+id+"/check", keyAcme, `{"code":"`+wrong+`"}`).json(t)
		if m["status"] != want || m["attempts_left"] != float64(left) {
			t.Fatalf("wrong code with %d left: %v, want %s", left, m, want)
		}
	}
	r := en.do("POST", "/v1/verifications/"+id+"/check", keyAcme, `{"code":"`+code+`"}`)
	if r.Code != http.StatusConflict || r.errField(t, "status") != "max_attempts_reached" {
		t.Fatalf("right code after max attempts = %d %s", r.Code, r.Body)
	}
}

func TestRateLimit(t *testing.T) {
	en := newEnv(t, nil)
	for i := range 5 {
		en.start(keyAcme, `{"to":"`+deMobile+`"}`)
		if i < 4 {
			en.svc.Clock.Add(30 * time.Second)
		}
	}
	// 150 s after the first send: it leaves the window in 450 s, "8 minutes" rounded up.
	en.svc.Clock.Add(30 * time.Second)
	r := en.do("POST", "/v1/verifications", keyAcme, `{"to":"`+deMobile+`"}`)
	wantMsg := "You've reached our limit on text verification codes. Please try again in 8 minutes."
	if r.Code != http.StatusTooManyRequests || r.errCode(t) != "rate_limited" || r.errField(t, "message") != wantMsg {
		t.Fatalf("sixth send = %d %s, want 429 %q", r.Code, r.Body, wantMsg)
	}
	if ra := r.Header.Get("Retry-After"); ra != "450" || r.errField(t, "retry_after") != 450.0 {
		t.Fatalf("Retry-After %q, retry_after %v; want 450", ra, r.errField(t, "retry_after"))
	}
	// Not a whole second left: rounded up.
	en.svc.Clock.Add(450*time.Second - 1500*time.Millisecond)
	r = en.do("POST", "/v1/verifications", keyAcme, `{"to":"`+deMobile+`"}`)
	if r.Header.Get("Retry-After") != "2" || r.errField(t, "message") != "You've reached our limit on text verification codes. Please try again in 2 seconds." {
		t.Fatalf("1.5 s before the window opens: Retry-After %q, %s", r.Header.Get("Retry-After"), r.Body)
	}
	// Calls have a limit of their own, with their own message.
	other := "+4915199999999"
	for range 5 {
		en.start(keyAcme, `{"to":"`+other+`","channel":"call"}`)
	}
	r = en.do("POST", "/v1/verifications", keyAcme, `{"to":"`+other+`","channel":"call"}`)
	if r.Code != 429 || r.errField(t, "message") != "You've reached our limit on verification calls. Please try again in 10 minutes." || r.Header.Get("Retry-After") != "600" {
		t.Fatalf("sixth call = %d %v %s", r.Code, r.Header.Get("Retry-After"), r.Body)
	}
	if n := len(en.svc.Caller.Calls()); n != 5 {
		t.Fatalf("%d calls placed, want 5", n)
	}
}

func TestFailedCheckLock(t *testing.T) {
	en := newEnv(t, nil, verifytest.WithConfig(func(c *verify.Config) {
		c.CheckLock = verify.CheckLock{Max: 2, Window: time.Hour}
	}))
	id, _ := en.start(keyAcme, `{"to":"`+deMobile+`"}`)
	code := en.svc.Sender.LastCode(t, deMobile)
	wrong := fmt.Sprintf("%06d", (atoi(code)+1)%1000000)
	en.do("POST", "/v1/verifications/"+id+"/check", keyAcme, `{"code":"`+wrong+`"}`)
	en.do("POST", "/v1/verifications/"+id+"/check", keyAcme, `{"code":"`+wrong+`"}`)
	r := en.do("POST", "/v1/verifications/"+id+"/check", keyAcme, `{"code":"`+code+`"}`)
	if r.Code != 429 || r.Header.Get("Retry-After") != "3600" ||
		r.errField(t, "message") != "You've reached our limit on verification attempts. Please try again in 1 hour." {
		t.Fatalf("check after the lock = %d %v %s", r.Code, r.Header.Get("Retry-After"), r.Body)
	}
}

func TestBadRequests(t *testing.T) {
	en := newEnv(t, []envOption{func(c *api.Config) { c.BodyLimit = 2048 }})
	big := `{"to":"` + deMobile + `","user_id":"` + strings.Repeat("x", 4096) + `"}`
	cases := []struct {
		name, path, body string
		hs               []header
		wantCode         int
		wantMsg          string // a part of the message
	}{
		{"not JSON", "/v1/verifications", `to=+49151`, nil, 400, "not valid JSON"},
		{"cut short", "/v1/verifications", `{"to":"+49151`, nil, 400, "ends in the middle"},
		{"empty body", "/v1/verifications", ``, nil, 400, "empty"},
		{"array", "/v1/verifications", `[1]`, nil, 400, "must be a JSON object, not an array"},
		{"trailing garbage", "/v1/verifications", `{"to":"` + deMobile + `"} x`, nil, 400, "after the JSON object"},
		{"two objects", "/v1/verifications", `{"to":"` + deMobile + `"}{}`, nil, 400, "after the JSON object"},
		{"unknown field", "/v1/verifications", `{"to":"` + deMobile + `","chanel":"sms"}`, nil, 400, `unknown field "chanel": the fields are to, channel, locale`},
		{"to as number", "/v1/verifications", `{"to":4915123456789}`, nil, 400, `field "to" must be a string, not a number`},
		{"roaming as string", "/v1/verifications", `{"to":"` + deMobile + `","roaming":"yes"}`, nil, 400, `field "roaming" must be true or false, not a string`},
		{"bad channel", "/v1/verifications", `{"to":"` + deMobile + `","channel":"fax"}`, nil, 400, `channel must be sms, call or auto, not "fax"`},
		{"bad call mode", "/v1/verifications", `{"to":"` + deMobile + `","channel":"call","call_mode":"hum"}`, nil, 400, "call_mode must be approve or code"},
		{"bad client_ip", "/v1/verifications", `{"to":"` + deMobile + `","client_ip":"1.2.3"}`, nil, 400, "client_ip"},
		{"bad callback_url", "/v1/verifications", `{"to":"` + deMobile + `","callback_url":"ftp://x"}`, nil, 400, "callback_url"},
		{"bad locale", "/v1/verifications", `{"to":"` + deMobile + `","locale":"en US"}`, nil, 400, "locale"},
		{"bad idempotency key", "/v1/verifications", `{"to":"` + deMobile + `"}`, []header{{"Idempotency-Key", "a b"}}, 400, "Idempotency-Key"},
		{"oversized body", "/v1/verifications", big, nil, 413, "too large: at most 2048 bytes"},
		{"oversized, no length", "/v1/verifications", big, []header{{"Content-Length", ""}}, 413, "too large"},
		{"code as number", "/v1/verifications/VEx/check", `{"code":123456}`, nil, 400, `field "code" must be a string`},
		{"code not digits", "/v1/verifications/VEx/check", `{"code":"12a456"}`, nil, 400, "code must be 4 to 10 digits"},
		{"code too short", "/v1/verifications/VEx/check", `{"code":"123"}`, nil, 400, "code must be 4 to 10 digits"},
		{"check unknown field", "/v1/verifications/VEx/check", `{"code":"123456","to":"x"}`, nil, 400, `unknown field "to": the fields are code`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := en.do("POST", c.path, keyAcme, c.body, c.hs...)
			if r.Code != c.wantCode || r.errCode(t) != "invalid_request" {
				t.Fatalf("= %d %s, want %d invalid_request", r.Code, r.Body, c.wantCode)
			}
			if msg, _ := r.errField(t, "message").(string); !strings.Contains(msg, c.wantMsg) {
				t.Fatalf("message %q does not say %q", msg, c.wantMsg)
			}
		})
	}
	if n := len(en.svc.Sender.Messages()); n != 0 {
		t.Fatalf("%d messages sent for bad requests", n)
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	en := newEnv(t, nil)
	cases := []struct {
		method, path string
		wantCode     int
		wantErr      string
	}{
		{"GET", "/v2/verifications", 404, "not_found"},
		{"GET", "/", 404, "not_found"},
		{"DELETE", "/v1/verifications/VEx", 405, "invalid_request"},
		{"PUT", "/v1/verifications", 405, "invalid_request"},
		{"GET", "/v1/verifications/VEx/check", 405, "invalid_request"},
	}
	for _, c := range cases {
		r := en.do(c.method, c.path, keyAcme, "")
		if r.Code != c.wantCode || r.errCode(t) != c.wantErr {
			t.Errorf("%s %s = %d %s, want %d %s", c.method, c.path, r.Code, r.Body, c.wantCode, c.wantErr)
		}
	}
}

func TestUnavailable(t *testing.T) {
	en := newEnv(t, nil)
	en.svc.Sender.Fail(errors.New("smsc 10.1.2.3 refused: secret detail"))
	r := en.do("POST", "/v1/verifications", keyAcme, `{"to":"`+deMobile+`"}`)
	if r.Code != http.StatusServiceUnavailable || r.errCode(t) != "unavailable" {
		t.Fatalf("= %d %s, want 503 unavailable", r.Code, r.Body)
	}
	if strings.Contains(string(r.Body), "10.1.2.3") || strings.Contains(string(r.Body), "secret") {
		t.Fatalf("503 leaks the cause: %s", r.Body)
	}
}

// TestBusy: a call the provider has no room for answers 503 unavailable
// with a short Retry-After and says the attempt was not counted; the cause
// stays in the log.
func TestBusy(t *testing.T) {
	en := newEnv(t, nil)
	en.svc.Caller.Fail(fmt.Errorf("rtp port 10.1.2.3: %w", verify.ErrBusy))
	r := en.do("POST", "/v1/verifications", keyAcme, `{"to":"`+deMobile+`","channel":"call"}`)
	if r.Code != http.StatusServiceUnavailable || r.errCode(t) != "unavailable" || r.Header.Get("Retry-After") != "5" {
		t.Fatalf("= %d %s (Retry-After %q), want 503 unavailable with Retry-After 5", r.Code, r.Body, r.Header.Get("Retry-After"))
	}
	if msg, _ := r.errField(t, "message").(string); !strings.Contains(msg, "busy") || !strings.Contains(msg, "not counted") {
		t.Errorf("message %q, want it to say the gateway is busy and the attempt was not counted", msg)
	}
	if strings.Contains(string(r.Body), "10.1.2.3") {
		t.Fatalf("503 leaks the cause: %s", r.Body)
	}
}

// TestDraining: a gateway shutting down answers a start 503 unavailable
// with a short Retry-After, saying so; reads still work.
func TestDraining(t *testing.T) {
	en := newEnv(t, nil)
	created := en.do("POST", "/v1/verifications", keyAcme, `{"to":"`+deMobile+`"}`)
	if created.Code != http.StatusCreated {
		t.Fatalf("start: %d %s", created.Code, created.Body)
	}
	en.svc.Drain()
	r := en.do("POST", "/v1/verifications", keyAcme, `{"to":"`+deMobile+`"}`)
	if r.Code != http.StatusServiceUnavailable || r.errCode(t) != "unavailable" || r.Header.Get("Retry-After") != "2" {
		t.Fatalf("= %d %s (Retry-After %q), want 503 unavailable with Retry-After 2", r.Code, r.Body, r.Header.Get("Retry-After"))
	}
	if msg, _ := r.errField(t, "message").(string); !strings.Contains(msg, "shutting down") {
		t.Errorf("message %q, want it to say the gateway is shutting down", msg)
	}
}

func TestUnsupportedNumbers(t *testing.T) {
	en := newEnv(t, nil)
	cases := []struct{ name, body, want string }{
		{"premium rate", `{"to":"+499001234567"}`, "premium rate"},
		{"sms to fixed line", `{"to":"+4930123456","channel":"sms"}`, "fixed line"},
	}
	for _, c := range cases {
		r := en.do("POST", "/v1/verifications", keyAcme, c.body)
		if msg, _ := r.errField(t, "message").(string); r.Code != 422 || r.errCode(t) != "unsupported_number" || !strings.Contains(msg, c.want) {
			t.Errorf("%s = %d %s, want 422 unsupported_number mentioning %q", c.name, r.Code, r.Body, c.want)
		}
	}
	// auto calls the fixed line instead.
	_, r := en.start(keyAcme, `{"to":"+4930123456","channel":"auto"}`)
	if m := r.json(t); m["channel"] != "call" || m["call_mode"] != "approve" {
		t.Fatalf("auto to a fixed line = %s", r.Body)
	}
}

func TestNumbers(t *testing.T) {
	cases := []struct {
		region, national, international, e164 string
	}{
		{"DE", "0151 23456789", "+49 151 23456789", "+4915123456789"},
		{"US", "(201) 555-0123", "+1 201-555-0123", "+12015550123"},
		{"GB", "07400 123456", "+44 7400 123456", "+447400123456"},
		{"FR", "06 12 34 56 78", "+33 6 12 34 56 78", "+33612345678"},
		{"ES", "612 34 56 78", "+34 612 34 56 78", "+34612345678"},
		{"IT", "312 345 6789", "+39 312 345 6789", "+393123456789"},
		{"IN", "081234 56789", "+91 81234 56789", "+918123456789"},
		{"BR", "(11) 96123-4567", "+55 11 96123-4567", "+5511961234567"},
		{"JP", "090-1234-5678", "+81 90-1234-5678", "+819012345678"},
		{"AU", "0412 345 678", "+61 412 345 678", "+61412345678"},
		{"ZA", "071 123 4567", "+27 71 123 4567", "+27711234567"},
		{"NG", "0802 123 4567", "+234 802 123 4567", "+2348021234567"},
		{"MX", "222 123 4567", "+52 222 123 4567", "+522221234567"},
	}
	for _, c := range cases {
		t.Run(c.region, func(t *testing.T) {
			en := newEnv(t, nil, verifytest.WithDefaultRegion(c.region))
			for _, input := range []string{c.national, c.international, c.e164} {
				_, r := en.start(keyAcme, `{"to":"`+input+`","channel":"call"}`)
				if got := r.json(t)["to"]; got != verify.MaskNumber(c.e164) {
					t.Fatalf("%q → to %v, want %s", input, got, verify.MaskNumber(c.e164))
				}
			}
			calls := en.svc.Caller.Calls()
			if len(calls) != 3 || calls[0].To != c.e164 || calls[1].To != c.e164 || calls[2].To != c.e164 {
				t.Fatalf("calls went to %+v, want %s three times", calls, c.e164)
			}
			// Without a default region the national form is refused, with advice.
			bare := newEnv(t, nil)
			r := bare.do("POST", "/v1/verifications", keyAcme, `{"to":"`+c.national+`"}`)
			if msg, _ := r.errField(t, "message").(string); r.Code != 400 || r.errCode(t) != "invalid_number" || !strings.Contains(msg, "international format") {
				t.Fatalf("national input without a region = %d %s", r.Code, r.Body)
			}
		})
	}
}

func TestInvalidNumbers(t *testing.T) {
	en := newEnv(t, nil, verifytest.WithDefaultRegion("DE"))
	cases := []struct{ to, want string }{
		{"", "missing"},
		{"+49 151", "not a valid phone number for DE"},
		{"+999 1234567", "country code is not valid"},
		{"call me", "not a phone number"},
		{"+49 151 2345678901234567", "too long"},
		{"0049 151", "not a valid phone number"},
		{strings.Repeat("1", 80), "too long"},
		{"+1 555 0100", "not a valid phone number"},
	}
	for _, c := range cases {
		r := en.do("POST", "/v1/verifications", keyAcme, `{"to":"`+c.to+`"}`)
		msg, _ := r.errField(t, "message").(string)
		if r.Code != 400 || r.errCode(t) != "invalid_number" || !strings.Contains(msg, c.want) {
			t.Errorf("%q = %d %s, want 400 invalid_number saying %q", c.to, r.Code, r.Body, c.want)
		}
	}
}

func TestIdempotency(t *testing.T) {
	en := newEnv(t, nil)
	key := header{"Idempotency-Key", "c0ffee-1"}
	body := `{"to":"` + deMobile + `"}`
	first := en.do("POST", "/v1/verifications", keyAcme, body, key)
	again := en.do("POST", "/v1/verifications", keyAcme, body, key)
	if first.Code != 201 || again.Code != 201 || string(again.Body) != string(first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay = %d %s (%v), first %d %s", again.Code, again.Body, again.Header, first.Code, first.Body)
	}
	if first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatal("the first response is marked as replayed")
	}
	if n := len(en.svc.Sender.Messages()); n != 1 {
		t.Fatalf("%d messages for one idempotent request", n)
	}
	// Same body, spelled differently: still the same request.
	if r := en.do("POST", "/v1/verifications", keyAcme, "{ \"to\" : \""+deMobile+"\" }\n", key); r.Code != 201 || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("same request, other spacing = %d %s", r.Code, r.Body)
	}
	// Another body with the key.
	r := en.do("POST", "/v1/verifications", keyAcme, `{"to":"`+deMobile+`","channel":"call"}`, key)
	if r.Code != 422 || r.errCode(t) != "invalid_request" || !strings.Contains(r.errField(t, "message").(string), "different request body") {
		t.Fatalf("other body, same key = %d %s", r.Code, r.Body)
	}
	// Another tenant's key space is its own.
	if r := en.do("POST", "/v1/verifications", keyGlobex, body, key); r.Code != 201 || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("globex with acme's key = %d %s", r.Code, r.Body)
	}
	// Within 24 hours the answer is replayed, even after the verification expired...
	en.svc.Clock.Add(api.IdempotencyTTL - time.Minute)
	if r := en.do("POST", "/v1/verifications", keyAcme, body, key); string(r.Body) != string(first.Body) {
		t.Fatalf("replay after 23h59m = %d %s", r.Code, r.Body)
	}
	// ...and then it is forgotten: a new start.
	en.svc.Clock.Add(2 * time.Minute)
	if r := en.do("POST", "/v1/verifications", keyAcme, body, key); r.Code != 201 || r.Header.Get("Idempotent-Replayed") != "" || string(r.Body) == string(first.Body) {
		t.Fatalf("after 24h = %d %s", r.Code, r.Body)
	}
	// Without a key a second start is a resend, not a replay.
	if r := en.do("POST", "/v1/verifications", keyAcme, body); r.Code != 200 {
		t.Fatalf("start without a key = %d, want 200 (resend)", r.Code)
	}
}

func TestIdempotencyErrors(t *testing.T) {
	en := newEnv(t, nil)
	key := header{"Idempotency-Key", "k-err"}
	// An input error is remembered like any answer.
	bad := `{"to":"+49 151"}`
	r1 := en.do("POST", "/v1/verifications", keyAcme, bad, key)
	r2 := en.do("POST", "/v1/verifications", keyAcme, bad, key)
	if r1.Code != 400 || r2.Code != 400 || r2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("input error: %d then %d (%v)", r1.Code, r2.Code, r2.Header)
	}
	// A failure worth retrying is not: the retry with the key runs again.
	en.svc.Sender.Fail(errors.New("down"))
	k2 := header{"Idempotency-Key", "k-503"}
	body := `{"to":"` + deMobile + `"}`
	if r := en.do("POST", "/v1/verifications", keyAcme, body, k2); r.Code != 503 {
		t.Fatalf("failing send = %d", r.Code)
	}
	en.svc.Sender.Fail(nil)
	if r := en.do("POST", "/v1/verifications", keyAcme, body, k2); r.Code != 201 || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry after 503 = %d %s %v", r.Code, r.Body, r.Header)
	}
}

// TestIdempotencyConcurrent sends one request with one key many times at
// once, over the in-memory store and over the real Redis: one verification,
// one message, one answer for all.
func TestIdempotencyConcurrent(t *testing.T) {
	stores := []struct {
		name string
		make func(t *testing.T, key string) api.IdempotencyStore
	}{
		{"memory", func(*testing.T, string) api.IdempotencyStore { return store.NewIdempotencyMemory(nil) }},
		{"redis", func(t *testing.T, key string) api.IdempotencyStore {
			rdb := redistest.Client(t)
			t.Cleanup(func() { rdb.Del(context.Background(), store.IdempotencyKey("acme", key)) })
			return store.NewIdempotencyRedis(rdb)
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			key := header{"Idempotency-Key", "same-" + randomHex(8)}
			idem := st.make(t, key.v)
			en := newEnv(t, []envOption{func(c *api.Config) { c.Idempotency = idem }})
			const n = 12
			var wg sync.WaitGroup
			results := make([]result, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i] = en.do("POST", "/v1/verifications", keyAcme, `{"to":"`+deMobile+`"}`, key)
				}()
			}
			wg.Wait()
			for i, r := range results {
				if r.Code != 201 || string(r.Body) != string(results[0].Body) {
					t.Fatalf("request %d = %d %s; want the one 201 answer %s", i, r.Code, r.Body, results[0].Body)
				}
			}
			if m := len(en.svc.Sender.Messages()); m != 1 {
				t.Fatalf("%d concurrent requests with one key sent %d messages, want 1", n, m)
			}
		})
	}
}

func TestHealthAndReadiness(t *testing.T) {
	var redisErr error
	en := newEnv(t, []envOption{func(c *api.Config) {
		c.Ready = map[string]api.ReadyCheck{
			"store": func(context.Context) error { return nil },
			"redis": func(context.Context) error { return redisErr },
		}
	}})
	if r := en.do("GET", "/healthz", "", ""); r.Code != 200 || r.json(t)["status"] != "ok" {
		t.Fatalf("healthz = %d %s", r.Code, r.Body)
	}
	r := en.do("GET", "/readyz", "", "")
	if m := r.json(t); r.Code != 200 || m["status"] != "ready" {
		t.Fatalf("readyz = %d %s", r.Code, r.Body)
	}
	redisErr = errors.New("dial tcp 10.0.0.7:6379: connection refused")
	r = en.do("GET", "/readyz", "", "")
	checks, _ := r.json(t)["checks"].(map[string]any)
	if r.Code != 503 || checks["redis"] != "failed" || checks["store"] != "ok" {
		t.Fatalf("readyz with redis down = %d %s", r.Code, r.Body)
	}
	if strings.Contains(string(r.Body), "10.0.0.7") {
		t.Fatalf("readyz leaks the cause: %s", r.Body)
	}
}

func TestMetrics(t *testing.T) {
	en := newEnv(t, nil)
	id, _ := en.start(keyAcme, `{"to":"`+deMobile+`"}`)
	en.start(keyAcme, `{"to":"`+deMobile+`"}`)
	en.do("POST", "/v1/verifications/"+id+"/check", keyAcme, `{"code":"`+en.svc.Sender.LastCode(t, deMobile)+`"}`)
	en.do("GET", "/nope", "", "")
	en.do("POST", "/v1/verifications", keyAcme, `{"to":"+49 1"}`)
	body := string(en.do("GET", "/metrics", "", "").Body)
	for _, want := range []string{
		`verigate_http_requests_total{method="POST",route="/v1/verifications",status="201"} 1`,
		`verigate_http_requests_total{method="POST",route="/v1/verifications",status="200"} 1`,
		`verigate_http_requests_total{method="POST",route="/v1/verifications",status="400"} 1`,
		`verigate_http_requests_total{method="POST",route="/v1/verifications/:id/check",status="200"} 1`,
		`verigate_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`verigate_verifications_started_total{channel="sms",outcome="created"} 1`,
		`verigate_verifications_started_total{channel="sms",outcome="resent"} 1`,
		`verigate_verifications_started_total{channel="none",outcome="invalid_number"} 1`,
		`verigate_verification_checks_total{outcome="approved"} 1`,
		`verigate_http_request_duration_seconds_count{route="/v1/verifications"} 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestOpenAPIRoutes holds the document and the router to each other:
// every route Echo serves is documented, and every documented operation is served.
func TestOpenAPIRoutes(t *testing.T) {
	en := newEnv(t, nil)
	doc, _ := spec(t)
	served := map[string]bool{}
	for _, r := range en.e.Routes() {
		path := r.Path
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, ":") {
				path = strings.Replace(path, seg, "{"+seg[1:]+"}", 1)
			}
		}
		op := r.Method + " " + path
		served[op] = true
		item := doc.Paths.Value(path)
		if item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("%s is served but not in openapi.json", op)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !served[method+" "+path] {
				t.Errorf("%s %s is in openapi.json but not served", method, path)
			}
		}
	}
	if len(served) != 13 {
		t.Errorf("%d routes served, want the 9 of DESIGN.md §3, the event stream and the 3 of the message relay", len(served))
	}
	// The served document is the embedded one.
	if r := en.do("GET", "/v1/openapi.json", "", ""); string(r.Body) != string(api.OpenAPI()) {
		t.Error("GET /v1/openapi.json does not serve the document")
	}
}

func TestParseAPIKeys(t *testing.T) {
	k16 := "0123456789abcdef"
	cases := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{"acme:" + k16, map[string]string{k16: "acme"}, ""},
		{" acme : " + k16 + " , globex:" + k16 + "X ", map[string]string{k16: "acme", k16 + "X": "globex"}, ""},
		{"acme:" + k16 + ",acme:" + k16 + "2", map[string]string{k16: "acme", k16 + "2": "acme"}, ""},
		{"", nil, "none given"},
		{"acme", nil, "entry 1 has no ':'"},
		{"acme:" + k16 + ",", nil, "entry 2 is empty"},
		{":" + k16, nil, "entry 1 has no tenant"},
		{"acme:short", nil, "key is 5 characters, need at least 16"},
		{"ac me:" + k16, nil, `tenant "ac me" may hold only`},
		{"a{b}:" + k16, nil, "may hold only"},
		{"acme:" + k16 + ",globex:" + k16, nil, `entry 2 (tenant "globex") repeats the key of tenant "acme"`},
	}
	for _, c := range cases {
		got, err := api.ParseAPIKeys(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseAPIKeys(%q) error %v, want %q", c.in, err, c.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), k16) {
				t.Errorf("ParseAPIKeys(%q) error quotes a key: %v", c.in, err)
			}
			continue
		}
		if err != nil || len(got) != len(c.want) {
			t.Errorf("ParseAPIKeys(%q) = %v, %v; want %v", c.in, got, err, c.want)
			continue
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("ParseAPIKeys(%q)[%q] = %q, want %q", c.in, k, got[k], v)
			}
		}
	}
}

func TestNewRejectsIncompleteConfig(t *testing.T) {
	svc := verifytest.NewService(t)
	keys := map[string]string{keyAcme: "acme"}
	idem := store.NewIdempotencyMemory(nil)
	for name, cfg := range map[string]api.Config{
		"no service":     {APIKeys: keys, Idempotency: idem},
		"no keys":        {Service: svc, Idempotency: idem},
		"no idempotency": {Service: svc, APIKeys: keys},
		"empty tenant":   {Service: svc, APIKeys: map[string]string{keyAcme: ""}, Idempotency: idem},
		"negative limit": {Service: svc, APIKeys: keys, BodyLimit: -1, Idempotency: idem},
	} {
		if _, err := api.New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestCallbackURL(t *testing.T) {
	en := newEnv(t, nil)
	id, r := en.start(keyAcme, `{"to":"`+deMobile+`","callback_url":"https://idp.example.com/hooks/verigate"}`)
	if r.Code != http.StatusCreated {
		t.Fatalf("start with callback_url = %d", r.Code)
	}
	en.do("POST", "/v1/verifications/"+id+"/check", keyAcme, `{"code":"`+en.svc.Sender.LastCode(t, deMobile)+`"}`)
	if n := en.svc.Notifier.Notices(); len(n) != 1 || n[0].Status != verify.StatusApproved {
		t.Fatalf("notices = %+v, want one approved", n)
	}
	// A malformed or overlong callback_url is refused once, by the service, with one message.
	for _, bad := range []string{"ftp://idp.example.com/h", "https://user:pw@idp.example.com/h", "https://idp.example.com/" + strings.Repeat("a", verify.MaxCallbackURL)} {
		r = en.do("POST", "/v1/verifications", keyAcme, `{"to":"`+deMobile+`","callback_url":"`+bad+`"}`)
		if msg, _ := r.errField(t, "message").(string); r.Code != 400 || !strings.Contains(msg, "callback_url must be an absolute https://") {
			t.Errorf("callback_url %.40q = %d %s", bad, r.Code, r.Body)
		}
	}
	// A gateway without callbacks says so.
	bare := newEnv(t, nil, verifytest.WithConfig(func(c *verify.Config) { c.Notifier = nil }))
	r = bare.do("POST", "/v1/verifications", keyAcme, `{"to":"`+deMobile+`","callback_url":"https://idp.example.com/h"}`)
	if msg, _ := r.errField(t, "message").(string); r.Code != 400 || !strings.Contains(msg, "not configured") {
		t.Fatalf("callback_url without callbacks = %d %s", r.Code, r.Body)
	}
}

// panicky is a Service whose Get panics.
type panicky struct{ api.Service }

func (panicky) Get(context.Context, string, string) (*verify.Verification, error) {
	panic("boom at 10.9.8.7")
}

func TestPanicIsUnavailable(t *testing.T) {
	en := newEnv(t, []envOption{func(c *api.Config) { c.Service = panicky{c.Service} }})
	r := en.do("GET", "/v1/verifications/VEx", keyAcme, "")
	if r.Code != http.StatusServiceUnavailable || r.errCode(t) != "unavailable" || strings.Contains(string(r.Body), "10.9.8.7") {
		t.Fatalf("panic = %d %s, want 503 unavailable without the cause", r.Code, r.Body)
	}
	if r := en.do("GET", "/healthz", "", ""); r.Code != 200 {
		t.Fatalf("after a panic healthz = %d", r.Code)
	}
}
