package twiliotest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/twilio/twilio-go/client"

	"github.com/verigate/verigate/internal/twiliotest"
)

const (
	sid   = "AC0123456789abcdef0123456789abcdef"
	token = "0123456789abcdef0123456789abcdef"
)

// app is a TwiML application: /doc answers with one document, /action
// and /next record what they were posted and hang up. It checks every
// request's signature with twilio-go's validator, so the fake is proved to
// sign as Twilio does.
type app struct {
	t       *testing.T
	srv     *httptest.Server
	doc     string
	mu      sync.Mutex
	actions []url.Values
	paths   []string
}

func newApp(t *testing.T, doc string) *app {
	a := &app{t: t, doc: doc}
	v := client.NewRequestValidator(token)
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		params := map[string]string{}
		for k, vs := range r.PostForm {
			params[k] = vs[0]
		}
		if !v.Validate(a.srv.URL+r.URL.RequestURI(), params, r.Header.Get("X-Twilio-Signature")) {
			t.Errorf("%s: signature does not validate", r.URL)
		}
		a.mu.Lock()
		a.paths = append(a.paths, r.URL.Path)
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/xml")
		_, posted := r.PostForm["Digits"]
		switch {
		case r.URL.Path == "/doc" && !posted:
			w.Write([]byte(a.doc))
		case r.URL.Path == "/status":
			w.WriteHeader(http.StatusNoContent)
		default:
			a.mu.Lock()
			a.actions = append(a.actions, r.PostForm)
			a.mu.Unlock()
			w.Write([]byte(`<Response><Say>posted</Say><Hangup/></Response>`))
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// create posts form to the fake's REST resource ("Messages", "Calls") as
// the account, and returns the HTTP status.
func create(t *testing.T, fake *twiliotest.Server, resource string, form url.Values) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, fake.URL+"/2010-04-01/Accounts/"+sid+"/"+resource+".json", strings.NewReader(form.Encode()))
	req.SetBasicAuth(sid, token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// call asks the fake to place a call to the app and waits for it to end.
func call(t *testing.T, fake *twiliotest.Server, a *app, keys string) twiliotest.Call {
	t.Helper()
	fake.SetPhone("+4915123456789", twiliotest.Phone{Keys: keys})
	form := url.Values{"To": {"+4915123456789"}, "From": {"+15005550006"}, "Url": {a.srv.URL + "/doc"},
		"StatusCallback": {a.srv.URL + "/status"}}
	if status := create(t, fake, "Calls", form); status != http.StatusCreated {
		t.Fatalf("create call: HTTP %d", status)
	}
	fake.Wait()
	for _, err := range fake.Errors() {
		t.Fatalf("fake: %v", err)
	}
	calls := fake.Calls()
	return calls[len(calls)-1]
}

func TestGatherAsTwilioDocumentsIt(t *testing.T) {
	const after = `<Say>fell through</Say>`
	tests := []struct {
		name       string
		gather     string
		keys       string
		wantPosted bool
		wantDigits string
		wantPath   string
	}{
		{"finish key is left out of Digits", `<Gather action="/action"/>`, "12#", true, "12", "/action"},
		{"only the finish key falls through", `<Gather action="/action"/>`, "#", false, "", ""},
		{"timeout with no key falls through", `<Gather action="/action"/>`, ".", false, "", ""},
		{"no keys at all falls through", `<Gather action="/action"/>`, "", false, "", ""},
		{"timeout after keys posts them", `<Gather action="/action"/>`, "4.", true, "4", "/action"},
		{"numDigits ends the gather", `<Gather action="/action" numDigits="2"/>`, "123", true, "12", "/action"},
		{"another finish key", `<Gather action="/action" finishOnKey="*"/>`, "9#*", true, "9#", "/action"},
		{"finishOnKey empty makes # a key", `<Gather action="/action" finishOnKey="" numDigits="1"/>`, "#", true, "#", "/action"},
		{"actionOnEmptyResult posts on timeout", `<Gather action="/action" actionOnEmptyResult="true"/>`, ".", true, "", "/action"},
		{"actionOnEmptyResult posts a lone finish key", `<Gather action="/action" actionOnEmptyResult="true"/>`, "#", true, "", "/action"},
		{"action defaults to the document URL", `<Gather numDigits="1"/>`, "7", true, "7", "/doc"},
		{"relative action resolves", `<Gather action="next?x=1" numDigits="1"/>`, "7", true, "7", "/next"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := twiliotest.New(twiliotest.Config{AccountSID: sid, AuthToken: token})
			defer fake.Close()
			a := newApp(t, `<?xml version="1.0" encoding="UTF-8"?><Response>`+tt.gather+after+`</Response>`)
			c := call(t, fake, a, tt.keys)
			if len(c.Gathers) != 1 {
				t.Fatalf("%d gathers", len(c.Gathers))
			}
			g := c.Gathers[0]
			if g.Posted != tt.wantPosted || g.Digits != tt.wantDigits {
				t.Fatalf("gather posted %v digits %q; want %v %q", g.Posted, g.Digits, tt.wantPosted, tt.wantDigits)
			}
			heard := ""
			for _, s := range c.Said {
				heard += s.Text + ";"
			}
			if tt.wantPosted {
				if len(a.actions) != 1 || a.actions[0].Get("Digits") != tt.wantDigits || a.paths[1] != tt.wantPath {
					t.Fatalf("app got %v at %v", a.actions, a.paths)
				}
				if heard != "posted;" {
					t.Fatalf("heard %q: the verbs after a posted gather must be unreachable", heard)
				}
			} else if len(a.actions) != 0 || heard != "fell through;" {
				t.Fatalf("app got %v, heard %q: want a fall-through", a.actions, heard)
			}
			if c.Status != "completed" {
				t.Errorf("final status %q", c.Status)
			}
		})
	}
}

func TestGatherDefaults(t *testing.T) {
	fake := twiliotest.New(twiliotest.Config{AccountSID: sid, AuthToken: token})
	defer fake.Close()
	a := newApp(t, `<Response><Gather><Say>x</Say></Gather></Response>`)
	g := call(t, fake, a, "").Gathers[0]
	if g.FinishOnKey != "#" || g.FinishOnKeySet || g.Timeout != 5 || g.NumDigits != 0 || g.Input != "dtmf" {
		t.Fatalf("defaults %+v: want finishOnKey #, timeout 5, unlimited digits, dtmf", g)
	}
}

func TestStatusCallbacks(t *testing.T) {
	fake := twiliotest.New(twiliotest.Config{AccountSID: sid, AuthToken: token})
	defer fake.Close()
	a := newApp(t, `<Response><Hangup/></Response>`)
	call(t, fake, a, "")
	var got []string
	for _, cb := range fake.Callbacks() {
		got = append(got, cb.Params.Get("CallStatus"))
	}
	// No StatusCallbackEvent given: Twilio posts only the final status.
	if strings.Join(got, ",") != "completed" {
		t.Fatalf("callbacks %v", got)
	}
}

func TestRESTAuthAndErrors(t *testing.T) {
	fake := twiliotest.New(twiliotest.Config{AccountSID: sid, AuthToken: token})
	defer fake.Close()
	post := func(user, pass, path string, form url.Values) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, fake.URL+path, strings.NewReader(form.Encode()))
		req.SetBasicAuth(user, pass)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	msgs := "/2010-04-01/Accounts/" + sid + "/Messages.json"
	ok := url.Values{"To": {"+4915123456789"}, "From": {"+15005550006"}, "Body": {"hi"}}
	tests := []struct {
		name       string
		user, pass string
		path       string
		form       url.Values
		wantStatus int
		wantCode   float64
	}{
		{"wrong token", sid, "nope", msgs, ok, 401, 20003},
		{"other account", sid, token, "/2010-04-01/Accounts/ACffff/Messages.json", ok, 404, 20404},
		{"no To", sid, token, msgs, url.Values{"From": {"+15005550006"}, "Body": {"x"}}, 400, 21604},
		{"no From", sid, token, msgs, url.Values{"To": {"+4915123456789"}, "Body": {"x"}}, 400, 21603},
		{"no Body", sid, token, msgs, url.Values{"To": {"+4915123456789"}, "From": {"+15005550006"}}, 400, 21602},
		{"created", sid, token, msgs, ok, 201, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(tt.user, tt.pass, tt.path, tt.form)
			if status != tt.wantStatus {
				t.Fatalf("HTTP %d %v, want %d", status, body, tt.wantStatus)
			}
			if tt.wantCode != 0 && (body["code"] != tt.wantCode || body["status"] != float64(tt.wantStatus) || body["message"] == "") {
				t.Fatalf("error body %v", body)
			}
			if tt.wantCode == 0 && (body["status"] != "queued" || !strings.HasPrefix(body["sid"].(string), "SM")) {
				t.Fatalf("message body %v", body)
			}
		})
	}
	if n := len(fake.Messages()); n != 1 {
		t.Fatalf("%d messages recorded, want 1", n)
	}
}

// TestMessagesAndCallsTo: the per-number views hold that number's
// messages and calls only, in order.
func TestMessagesAndCallsTo(t *testing.T) {
	fake := twiliotest.New(twiliotest.Config{AccountSID: sid, AuthToken: token})
	defer fake.Close()
	for _, m := range []struct{ to, body string }{{"+4915123456789", "one"}, {"+4915123456780", "two"}, {"+4915123456789", "three"}} {
		if status := create(t, fake, "Messages", url.Values{"To": {m.to}, "From": {"+15005550006"}, "Body": {m.body}}); status != http.StatusCreated {
			t.Fatalf("create message: HTTP %d", status)
		}
	}
	var bodies []string
	for _, m := range fake.MessagesTo("+4915123456789") {
		bodies = append(bodies, m.Body)
	}
	if strings.Join(bodies, ",") != "one,three" {
		t.Errorf("MessagesTo: %v, want one,three", bodies)
	}
	c := call(t, fake, newApp(t, `<Response><Say>hello</Say></Response>`), "")
	if got := fake.CallsTo("+4915123456789"); len(got) != 1 || got[0].Sid != c.Sid || len(got[0].Said) != 1 {
		t.Errorf("CallsTo: %+v, want the one call", got)
	}
	if got := fake.CallsTo("+4915123456780"); len(got) != 0 {
		t.Errorf("CallsTo another number: %d calls", len(got))
	}
}
