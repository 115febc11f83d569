package api_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/verigate/verigate/verify"
)

// TestMessages: POST /v1/messages relays the body as written and answers
// the message, which GET /v1/messages/{id} reads back for its tenant only;
// a message is not a verification, nor a verification a message.
func TestMessages(t *testing.T) {
	en := newEnv(t, nil)
	res := en.do("POST", "/v1/messages", keyAcme, `{"to":"+4915123456789","body":"Your login code is 482913"}`)
	if res.Code != http.StatusCreated {
		t.Fatalf("relay: %d %s", res.Code, res.Body)
	}
	m := res.json(t)
	id, _ := m["id"].(string)
	if m["status"] != "pending" || m["channel"] != "sms" || m["to"] != "+49151*****789" {
		t.Errorf("relay answered %v", m)
	}
	if strings.Contains(string(res.Body), "482913") {
		t.Errorf("the answer shows the body: %s", res.Body)
	}
	msgs := en.svc.Sender.Messages()
	if len(msgs) != 1 || msgs[0].Body != "Your login code is 482913" {
		t.Fatalf("sent %+v", msgs)
	}
	if r := en.do("GET", "/v1/messages/"+id, keyAcme, ""); r.Code != http.StatusOK || r.json(t)["id"] != id {
		t.Errorf("GET message: %d %s", r.Code, r.Body)
	}
	for _, tc := range []struct{ path, key string }{
		{"/v1/messages/" + id, keyGlobex},
		{"/v1/verifications/" + id, keyAcme},
	} {
		if r := en.do("GET", tc.path, tc.key, ""); r.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", tc.path, r.Code)
		}
	}
	vid, _ := en.start(keyAcme, `{"to":"+4915123456780"}`)
	if r := en.do("GET", "/v1/messages/"+vid, keyAcme, ""); r.Code != http.StatusNotFound {
		t.Errorf("GET a verification as a message: %d, want 404", r.Code)
	}
}

func TestMessagesRefused(t *testing.T) {
	en := newEnv(t, nil)
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"no body", `{"to":"+4915123456789"}`, http.StatusBadRequest},
		{"too long", `{"to":"+4915123456789","body":"` + strings.Repeat("a", verify.MaxMessageBody+1) + `"}`, http.StatusBadRequest},
		{"call without a code", `{"to":"+4915123456789","body":"hello","channel":"call"}`, http.StatusBadRequest},
		{"unknown field", `{"to":"+4915123456789","body":"1234","call_mode":"approve"}`, http.StatusBadRequest},
		{"bad locale", `{"to":"+4915123456789","body":"1234","locale":"d e"}`, http.StatusBadRequest},
	} {
		if r := en.do("POST", "/v1/messages", keyAcme, tc.body); r.Code != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.Code, r.Body, tc.status)
		}
	}
	if r := en.do("POST", "/v1/messages", "", `{"to":"+4915123456789","body":"1234"}`); r.Code != http.StatusUnauthorized {
		t.Errorf("no key: %d", r.Code)
	}
}

// TestRelayShapes sends each IdP's request as the IdP sends it (body,
// content type and authentication) and checks what reached the SMS
// provider or the caller.
func TestRelayShapes(t *testing.T) {
	basic := func(user, pass string) header {
		return header{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
	}
	form := header{"Content-Type", "application/x-www-form-urlencoded"}
	for _, tc := range []struct {
		name, path, body string
		headers          []header
		wantBody         string // the SMS sent; "" when a call is wanted
		wantCode         string // the code a call reads
	}{{
		name: "authentik bearer", path: "/v1/relay/authentik",
		body:     `{"From":"","To":"+4915123456789","Body":"482913","Message":"Use this code to authenticate in authentik: 482913"}`,
		headers:  []header{{"Authorization", "Bearer " + keyAcme}},
		wantBody: "Use this code to authenticate in authentik: 482913",
	}, {
		name: "authentik basic, call", path: "/v1/relay/authentik?channel=call&locale=de",
		body:     `{"From":"Verigate","To":"+4915123456789","Body":"482913","Message":"Use this code to authenticate in authentik: 482913"}`,
		headers:  []header{basic("authentik", keyAcme)},
		wantCode: "482913",
	}, {
		name: "zitadel", path: "/v1/relay/zitadel",
		body: `{"contextInfo":{"eventType":"user.human.phone.code.added","provider":{"id":"1","description":"verigate"},"recipientPhoneNumber":"+4915123456789"},` +
			`"templateData":{"title":"","preHeader":"","subject":"","greeting":"","text":"Your verification code is 7GQ4 1234","url":"","buttonText":""},` +
			`"args":{"code":"1234","lastPhone":"+4915123456789"}}`,
		headers:  []header{basic("zitadel", keyAcme)},
		wantBody: "Your verification code is 7GQ4 1234",
	}, {
		name: "kratos json api_key", path: "/v1/relay/kratos",
		body:     `{"to":"+4915123456789","body":"Your verification code is: 556677"}`,
		headers:  []header{{"X-API-Key", keyAcme}},
		wantBody: "Your verification code is: 556677",
	}, {
		name: "kratos form basic", path: "/v1/relay/kratos",
		body:     url.Values{"To": {"+4915123456789"}, "Body": {"Your login code is: 123987"}}.Encode(),
		headers:  []header{form, basic("kratos", keyAcme)},
		wantBody: "Your login code is: 123987",
	}, {
		name: "keycloak json, token in header", path: "/v1/relay/keycloak?channel=auto",
		body:     `{"body":"Your SMS code is 884422 and is valid for 5 minutes.","to":"+4915123456789","from":"Keycloak"}`,
		headers:  []header{{"Authorization", "Bearer " + keyAcme}},
		wantBody: "Your SMS code is 884422 and is valid for 5 minutes.",
	}, {
		name: "keycloak form, basic, call", path: "/v1/relay/keycloak?channel=call",
		body:     url.Values{"body": {"Your SMS code is 884422 and is valid for 5 minutes."}, "to": {"+4915123456789"}, "from": {"Keycloak"}}.Encode(),
		headers:  []header{form, basic("keycloak", keyAcme)},
		wantCode: "884422",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			en := newEnv(t, nil)
			res := en.do("POST", tc.path, "", tc.body, tc.headers...)
			if res.Code != http.StatusCreated {
				t.Fatalf("%d %s", res.Code, res.Body)
			}
			id, _ := res.json(t)["id"].(string)
			if tc.wantBody != "" {
				msgs := en.svc.Sender.Messages()
				if len(msgs) != 1 || msgs[0].Body != tc.wantBody || msgs[0].To != "+4915123456789" || msgs[0].VerificationID != id {
					t.Fatalf("sent %+v, want %q", msgs, tc.wantBody)
				}
				return
			}
			calls := en.svc.Caller.Calls()
			if len(calls) != 1 || calls[0].Code != tc.wantCode || calls[0].Mode != verify.CallModeCode {
				t.Fatalf("calls %+v, want one reading %s", calls, tc.wantCode)
			}
		})
	}
}

func TestRelayRefused(t *testing.T) {
	en := newEnv(t, nil)
	for _, tc := range []struct {
		name, path, body string
		headers          []header
		status           int
	}{
		{"no key", "/v1/relay/kratos", `{"to":"+4915123456789","body":"1234"}`, nil, http.StatusUnauthorized},
		{"wrong key", "/v1/relay/kratos", `{"to":"+4915123456789","body":"1234"}`, []header{{"X-API-Key", "nope-nope-nope-nope"}}, http.StatusUnauthorized},
		{"unknown idp", "/v1/relay/okta", `{"to":"+4915123456789","body":"1234"}`, []header{{"X-API-Key", keyAcme}}, http.StatusNotFound},
		{"authentik without To", "/v1/relay/authentik", `{"Body":"1234"}`, []header{{"X-API-Key", keyAcme}}, http.StatusBadRequest},
		{"zitadel not JSON", "/v1/relay/zitadel", `text`, []header{{"X-API-Key", keyAcme}}, http.StatusBadRequest},
		{"generic without body", "/v1/relay/keycloak", `{"to":"+4915123456789"}`, []header{{"X-API-Key", keyAcme}}, http.StatusBadRequest},
	} {
		if r := en.do("POST", tc.path, "", tc.body, tc.headers...); r.Code != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.Code, r.Body, tc.status)
		}
	}
	if n := len(en.svc.Sender.Messages()); n != 0 {
		t.Errorf("%d messages sent for refused relays", n)
	}
}

// TestMessageIsNotAVerification: the verification endpoints that change
// state find no relayed message.
func TestMessageIsNotAVerification(t *testing.T) {
	en := newEnv(t, nil)
	res := en.do("POST", "/v1/messages", keyAcme, `{"to":"+4915123456789","body":"code 4711"}`)
	id, _ := res.json(t)["id"].(string)
	for _, tc := range []struct{ path, body string }{
		{"/v1/verifications/" + id + "/cancel", ""},
		{"/v1/verifications/" + id + "/check", `{"code":"4711"}`},
	} {
		if r := en.do("POST", tc.path, keyAcme, tc.body); r.Code != http.StatusNotFound {
			t.Errorf("POST %s: %d %s, want 404", tc.path, r.Code, r.Body)
		}
	}
	if r := en.do("GET", "/v1/messages/"+id, keyAcme, ""); r.json(t)["status"] != "pending" {
		t.Errorf("the message after the refused calls: %s", r.Body)
	}
}
