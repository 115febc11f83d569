package hosted_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/entra"
	"github.com/verigate/verigate/entra/hosted"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/verify"
)

const wantCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func TestPageLocalisedAndMasked(t *testing.T) {
	e := newEnv(t, entra.Config{})
	for _, tc := range []struct{ lang, htmlLang, lead, status string }{
		{"en-US,en;q=0.9", "en", "We're calling +49 151 *** 789. Answer and press # to finish.", "Waiting for your answer…"},
		{"fr;q=0.2, de-AT;q=0.8", "de", "Wir rufen +49 151 *** 789 an. Nehmen Sie ab und drücken Sie # zum Abschließen.", "Wir warten auf Ihre Antwort…"},
		{"xx", "en", "We're calling +49 151 *** 789.", "Waiting"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			p := e.browser(tc.lang).authorize(oidAlice)
			if p.status != http.StatusOK || !strings.HasPrefix(p.url, hosted.FlowsPath+"/") {
				t.Fatalf("landed on %d %s", p.status, p.url)
			}
			mustContain(t, p, `<html lang="`+tc.htmlLang+`">`, tc.lead, tc.status, `id="status" role="status" aria-live="polite"`)
			mustNotContain(t, p, mobile, "15123456789", "123456789")
			if strings.Contains(p.url, "789") {
				t.Fatalf("number in the URL %s", p.url)
			}
			for k, want := range map[string]string{
				"Content-Security-Policy": wantCSP, "X-Content-Type-Options": "nosniff",
				"Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
			} {
				if got := p.header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
		})
	}
	if n := len(e.svc.Caller.Calls()); n != 3 {
		t.Fatalf("%d calls placed, want one per flow", n)
	}
	if c := e.svc.Caller.Calls()[1]; c.Locale != "de" || c.Tenant != hosted.DefaultTenant || c.Mode != verify.CallModeApprove {
		t.Fatalf("the German flow's call: %+v", c)
	}
}

func TestCallApproved(t *testing.T) {
	e := newEnv(t, entra.Config{})
	b := e.browser("en")
	p := b.authorize(oidAlice)
	mustContain(t, p, "Text me a code instead", `id="resend"`, `id="not-me"`, `id="continue"`)
	call := e.lastCall()
	v, err := e.svc.Get(context.Background(), hosted.DefaultTenant, call.VerificationID)
	if err != nil || v.UserID != oidAlice || v.ClientIP != "127.0.0.1" {
		t.Fatalf("verification %+v, %v: want the oid as user and the browser's address", v, err)
	}
	// Finish before the # changes nothing: the core says pending.
	early := b.post(p, "finish")
	mustContain(t, early, "We're calling")
	e.wantResults(nil, 0)
	e.press(call.VerificationID, false)
	done := b.post(p, "finish")
	mustContain(t, done, "APPROVED tel state=st-1")
	e.wantResults([]entra.Method{entra.MethodTel}, 0)
	// Finish is one-shot.
	again := b.post(p, "finish")
	if again.status != http.StatusGone {
		t.Fatalf("second finish: %d %s", again.status, again.body)
	}
	e.wantResults([]entra.Method{entra.MethodTel}, 0)
}

func TestSMSCode(t *testing.T) {
	e := newEnv(t, entra.Config{Channels: []string{"sms", "call"}})
	b := e.browser("en")
	p := b.authorize(oidAlice)
	mustContain(t, p, "We've sent a code to +49 151 *** 789. Enter it below.", `autocomplete="one-time-code"`,
		`inputmode="numeric"`, `<label for="code">Verification code</label>`, "Call me instead")
	code := e.svc.Sender.LastCode(t, mobile)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	w := b.post(p, "code", "code", wrong)
	mustContain(t, w, "That code is not right. Please try again.")
	e.wantResults(nil, 0)
	ok := b.post(w, "code", "code", code)
	mustContain(t, ok, "APPROVED sms")
	e.wantResults([]entra.Method{entra.MethodSMS}, 0)
}

func TestSwitchToTextAndResendCooldown(t *testing.T) {
	e := newEnv(t, entra.Config{})
	b := e.browser("en")
	p := b.authorize(oidAlice)
	mustContain(t, p, "You can ask again in 30 seconds.")
	if !strings.Contains(p.raw, `id="resend" type="submit" class="secondary" disabled`) {
		t.Fatalf("resend not disabled in its cool-down:\n%s", p.body)
	}
	// A resend in the cool-down places no call.
	b.post(p, "call")
	if n := len(e.svc.Caller.Calls()); n != 1 {
		t.Fatalf("%d calls after a resend in the cool-down", n)
	}
	s := b.post(p, "sms")
	mustContain(t, s, "We've sent a code to +49 151 *** 789.", "Call me instead")
	if n := len(e.svc.Sender.Messages()); n != 1 {
		t.Fatalf("%d texts", n)
	}
	e.svc.Clock.Add(31 * time.Second)
	r := b.post(s, "sms")
	if n := len(e.svc.Sender.Messages()); n != 2 {
		t.Fatalf("%d texts after the cool-down", n)
	}
	// The resent text carries the same code, and it approves as sms.
	ok := b.post(r, "code", "code", e.svc.Sender.LastCode(t, mobile))
	mustContain(t, ok, "APPROVED sms")
}

func TestLandlineGetsNoText(t *testing.T) {
	for _, oid := range []string{oidBob, oidCarol} {
		t.Run(oid[:1], func(t *testing.T) {
			e := newEnv(t, entra.Config{Channels: []string{"sms", "call"}})
			b := e.browser("en")
			p := b.authorize(oid)
			mustContain(t, p, "We're calling +49 301 *** 567.")
			mustNotContain(t, p, "Text me")
			if n := len(e.svc.Sender.Messages()); n != 0 {
				t.Fatalf("%d texts to a landline", n)
			}
			if r := b.post(p, "sms"); r.status != http.StatusBadRequest {
				t.Fatalf("asked for a text anyway: %d", r.status)
			}
		})
	}
}

// TestNotMe: "This wasn't me" in the browser cancels and answers
// access_denied, logged as a fraud signal, but blocks nothing: the
// browser is whoever typed the password (the attacker, in the attack),
// and one click must not lock the victim out. 0# on the phone blocks.
func TestNotMe(t *testing.T) {
	e := newEnv(t, entra.Config{})
	b := e.browser("en")
	p := b.authorize(oidAlice)
	d := b.post(p, "notme")
	mustContain(t, d, "DENIED access_denied state=st-1")
	e.wantResults(nil, 1)
	v, err := e.svc.Get(context.Background(), hosted.DefaultTenant, e.lastCall().VerificationID)
	if err != nil || v.Status != verify.StatusCanceled {
		t.Fatalf("verification after 'this wasn't me': %+v, %v", v, err)
	}
	if l := e.logs.String(); !regexp.MustCompile(`level=WARN msg="entra: fraud signal[^\n]*client_request_id=crid-1`).MatchString(l) {
		t.Errorf("no fraud signal logged with the client-request-id:\n%s", l)
	}
	if strings.Contains(e.logs.String(), oidAlice) {
		t.Errorf("the full oid is logged:\n%s", e.logs.String())
	}
	// The number is not blocked: the person's next sign-in calls.
	if _, err := e.svc.Start(context.Background(), verify.StartRequest{Tenant: hosted.DefaultTenant, To: mobile, Channel: verify.ChannelCall}); err != nil {
		t.Fatalf("a start after 'this wasn't me': %v", err)
	}
}

func TestEndedVerificationsDeny(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(e *env, id string)
	}{
		{"fraud 0#", func(e *env, id string) { e.press(id, true) }},
		{"expired", func(e *env, id string) { e.svc.Clock.Add(verify.DefaultLifetime + time.Second) }},
		{"failed", func(e *env, id string) {
			err := e.svc.Report(context.Background(), id, verify.Event{Type: verify.EventNoAnswer, Channel: verify.ChannelCall,
				Outcome: &verify.Outcome{Status: verify.StatusFailed, Reason: "no_answer"}})
			if err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, entra.Config{FlowLifetime: time.Hour})
			b := e.browser("en")
			p := b.authorize(oidAlice)
			tc.end(e, e.lastCall().VerificationID)
			d := b.post(p, "finish")
			mustContain(t, d, "DENIED access_denied")
			e.wantResults(nil, 1)
		})
	}
}

func TestFlowLifetime(t *testing.T) {
	e := newEnv(t, entra.Config{})
	b := e.browser("en")
	p := b.authorize(oidAlice)
	e.press(e.lastCall().VerificationID, false)
	e.svc.Clock.Add(hosted.DefaultFlowLifetime + time.Second)
	d := b.post(p, "finish")
	mustContain(t, d, "DENIED access_denied")
	e.wantResults(nil, 1)
}

func TestFinishRefused(t *testing.T) {
	e := newEnv(t, entra.Config{})
	b := e.browser("en")
	p := b.authorize(oidAlice)
	e.press(e.lastCall().VerificationID, false)

	// Another browser, with the page's token but not its cookie.
	other := e.browser("en")
	if r := other.post(p, "finish"); r.status != http.StatusForbidden {
		t.Fatalf("finish from another browser: %d", r.status)
	}
	// This browser with a wrong token.
	r := b.do(http.MethodPost, p.url, map[string][]string{"csrf": {strings.Repeat("A", 43)}, "action": {"finish"}})
	if r.status != http.StatusForbidden {
		t.Fatalf("finish with a wrong CSRF token: %d", r.status)
	}
	r = b.do(http.MethodPost, p.url, map[string][]string{"action": {"finish"}})
	if r.status != http.StatusForbidden {
		t.Fatalf("finish without a CSRF token: %d", r.status)
	}
	// A body over the bound is refused before it is parsed.
	r = b.do(http.MethodPost, p.url, map[string][]string{"csrf": {p.csrf(t)}, "action": {"finish"}, "pad": {strings.Repeat("x", 8<<10)}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("oversized form: %d", r.status)
	}
	// The page itself needs the cookie too.
	if r := other.do(http.MethodGet, p.url, nil); r.status != http.StatusForbidden {
		t.Fatalf("page from another browser: %d", r.status)
	}
	e.wantResults(nil, 0)
	mustContain(t, b.post(p, "finish"), "APPROVED tel")
	e.wantResults([]entra.Method{entra.MethodTel}, 0)
}

func TestAuthorizeRefusals(t *testing.T) {
	e := newEnv(t, entra.Config{})
	for _, tc := range []struct {
		name   string
		oid    string
		extra  []string
		status int
		says   string
		denied int
	}{
		{"untrusted request", oidAlice, []string{"refuse", "untrusted"}, http.StatusBadRequest, "Sign-in could not continue", 0},
		{"trusted request", oidAlice, []string{"refuse", "trusted"}, http.StatusOK, "DENIED access_denied", 1},
		{"unknown person", "55555555-5555-5555-5555-555555555555", nil, http.StatusOK, "DENIED access_denied", 2},
		{"no number", oidNone, nil, http.StatusOK, "DENIED access_denied", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := e.browser("en").authorize(tc.oid, tc.extra...)
			if p.status != tc.status {
				t.Fatalf("status %d, want %d", p.status, tc.status)
			}
			mustContain(t, p, tc.says)
			e.wantResults(nil, tc.denied)
		})
	}
	if n := len(e.svc.Caller.Calls()); n != 0 {
		t.Fatalf("%d calls placed", n)
	}
	p := e.browser("de").authorize(oidAlice, "refuse", "untrusted")
	if p.header.Get("Content-Security-Policy") != wantCSP {
		t.Fatalf("error page CSP %q", p.header.Get("Content-Security-Policy"))
	}
	mustContain(t, p, `lang="de"`, "Die Anmeldung konnte nicht fortgesetzt werden")
}

func TestLimitMessage(t *testing.T) {
	e := newEnv(t, entra.Config{})
	ctx := context.Background()
	for range 5 { // the default limit: 5 calls per number in 10 minutes
		if _, err := e.svc.Start(ctx, verify.StartRequest{Tenant: hosted.DefaultTenant, To: mobile, Channel: verify.ChannelCall}); err != nil {
			t.Fatal(err)
		}
	}
	calls := len(e.svc.Caller.Calls())
	b := e.browser("de")
	p := b.authorize(oidAlice)
	mustContain(t, p, verify.MessageCallLimit, `lang="en"`, "Stattdessen einen Code per SMS senden")
	if n := len(e.svc.Caller.Calls()); n != calls {
		t.Fatalf("a call past the limit")
	}
	// The other channel still goes.
	s := b.post(p, "sms")
	mustContain(t, s, "Wir haben einen Code an +49 151 *** 789 gesendet.")
	mustNotContain(t, s, verify.MessageCallLimit)
}

func TestEventStream(t *testing.T) {
	e := newEnv(t, entra.Config{})
	b := e.browser("en")
	p := b.authorize(oidAlice)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+p.url+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() map[string]any {
		t.Helper()
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var m map[string]any
				if err := json.Unmarshal([]byte(data), &m); err != nil {
					t.Fatal(err)
				}
				return m
			}
		}
		t.Fatalf("stream ended: %v (last line %q)", sc.Err(), sc.Text())
		return nil
	}
	if m := next(); m["status"] != "pending" || m["text"] != "Waiting for your answer…" {
		t.Fatalf("first event %v", m)
	}
	e.press(e.lastCall().VerificationID, false)
	for {
		m := next()
		if m["status"] == "approved" {
			if m["final"] != true || m["text"] != "Verified. Signing you in…" {
				t.Fatalf("approved event %v", m)
			}
			break
		}
	}
	// Another browser gets no stream.
	if r := e.browser("en").do(http.MethodGet, p.url+"/events", nil); r.status != http.StatusForbidden {
		t.Fatalf("stream for another browser: %d", r.status)
	}
}

func TestLongPoll(t *testing.T) {
	e := newEnv(t, entra.Config{})
	b := e.browser("en")
	p := b.authorize(oidAlice)
	r := b.do(http.MethodGet, p.url+"/status", nil)
	var st struct {
		Status string
		Seq    int
	}
	if err := json.Unmarshal([]byte(r.raw), &st); err != nil || st.Status != "pending" {
		t.Fatalf("status %d %s: %v", r.status, r.raw, err)
	}
	done := make(chan page, 1)
	go func() { done <- b.do(http.MethodGet, p.url+"/status?seq="+itoa(st.Seq), nil) }()
	e.press(e.lastCall().VerificationID, false)
	r = <-done
	if err := json.Unmarshal([]byte(r.raw), &st); err != nil || st.Status != "approved" {
		t.Fatalf("status after #: %s: %v", r.raw, err)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestSecureCookie(t *testing.T) {
	svc := verifytest.NewService(t)
	h, err := hosted.New(hosted.Options{
		Authorizer: &fakeAuthorizer{}, Directory: people, Verifier: svc.Service, Texts: catalogue,
		PublicURL: "https://login.example.com", Now: svc.Clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	ck := serveOnce(t, h, oidAlice).Header().Get("Set-Cookie")
	if !regexp.MustCompile(`^__Host-verigate-entra-[A-Za-z0-9_-]{22}=`).MatchString(ck) {
		t.Fatalf("Set-Cookie %q is not named by the flow", ck)
	}
	for _, want := range []string{"Path=/", "Max-Age=", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(ck, want) {
			t.Fatalf("Set-Cookie %q lacks %q", ck, want)
		}
	}
	if strings.Contains(ck, "Domain") {
		t.Fatalf("__Host- cookie with a Domain: %q", ck)
	}
}

func TestCodeModeCall(t *testing.T) {
	e := newEnv(t, entra.Config{CallMode: "code"})
	b := e.browser("en")
	p := b.authorize(oidAlice)
	mustContain(t, p, "We're calling +49 151 *** 789. Enter the code you hear.", `id="code"`)
	mustNotContain(t, p, "http-equiv") // no refresh over a code being typed
	call := e.lastCall()
	if call.Mode != verify.CallModeCode || call.Code == "" {
		t.Fatalf("call %+v", call)
	}
	mustContain(t, b.post(p, "code", "code", call.Code), "APPROVED tel")
	e.wantResults([]entra.Method{entra.MethodTel}, 0)
}

func TestCancel(t *testing.T) {
	e := newEnv(t, entra.Config{})
	b := e.browser("en")
	p := b.authorize(oidAlice)
	mustContain(t, p, "http-equiv=\"refresh\"") // no script: the page refreshes while the call rings
	mustContain(t, b.post(p, "cancel"), "DENIED access_denied")
	e.wantResults(nil, 1)
	v, err := e.svc.Get(context.Background(), hosted.DefaultTenant, e.lastCall().VerificationID)
	if err != nil || v.Status != verify.StatusCanceled {
		t.Fatalf("verification after cancel: %+v, %v", v, err)
	}
	if r := b.post(p, "notme"); r.status != http.StatusGone {
		t.Fatalf("a second answer: %d", r.status)
	}
	e.wantResults(nil, 1)
}

// TestNothingSecretLogged: neither the number nor a code reaches a log
// line or a URL, whatever the person does.
func TestNothingSecretLogged(t *testing.T) {
	e := newEnv(t, entra.Config{Channels: []string{"sms", "call"}})
	b := e.browser("en")
	p := b.authorize(oidAlice)
	code := e.svc.Sender.LastCode(t, mobile)
	p = b.post(p, "code", "code", "999999")
	b.post(p, "call")
	mustContain(t, b.post(p, "code", "code", code), "APPROVED sms")
	logs := e.logs.String()
	if !strings.Contains(logs, "entra: flow begun") {
		t.Fatalf("nothing logged:\n%s", logs)
	}
	for _, secret := range []string{mobile, mobile[1:], code, "999999"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("log holds %q:\n%s", secret, logs)
		}
	}
}

// TestForwardedForIgnored: without a trusted proxy (the server's
// IPExtractor), the browser cannot choose the address its sends count
// under.
func TestForwardedForIgnored(t *testing.T) {
	e := newEnv(t, entra.Config{})
	b := e.browser("en")
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+entra.AuthorizePath, strings.NewReader("oid="+oidAlice))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Real-IP", "203.0.113.9")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	v, err := e.svc.Get(context.Background(), hosted.DefaultTenant, e.lastCall().VerificationID)
	if err != nil || v.ClientIP != "127.0.0.1" {
		t.Fatalf("client IP %q, %v", v.ClientIP, err)
	}
}

func TestAssets(t *testing.T) {
	e := newEnv(t, entra.Config{})
	b := e.browser("en")
	p := b.authorize(oidAlice)
	for _, inline := range []string{"<script>", "<style", " style=", " onclick=", " onload=", " onsubmit="} {
		if strings.Contains(p.raw, inline) {
			t.Fatalf("%q on the page: the CSP would block it", inline)
		}
	}
	for path, ctype := range map[string]string{hosted.AssetsPath + "/page.js": "text/javascript", hosted.AssetsPath + "/page.css": "text/css"} {
		r := b.do(http.MethodGet, path, nil)
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), ctype) || r.header.Get("Content-Security-Policy") != wantCSP {
			t.Fatalf("%s: %d %s", path, r.status, r.header.Get("Content-Type"))
		}
	}
	js := b.do(http.MethodGet, hosted.AssetsPath+"/page.js", nil).body
	for _, want := range []string{"EventSource", "navigator.credentials.get", "otp", "finish-form"} {
		if !strings.Contains(js, want) {
			t.Fatalf("page.js lacks %q", want)
		}
	}
	if r := b.do(http.MethodGet, hosted.AssetsPath+"/page.html", nil); r.status != http.StatusNotFound {
		t.Fatalf("template served: %d", r.status)
	}
}

func TestTextLimitMessage(t *testing.T) {
	e := newEnv(t, entra.Config{Channels: []string{"sms", "call"}})
	for range 5 { // the default limit: 5 texts per number in 10 minutes
		if _, err := e.svc.Start(context.Background(), verify.StartRequest{Tenant: hosted.DefaultTenant, To: mobile, Channel: verify.ChannelSMS}); err != nil {
			t.Fatal(err)
		}
	}
	p := e.browser("en").authorize(oidAlice)
	mustContain(t, p, verify.MessageSMSLimit, "Call me instead")
	mustNotContain(t, p, `lang="en">You've`) // the page is English already
	// The limits are the core's: sends made outside the page (here
	// straight through the Service, as the REST API makes them) count.
	if n := len(e.svc.Sender.Messages()); n != 5 {
		t.Fatalf("%d texts", n)
	}
}

// TestStreamsBoundedPerFlow: one browser cannot hold more than a few
// status streams open; closing one frees its slot.
func TestStreamsBoundedPerFlow(t *testing.T) {
	e := newEnv(t, entra.Config{})
	b := e.browser("en")
	p := b.authorize(oidAlice)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := func() *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+p.url+"/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	var streams []*http.Response
	for range 4 {
		r := open()
		if r.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %d", len(streams)+1, r.StatusCode)
		}
		// Read the first event: the stream holds its slot now.
		if _, err := bufio.NewReader(r.Body).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		streams = append(streams, r)
	}
	over := open()
	over.Body.Close()
	if over.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a fifth stream: %d", over.StatusCode)
	}
	for _, r := range streams {
		r.Body.Close()
	}
	// The server sees the closes when it next writes: the approval.
	e.press(e.lastCall().VerificationID, false)
	for i := 0; ; i++ {
		r := open()
		r.Body.Close()
		if r.StatusCode == http.StatusOK {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no slot freed: %d", r.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAMRLimitsChannels: only channels whose approval Entra's amr
// accepts are sent on or offered (call → tel, sms → sms), from the first
// send on; a number no such channel reaches is refused at once.
func TestAMRLimitsChannels(t *testing.T) {
	e := newEnv(t, entra.Config{Channels: []string{"call", "sms"}})
	b := e.browser("en")
	p := b.authorize(oidAlice, "amr", "sms")
	if n := len(e.svc.Caller.Calls()); n != 0 {
		t.Fatalf("%d calls though Entra accepts only amr sms", n)
	}
	if n := len(e.svc.Sender.Messages()); n != 1 {
		t.Fatalf("%d texts, want the first send by text", n)
	}
	mustNotContain(t, p, "Call me")
	if r := b.post(p, "call"); r.status != http.StatusBadRequest {
		t.Fatalf("asked for a call anyway: %d", r.status)
	}
	d := b.post(p, "code", "code", e.svc.Sender.LastCode(t, mobile))
	mustContain(t, d, "APPROVED sms state=st-1")

	e2 := newEnv(t, entra.Config{Channels: []string{"sms", "call"}})
	b2 := e2.browser("en")
	b2.authorize(oidAlice, "amr", "tel")
	if n := len(e2.svc.Sender.Messages()); n != 0 {
		t.Fatalf("%d texts though Entra accepts only amr tel", n)
	}
	if n := len(e2.svc.Caller.Calls()); n != 1 {
		t.Fatalf("%d calls, want the first send by call", n)
	}

	// A landline takes no text, and Entra accepts only sms: nothing to offer.
	r := e2.browser("en").authorize(oidBob, "amr", "sms")
	mustContain(t, r, "DENIED access_denied")
	e2.wantResults(nil, 1)
}

// TestApproveFailureAnswersEntra: when the approval cannot be signed
// after the flow finished, Entra still gets an answer
// (temporarily_unavailable), never a 500 and ten minutes of waiting.
func TestApproveFailureAnswersEntra(t *testing.T) {
	e := newEnv(t, entra.Config{})
	b := e.browser("en")
	p := b.authorize(oidAlice)
	e.auth.setFailApprove(true)
	e.press(e.lastCall().VerificationID, false)
	d := b.post(p, "finish")
	if d.status != http.StatusOK {
		t.Fatalf("status %d:\n%s", d.status, d.body)
	}
	mustContain(t, d, "DENIED temporarily_unavailable state=st-1")
	e.wantResults(nil, 1)
}

// TestAuthorizeUnavailable: an outage behind Authorize (Entra's
// metadata, Redis) is answered temporarily_unavailable, not access_denied.
func TestAuthorizeUnavailable(t *testing.T) {
	e := newEnv(t, entra.Config{})
	r := e.browser("en").authorize(oidAlice, "refuse", "unavailable")
	mustContain(t, r, "DENIED temporarily_unavailable state=st-1")
	r = e.browser("en").authorize(oidAlice, "refuse", "trusted")
	mustContain(t, r, "DENIED access_denied state=st-1")
}

// TestTwoFlowsOneBrowser: a second sign-in in another tab of the same
// browser keeps the first's session; both finish. (Two people: a second
// sign-in to the same number supersedes the first's verification.)
func TestTwoFlowsOneBrowser(t *testing.T) {
	e := newEnv(t, entra.Config{})
	b := e.browser("en")
	p1 := b.authorize(oidAlice)
	id1 := e.lastCall().VerificationID
	p2 := b.authorize(oidBob)
	id2 := e.lastCall().VerificationID
	if p1.url == p2.url || id1 == id2 {
		t.Fatalf("one flow for two sign-ins: %s %s", p1.url, p2.url)
	}
	e.press(id1, false)
	e.press(id2, false)
	mustContain(t, b.post(p1, "finish"), "APPROVED tel state=st-1")
	mustContain(t, b.post(p2, "finish"), "APPROVED tel state=st-1")
	e.wantResults([]entra.Method{entra.MethodTel, entra.MethodTel}, 0)
}
