package twilio_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/api"
	"github.com/verigate/verigate/internal/twiliotest"
	"github.com/verigate/verigate/ivr"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/sms"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/twilio"
	"github.com/verigate/verigate/verify"
)

const (
	accountSID = "AC0123456789abcdef0123456789abcdef"
	authToken  = "0123456789abcdef0123456789abcdef"
	fromNumber = "+15005550006"
	// publicURL is where Twilio reaches the gateway: a reverse proxy in
	// front of the test listener (twiliotest.ProxyTransport).
	publicURL = "https://verify.example.test/gw"
	tenant    = "acme"
	mobile    = "+4915123456789"
)

// harness is a gateway (the REST API of package api and the Twilio
// webhooks on one Echo, on a real HTTP server, over verify.Service and the
// Twilio provider) and a fake Twilio in front of it.
type harness struct {
	t    *testing.T
	svc  *verify.Service
	fake *twiliotest.Server
	gw   *httptest.Server
}

const apiKey = "key-for-acme"

// newHarness starts a gateway; mods adjust its Twilio settings.
func newHarness(t *testing.T, mods ...func(*twilio.Config)) *harness {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	fake := twiliotest.New(twiliotest.Config{AccountSID: accountSID, AuthToken: authToken})
	cfg := twilio.Config{
		AccountSID: accountSID, AuthToken: authToken, From: fromNumber,
		BaseURL: fake.URL, PublicURL: publicURL, Secret: "a server secret of enough length",
	}
	for _, m := range mods {
		m(&cfg)
	}
	prov, err := twilio.New(cfg, twilio.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	lim, err := ratelimit.NewMemory(ratelimit.DefaultPolicies(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	hasher, err := verify.NewHasher([]byte("hmac key for tests, 32 bytes...."))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := verify.NewService(verify.Config{
		Store: store.Limited{Memory: store.NewMemory(), Limits: lim}, Limiter: lim, Parser: route.Classifier{}, Router: route.Defaults{},
		Formatter: sms.Template{AppName: "Verigate"}, Hasher: hasher, Logger: quiet,
		Senders: map[string]verify.Sender{twilio.ProviderName: prov}, DefaultSender: twilio.ProviderName,
		Callers: map[string]verify.Caller{twilio.ProviderName: prov}, DefaultCaller: twilio.ProviderName,
	})
	if err != nil {
		t.Fatal(err)
	}
	e, err := api.New(api.Config{Service: svc, APIKeys: map[string]string{apiKey: tenant}, Idempotency: store.NewIdempotencyMemory(nil), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	wh, err := twilio.NewWebhooks(cfg, svc, twilio.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	wh.Register(e.Group(twilio.PathPrefix))
	// Twilio reaches the gateway through a reverse proxy that serves it
	// under /gw and strips that prefix; the REST API is called directly.
	gw := httptest.NewServer(e)
	fake.SetWebhookTransport(twiliotest.ProxyTransport(publicURL, gw.URL))
	t.Cleanup(func() {
		fake.Close()
		gw.Close()
		prov.Close()
	})
	return &harness{t: t, svc: svc, fake: fake, gw: gw}
}

// view is a verification as GET /v1/verifications/{id} shows it.
type view struct {
	ID           string        `json:"id"`
	Status       verify.Status `json:"status"`
	Reason       string        `json:"reason"`
	AttemptsLeft int           `json:"attempts_left"`
	Events       []viewEvent   `json:"events"`
}

type viewEvent struct {
	Type      verify.EventType `json:"type"`
	Channel   verify.Channel   `json:"channel"`
	Provider  string           `json:"provider"`
	ErrorCode string           `json:"error_code"`
	Detail    string           `json:"detail"`
}

// do calls the REST API on the gateway's listener (the internal side of
// the proxy) and decodes a JSON answer into out.
func (h *harness) do(method, path string, body any, out any) int {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(h.ctx(), method, h.gw.URL+"/"+strings.TrimPrefix(path, "/"), rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			h.t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	h.t.Cleanup(cancel)
	return ctx
}

type startBody struct {
	To       string          `json:"to"`
	Channel  verify.Channel  `json:"channel,omitempty"`
	CallMode verify.CallMode `json:"call_mode,omitempty"`
	Locale   string          `json:"locale,omitempty"`
}

// start asks the REST API for a verification and returns its id.
func (h *harness) start(req startBody) string {
	h.t.Helper()
	var v view
	if status := h.do(http.MethodPost, "/v1/verifications", req, &v); status != http.StatusCreated {
		h.t.Fatalf("start: HTTP %d", status)
	}
	return v.ID
}

// check checks code through the REST API.
func (h *harness) check(id, code string) verify.Status {
	h.t.Helper()
	var v view
	if status := h.do(http.MethodPost, "/v1/verifications/"+id+"/check", map[string]string{"code": code}, &v); status != http.StatusOK {
		h.t.Fatalf("check: HTTP %d", status)
	}
	return v.Status
}

// settle waits until the fake Twilio has played every call and callback,
// and fails the test on anything it could not play.
func (h *harness) settle() {
	h.t.Helper()
	h.fake.Wait()
	for _, err := range h.fake.Errors() {
		h.t.Errorf("fake twilio: %v", err)
	}
}

// get shows a verification through the REST API.
func (h *harness) get(id string) view {
	h.t.Helper()
	var v view
	if status := h.do(http.MethodGet, "/v1/verifications/"+id, nil, &v); status != http.StatusOK {
		h.t.Fatalf("get %s: HTTP %d", id, status)
	}
	return v
}

// record is the verification as the store holds it, for what the API does
// not show (provider references, attempts made).
func (h *harness) record(id string) *verify.Verification {
	h.t.Helper()
	v, err := h.svc.Get(h.ctx(), tenant, id)
	if err != nil {
		h.t.Fatalf("get %s: %v", id, err)
	}
	return v
}

func (h *harness) onlyCall() twiliotest.Call {
	h.t.Helper()
	calls := h.fake.Calls()
	if len(calls) != 1 {
		h.t.Fatalf("%d calls placed, want 1", len(calls))
	}
	return calls[0]
}

func said(c twiliotest.Call) []string {
	var out []string
	for _, s := range c.Said {
		out = append(out, s.Text)
	}
	return out
}

func eventTypes(v view) []verify.EventType {
	var out []verify.EventType
	for _, e := range v.Events {
		out = append(out, e.Type)
	}
	return out
}

func findEvent(v view, t verify.EventType) (viewEvent, bool) {
	for _, e := range v.Events {
		if e.Type == t {
			return e, true
		}
	}
	return viewEvent{}, false
}

// providerRef returns the provider reference of the verification's first
// event of type t.
func (h *harness) providerRef(id string, t verify.EventType) string {
	h.t.Helper()
	for _, e := range h.record(id).Events {
		if e.Type == t {
			return e.ProviderRef
		}
	}
	h.t.Fatalf("no %s event", t)
	return ""
}

func wantSaid(t *testing.T, c twiliotest.Call, want ...string) {
	t.Helper()
	if got := said(c); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("the phone heard\n %q\nwant\n %q", got, want)
	}
}

const (
	greeting   = "Thank you for using our verification system."
	pressPound = "Press the pound key to finish verifying your account."
	notRecog   = "That key was not recognised."
	noResponse = "We did not receive your response."
	verifiedGB = "Your account has been verified. Goodbye."
	fraudGB    = "Your fraud report has been recorded. Goodbye."
	goodbye    = "Goodbye."
)

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

func TestSMSFlowApproved(t *testing.T) {
	h := newHarness(t)
	id := h.start(startBody{To: mobile, Channel: verify.ChannelSMS})
	h.settle()
	msgs := h.fake.Messages()
	if len(msgs) != 1 || msgs[0].To != mobile || msgs[0].From != fromNumber {
		t.Fatalf("messages %+v", msgs)
	}
	if !strings.HasPrefix(msgs[0].StatusCallback, publicURL+twilio.PathPrefix+twilio.RouteSMSStatus) {
		t.Errorf("status callback %q is not under the public URL", msgs[0].StatusCallback)
	}
	code := sixDigits.FindString(msgs[0].Body)
	if code == "" {
		t.Fatalf("no code in %q", msgs[0].Body)
	}
	if got := h.check(id, code); got != verify.StatusApproved {
		t.Fatalf("check with the code from the message: %s", got)
	}
	v := h.get(id)
	if v.Status != verify.StatusApproved {
		t.Fatalf("API shows %s", v.Status)
	}
	for _, want := range []verify.EventType{verify.EventSent, verify.EventDelivered, verify.EventApproved} {
		ev, ok := findEvent(v, want)
		if !ok {
			t.Fatalf("no %s event in %v", want, eventTypes(v))
		}
		if want != verify.EventApproved && (ev.Provider != twilio.ProviderName || h.providerRef(id, want) != msgs[0].Sid) {
			t.Errorf("%s event %+v does not name the message", want, ev)
		}
	}
}

func TestSMSThroughMessagingService(t *testing.T) {
	// The REST side alone: a Messaging Service SID instead of From.
	fake := twiliotest.New(twiliotest.Config{AccountSID: accountSID, AuthToken: authToken})
	defer fake.Close()
	prov, err := twilio.New(twilio.Config{
		AccountSID: accountSID, AuthToken: authToken, MessagingServiceSID: "MG0123456789abcdef0123456789abcdef",
		BaseURL: fake.URL, PublicURL: publicURL, Secret: "a server secret of enough length",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.Close()
	sid, err := prov.Send(context.Background(), verify.Message{VerificationID: "v1", To: mobile, Body: "Your code is 123456"})
	if err != nil || !strings.HasPrefix(sid, "SM") {
		t.Fatalf("send: %q, %v", sid, err)
	}
	fake.Wait()
	m := fake.Messages()[0]
	if m.MessagingServiceSid != "MG0123456789abcdef0123456789abcdef" || m.From != "" {
		t.Fatalf("message %+v", m)
	}
}

func TestRESTErrors(t *testing.T) {
	fake := twiliotest.New(twiliotest.Config{AccountSID: accountSID, AuthToken: authToken})
	defer fake.Close()
	cfg := twilio.Config{
		AccountSID: accountSID, AuthToken: "wrongtoken0123456789", From: fromNumber,
		BaseURL: fake.URL, PublicURL: publicURL, Secret: "a server secret of enough length",
	}
	tests := []struct {
		name       string
		cfg        twilio.Config
		to         string
		wantStatus int
		wantCode   int
	}{
		{"wrong token", cfg, mobile, 401, 20003},
		{"bad number", func() twilio.Config { c := cfg; c.AuthToken = authToken; return c }(), "12345", 400, 21211},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prov, err := twilio.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer prov.Close()
			_, err = prov.Send(context.Background(), verify.Message{VerificationID: "v1", To: tt.to, Body: "x"})
			var re *twilio.RestError
			if !errors.As(err, &re) || re.Status != tt.wantStatus || re.Code != tt.wantCode {
				t.Fatalf("send error %v, want HTTP %d code %d", err, tt.wantStatus, tt.wantCode)
			}
			_, err = prov.Call(context.Background(), verify.Call{VerificationID: "v1", To: tt.to, Mode: verify.CallModeApprove})
			if !errors.As(err, &re) || re.Status != tt.wantStatus || re.Code != tt.wantCode {
				t.Fatalf("call error %v, want HTTP %d code %d", err, tt.wantStatus, tt.wantCode)
			}
		})
	}
	if len(fake.Messages()) != 0 || len(fake.Calls()) != 0 {
		t.Fatal("refused requests were recorded")
	}
}

func TestCallApproveFlows(t *testing.T) {
	tests := []struct {
		name       string
		keys       string
		answer     string
		wantStatus verify.Status
		wantReason string
		wantSaid   []string
		wantEvent  verify.EventType
	}{
		{"pound approves", "#", "", verify.StatusApproved, "",
			[]string{greeting, pressPound, verifiedGB}, verify.EventCallApproved},
		{"wrong key then pound", "5#", "", verify.StatusApproved, "",
			[]string{greeting, pressPound, notRecog, pressPound, verifiedGB}, verify.EventCallApproved},
		{"silence then pound", ".#", "", verify.StatusApproved, "",
			[]string{greeting, pressPound, noResponse, pressPound, verifiedGB}, verify.EventCallApproved},
		{"silence three times", "", "", verify.StatusFailed, ivr.ReasonNotConfirmed,
			[]string{greeting, pressPound, noResponse, pressPound, noResponse, pressPound, noResponse, goodbye}, verify.EventFailed},
		{"pound after three prompts is too late", "...#", "", verify.StatusFailed, ivr.ReasonNotConfirmed,
			[]string{greeting, pressPound, noResponse, pressPound, noResponse, pressPound, noResponse, goodbye}, verify.EventFailed},
		{"zero pound denies", "0#", "", verify.StatusDenied, "fraud_reported",
			[]string{greeting, pressPound, fraudGB}, verify.EventFraudReported},
		{"busy", "", "busy", verify.StatusFailed, string(verify.EventBusy), nil, verify.EventBusy},
		{"no answer", "", "no-answer", verify.StatusFailed, string(verify.EventNoAnswer), nil, verify.EventNoAnswer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.fake.SetPhone(mobile, twiliotest.Phone{Keys: tt.keys, Answer: tt.answer})
			id := h.start(startBody{To: mobile, Channel: verify.ChannelCall, CallMode: verify.CallModeApprove, Locale: "en"})
			h.settle()
			c := h.onlyCall()
			wantSaid(t, c, tt.wantSaid...)
			v := h.get(id)
			if v.Status != tt.wantStatus || v.Reason != tt.wantReason {
				t.Fatalf("verification %s (%q), want %s (%q); events %v", v.Status, v.Reason, tt.wantStatus, tt.wantReason, eventTypes(v))
			}
			if n := h.record(id).Attempts; n != 0 {
				t.Errorf("%d checks made, want none", n)
			}
			ev, ok := findEvent(v, tt.wantEvent)
			if !ok || h.providerRef(id, tt.wantEvent) != c.Sid {
				t.Fatalf("no %s event for call %s in %+v", tt.wantEvent, c.Sid, v.Events)
			}
			if want := map[string]string{"busy": "486", "no-answer": "487"}[tt.answer]; ev.ErrorCode != want {
				t.Errorf("%s event error code %q, want %q", tt.wantEvent, ev.ErrorCode, want)
			}
			for _, s := range c.Said {
				if s.Language != "en-US" || s.Voice != "Polly.Joanna" {
					t.Errorf("<Say> %+v not in en-US with the configured voice", s)
				}
			}
			for _, g := range c.Gathers {
				if g.Input != "dtmf" || !g.FinishOnKeySet || g.FinishOnKey != "" || g.NumDigits != 1 || g.Timeout != 10 {
					t.Errorf("gather %+v: want one dtmf key, finishOnKey \"\", timeout 10", g)
				}
			}
		})
	}
}

func TestFraudBlocksTheNumber(t *testing.T) {
	h := newHarness(t)
	h.fake.SetPhone(mobile, twiliotest.Phone{Keys: "0#"})
	id := h.start(startBody{To: mobile, Channel: verify.ChannelCall, CallMode: verify.CallModeApprove})
	h.settle()
	if v := h.get(id); v.Status != verify.StatusDenied || v.Reason != "fraud_reported" {
		t.Fatalf("verification %s (%q), want denied (fraud_reported)", v.Status, v.Reason)
	}
	for _, ch := range []verify.Channel{verify.ChannelSMS, verify.ChannelCall} {
		if status := h.do(http.MethodPost, "/v1/verifications", startBody{To: mobile, Channel: ch}, nil); status != http.StatusTooManyRequests {
			t.Errorf("%s start after a fraud report: HTTP %d, want 429 (number blocked)", ch, status)
		}
	}
	if n := len(h.fake.Calls()) + len(h.fake.Messages()); n != 1 {
		t.Errorf("%d deliveries, want only the first call", n)
	}
}

func TestCallCodeModeReadsTheCode(t *testing.T) {
	h := newHarness(t)
	id := h.start(startBody{To: mobile, Channel: verify.ChannelCall, CallMode: verify.CallModeCode})
	h.settle()
	c := h.onlyCall()
	heard := said(c)
	// greeting, intro, 6 digits, again, 6 digits, goodbye
	if len(heard) != 16 || heard[0] != greeting || heard[1] != "Your verification code is" || heard[8] != "Again:" || heard[15] != goodbye {
		t.Fatalf("the phone heard %q", heard)
	}
	first, second := spokenDigits(t, heard[2:8]), spokenDigits(t, heard[9:15])
	if first != second || !sixDigits.MatchString(first) {
		t.Fatalf("code read as %q then %q", first, second)
	}
	for _, r := range c.Requests {
		if strings.Contains(r.URL, first) {
			t.Fatalf("the code appears in clear in webhook URL %s", r.URL)
		}
	}
	if len(c.Gathers) != 0 {
		t.Errorf("code mode gathered keys: %+v", c.Gathers)
	}
	if got := h.check(id, first); got != verify.StatusApproved {
		t.Fatalf("check with the code heard: %s", got)
	}
}

// spokenDigits turns the words of the built-in English catalogue back
// into digits.
func spokenDigits(t *testing.T, words []string) string {
	t.Helper()
	cat, err := prompts.Load(prompts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, w := range words {
		found := false
		for d := byte('0'); d <= '9'; d++ {
			if cat.Text("en", prompts.Digit(d)) == w {
				out.WriteByte(d)
				found = true
			}
		}
		if !found {
			t.Fatalf("%q is not a digit", w)
		}
	}
	return out.String()
}

func TestCallSpeaksTheLocale(t *testing.T) {
	cat, err := prompts.Load(prompts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	h.fake.SetPhone(mobile, twiliotest.Phone{Keys: "#"})
	id := h.start(startBody{To: mobile, Channel: verify.ChannelCall, CallMode: verify.CallModeApprove, Locale: "de-AT"})
	h.settle()
	c := h.onlyCall()
	want := []string{cat.Text("de", prompts.Greeting), cat.Text("de", prompts.PressPound), cat.Text("de", prompts.VerifiedGoodbye)}
	wantSaid(t, c, want...)
	for _, s := range c.Said {
		if s.Language != cat.SayLanguage("de") || s.Voice != cat.SayVoice("de") || s.Voice == "" {
			t.Errorf("<Say> %+v, want language %s voice %s", s, cat.SayLanguage("de"), cat.SayVoice("de"))
		}
	}
	if v := h.get(id); v.Status != verify.StatusApproved {
		t.Fatalf("status %s", v.Status)
	}
}

func TestUndeliveredSMSBecomesAnEvent(t *testing.T) {
	h := newHarness(t)
	h.fake.SetSMSOutcome(mobile, twiliotest.SMSOutcome{Statuses: []string{"queued", "sent", "undelivered"}, ErrorCode: "30003"})
	id := h.start(startBody{To: mobile, Channel: verify.ChannelSMS})
	h.settle()
	v := h.get(id)
	ev, ok := findEvent(v, verify.EventUndelivered)
	if !ok {
		t.Fatalf("no undelivered event in %v", eventTypes(v))
	}
	if ev.ErrorCode != "30003" || ev.Channel != verify.ChannelSMS || ev.Provider != twilio.ProviderName {
		t.Fatalf("undelivered event %+v", ev)
	}
	if v.Status != verify.StatusPending {
		t.Errorf("status %s: an undelivered SMS leaves the verification pending (the code may still arrive)", v.Status)
	}
}

func TestBadSignatureChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.fake.SetPhone(mobile, twiliotest.Phone{Keys: "...", Answer: ""})
	id := h.start(startBody{To: mobile, Channel: verify.ChannelSMS})
	h.settle()
	before := h.get(id)
	statusURL := h.fake.Messages()[0].StatusCallback
	params := url.Values{"MessageSid": {"SMforged"}, "MessageStatus": {"undelivered"}, "ErrorCode": {"30003"}, "AccountSid": {accountSID}}
	// What the gateway sees behind the proxy: signing that URL is wrong.
	inner := h.gw.URL + strings.TrimPrefix(statusURL, publicURL)
	tests := []struct {
		name string
		sig  string
	}{
		{"missing", ""},
		{"garbage", "bm90IGEgc2lnbmF0dXJl"},
		{"other token", twiliotest.Signature("another-token", statusURL, params)},
		{"signed for the URL behind the proxy", twiliotest.Signature(authToken, inner, params)},
		{"signed for other params", twiliotest.Signature(authToken, statusURL, url.Values{"MessageSid": {"SMforged"}, "MessageStatus": {"delivered"}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, err := h.fake.Post(h.ctx(), statusURL, params, tt.sig)
			if err != nil || status != http.StatusForbidden {
				t.Fatalf("status %d, %v; want 403", status, err)
			}
		})
	}
	// The voice webhooks too: a forged '#' must not approve.
	for _, route := range []string{twilio.RouteVoice, twilio.RouteGather, twilio.RouteSilence, twilio.RouteCallStatus} {
		u := publicURL + twilio.PathPrefix + route + "?v=" + id
		status, _, err := h.fake.Post(h.ctx(), u, url.Values{"Digits": {"#"}, "CallSid": {"CAx"}, "CallStatus": {"completed"}}, "Zm9yZ2Vk")
		if err != nil || status != http.StatusForbidden {
			t.Errorf("%s: status %d, %v; want 403", route, status, err)
		}
	}
	after := h.get(id)
	if len(after.Events) != len(before.Events) || after.Status != before.Status {
		t.Fatalf("refused requests changed the verification: %v → %v", eventTypes(before), eventTypes(after))
	}
	// And a valid signature on the same request is accepted: the refusals
	// above were about the signature alone.
	status, _, err := h.fake.Post(h.ctx(), statusURL, params, twiliotest.Signature(authToken, statusURL, params))
	if err != nil || status != http.StatusNoContent {
		t.Fatalf("validly signed: status %d, %v", status, err)
	}
	if _, ok := findEvent(h.get(id), verify.EventUndelivered); !ok {
		t.Fatal("validly signed callback not recorded")
	}
}

func TestReplayedStatusCallbackChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.fake.SetPhone(mobile, twiliotest.Phone{Keys: "#"})
	id := h.start(startBody{To: mobile, Channel: verify.ChannelCall, CallMode: verify.CallModeApprove})
	h.settle()
	before := h.get(id)
	if before.Status != verify.StatusApproved {
		t.Fatalf("status %s", before.Status)
	}
	cbs := h.fake.Callbacks()
	if len(cbs) < 4 {
		t.Fatalf("%d status callbacks, want initiated, ringing, answered, completed", len(cbs))
	}
	for _, r := range cbs {
		if status, err := h.fake.Resend(h.ctx(), r); err != nil || status != http.StatusNoContent {
			t.Fatalf("replay %s: %d, %v", r.Params.Get("CallStatus"), status, err)
		}
	}
	// Replay the gather that approved, too: Twilio retries a webhook that
	// timed out. It must answer the same and record nothing new.
	c := h.onlyCall()
	last := c.Requests[len(c.Requests)-1]
	status, body, err := h.fake.Post(h.ctx(), last.URL, last.Params, last.Signature)
	if err != nil || status != http.StatusOK || !strings.Contains(body, verifiedGB) {
		t.Fatalf("replayed gather: %d %q, %v", status, body, err)
	}
	after := h.get(id)
	if len(after.Events) != len(before.Events) || after.Status != before.Status {
		t.Fatalf("replays changed the verification: %v → %v", eventTypes(before), eventTypes(after))
	}
}

func TestAPIKeyAuthentication(t *testing.T) {
	fake := twiliotest.New(twiliotest.Config{AccountSID: accountSID, AuthToken: authToken, APIKey: "SK0123456789abcdef", APISecret: "apisecret0123"})
	defer fake.Close()
	for _, tt := range []struct {
		name, key, secret string
		ok                bool
	}{
		{"right key", "SK0123456789abcdef", "apisecret0123", true},
		{"wrong secret", "SK0123456789abcdef", "apisecret9999", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prov, err := twilio.New(twilio.Config{
				AccountSID: accountSID, AuthToken: authToken, APIKey: tt.key, APISecret: tt.secret, From: fromNumber,
				BaseURL: fake.URL, PublicURL: publicURL, Secret: "a server secret of enough length",
			})
			if err != nil {
				t.Fatal(err)
			}
			defer prov.Close()
			_, err = prov.Send(context.Background(), verify.Message{VerificationID: "v1", To: mobile, Body: "x"})
			var re *twilio.RestError
			if tt.ok && err != nil || !tt.ok && (!errors.As(err, &re) || re.Status != http.StatusUnauthorized) {
				t.Fatalf("send: %v", err)
			}
		})
	}
}
