package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/testbuf"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/config"
	"github.com/verigate/verigate/internal/prompttest"
	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/prompts"
)

const relayKey = "relay-key-0123456789abcdef"

// relayGateway builds a gateway as `serve` would with the console SMS
// provider writing to out and, when phone is set, calls going to it.
func relayGateway(t *testing.T, out io.Writer, phone *siptest.Phone) *gateway {
	t.Helper()
	cfg := config.Default()
	cfg.Secret = "a-test-secret-long-enough-for-the-hasher"
	cfg.APIKeys = "acme:" + relayKey
	cfg.SMS.Provider = "console"
	if phone != nil {
		cfg.SIP = phone.LoopbackConfig(cfg.SIP)
	}
	g, err := buildGateway(context.Background(), cfg, false, out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("buildGateway: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// relayRequest is one IdP's request, as the IdP sends it.
type relayRequest struct {
	path, contentType, body string
	header                  http.Header
}

func (r relayRequest) send(t *testing.T, g *gateway) map[string]any {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, r.path, strings.NewReader(r.body))
	req.Header.Set("Content-Type", r.contentType)
	for k, v := range r.header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	g.handler.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", r.path, rec.Code, rec.Body)
	}
	return out
}

func basicAuth(user, pass string) http.Header {
	return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}}
}

// The requests each IdP sends when configured as docs/INTEGRATION.md says.
func idpRequests(to, text, code string) map[string]relayRequest {
	return map[string]relayRequest{
		// Authentik's generic SMS provider, auth type bearer.
		"authentik": {path: "/v1/relay/authentik", contentType: "application/json",
			body:   `{"From": "", "To": "` + to + `", "Body": "` + code + `", "Message": "` + text + `"}`,
			header: http.Header{"Authorization": {"Bearer " + relayKey}}},
		// Zitadel's HTTP SMS provider, the key in the endpoint URL's user information.
		"zitadel": {path: "/v1/relay/zitadel", contentType: "application/json",
			body: `{"contextInfo":{"eventType":"user.human.phone.code.added","provider":{"id":"287","description":"Verigate"},"recipientPhoneNumber":"` + to + `"},` +
				`"templateData":{"title":"Verify phone","text":"` + text + `","url":"","buttonText":"","footerText":""},"args":{"code":"` + code + `"}}`,
			header: basicAuth("acme", relayKey)},
		// Kratos's courier http channel, form-encoded, api_key auth in X-API-Key.
		"kratos": {path: "/v1/relay/kratos", contentType: "application/x-www-form-urlencoded",
			body:   url.Values{"To": {to}, "Body": {text}}.Encode(),
			header: http.Header{"X-Api-Key": {relayKey}}},
		// The Keycloak SMS authenticator (netzbegruenung) in API mode, JSON, apiuser/apitoken.
		"keycloak": {path: "/v1/relay/keycloak", contentType: "application/json",
			body:   `{"body":"` + text + `","to":"` + to + `","from":"Keycloak"}`,
			header: basicAuth("keycloak", relayKey)},
	}
}

// TestServeRelaySMS: each IdP's request delivers its text through a
// gateway built as serve builds it, caught by the console SMS provider.
func TestServeRelaySMS(t *testing.T) {
	out := &testbuf.Buffer{}
	g := relayGateway(t, out, nil)
	for name, r := range idpRequests("+4915123456789", "Your code for Example is 318274", "318274") {
		m := r.send(t, g)
		if m["status"] != "pending" || m["channel"] != "sms" {
			t.Errorf("%s: answered %v", name, m)
		}
	}
	lines := strings.Count(out.String(), "sms to=+49151*****789 body=Your code for Example is 318274\n")
	if lines != 4 {
		t.Errorf("the console caught %d of the 4 IdPs' messages:\n%s", lines, out)
	}
}

// TestServeRelayCallReadsTheCode: an IdP that only knows SMS asks for a
// call (Authentik's request, channel=call, locale de); the test phone
// records the call, and the digit recogniser hears the IdP's code, twice,
// in German. The message then reads as delivered.
func TestServeRelayCallReadsTheCode(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "heard.wav")
	ended := make(chan siptest.PhoneCall, 1)
	phone, err := siptest.NewPhone(siptest.PhoneConfig{
		Listen: "127.0.0.1:0", Record: rec, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnCallEnd: func(pc siptest.PhoneCall) { ended <- pc },
	})
	if err != nil {
		t.Fatalf("test phone: %v", err)
	}
	t.Cleanup(func() { phone.Close() })
	g := relayGateway(t, io.Discard, phone)

	const code = "407193"
	r := idpRequests("+4915123456789", "Use this code to authenticate in authentik: "+code, code)["authentik"]
	r.path += "?channel=call&locale=de"
	m := r.send(t, g)
	if m["channel"] != "call" {
		t.Fatalf("relay answered %v, want a call", m)
	}
	var pc siptest.PhoneCall
	select {
	case pc = <-ended:
	case <-time.After(60 * time.Second):
		t.Fatal("the call did not end within 60 s")
	}
	if pc.Err != nil {
		t.Fatalf("call: %v", pc.Err)
	}
	f, err := os.Open(pc.Recording)
	if err != nil {
		t.Fatalf("recording: %v", err)
	}
	defer f.Close()
	w, err := audio.ReadWAV(f)
	if err != nil {
		t.Fatalf("recording: %v", err)
	}
	law := audio.PCMU
	if pc.Codec == audio.PCMA {
		law = audio.PCMA
	}
	cat, err := prompts.Load(prompts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recog, err := prompttest.NewRecogniser(cat, "de", law)
	if err != nil {
		t.Fatal(err)
	}
	if heard, want := recog.Recognise(w.PCM()), prompts.CodeSequence(code); !slices.Equal(prompttest.IDs(heard), want) {
		t.Fatalf("heard %v, want %v", heard, want)
	}

	id, _ := m["id"].(string)
	deadline := time.Now().Add(10 * time.Second)
	for {
		req := httptest.NewRequest(http.MethodGet, "/v1/messages/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+relayKey)
		res := httptest.NewRecorder()
		g.handler.ServeHTTP(res, req)
		var got map[string]any
		_ = json.Unmarshal(res.Body.Bytes(), &got)
		if got["status"] == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("message after the call: %d %s, want delivered", res.Code, res.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServeDevRelayExample: `serve --dev --config
// deploy/examples/idp-relay.yaml` runs on a bare machine and relays as its
// comments show: a national number read by the example's default region,
// and an IdP's request with the printed key as a Basic password.
func TestServeDevRelayExample(t *testing.T) {
	base, key, stdout := startDevServe(t, "", "--config", filepath.Join("..", "..", "deploy", "examples", "idp-relay.yaml"))
	if status, m := call(t, "POST", base+"/v1/messages", key, `{"to":"015123456789","body":"Your code is 482913"}`); status != http.StatusCreated || m["to"] != "+49151*****789" {
		t.Fatalf("relay: %d %v", status, m)
	}
	waitFor(t, stdout, regexp.MustCompile(`sms to=\+49151\*+789 body=(Your code is 482913)`))
	req, err := http.NewRequest("POST", base+"/v1/relay/kratos", strings.NewReader(url.Values{"To": {"+4915123456780"}, "Body": {"Your login code is 123987"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("dev", key)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("kratos relay: %d", res.StatusCode)
	}
	waitFor(t, stdout, regexp.MustCompile(`sms to=\+49151\*+780 body=(Your login code is 123987)`))
}
