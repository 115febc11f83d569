package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// FuzzStartBody sends arbitrary bodies to POST /v1/verifications: whatever
// arrives, the answer is a JSON error or a started verification, never a
// failure of the gateway itself.
func FuzzStartBody(f *testing.F) {
	for _, seed := range []string{
		`{"to":"+4915123456789"}`,
		`{"to":"+4915123456789","channel":"call","call_mode":"code","locale":"de","roaming":true}`,
		`{"to":"0151 23456789","client_ip":"2001:db8::1","callback_url":"https://idp.example/h"}`,
		`{"to":1}`, `[]`, `null`, `{"to":"+49"} {}`, `{"to":"\u0000"}`, `{"to":"+49151234567890123456789"}`,
		`{"channel":"sms","channel":"call","to":"+4915123456789"}`,
	} {
		f.Add(seed)
	}
	en := newEnv(f, nil)
	f.Fuzz(func(t *testing.T, body string) {
		en.t = t
		req := en.do("POST", "/v1/verifications", keyAcme, body)
		switch req.Code {
		case http.StatusCreated, http.StatusOK:
		case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusTooManyRequests:
			if req.errCode(t) == "" {
				t.Fatalf("%d without an error code: %s", req.Code, req.Body)
			}
		default:
			t.Fatalf("body %q answered %d %s", body, req.Code, req.Body)
		}
		if !json.Valid(req.Body) {
			t.Fatalf("answer is not JSON: %s", req.Body)
		}
	})
}

// FuzzRelayBody sends arbitrary bodies, as JSON and as forms, to every
// IdP relay: the answer is a relayed message or a JSON error, never a
// failure of the gateway, and a refused body sends nothing.
func FuzzRelayBody(f *testing.F) {
	for _, seed := range []string{
		`{"From":"","To":"+4915123456789","Body":"482913","Message":"Use this code to authenticate in authentik: 482913"}`,
		`{"contextInfo":{"recipientPhoneNumber":"+4915123456789"},"templateData":{"text":"code 1234"},"args":{"code":"1234"}}`,
		`{"to":"+4915123456789","body":"code 1234","channel":"call"}`, `To=%2B4915123456789&Body=code+1234`,
		`{"to":["+4915123456789"],"body":"x"}`, `{"contextInfo":[]}`, `[]`, `null`, `{"To":1}`, `%zz`,
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	en := newEnv(f, nil)
	f.Fuzz(func(t *testing.T, body string, form bool) {
		en.t = t
		ct := header{"Content-Type", "application/json"}
		if form {
			ct.v = "application/x-www-form-urlencoded"
		}
		for _, idp := range []string{"authentik", "zitadel", "kratos", "keycloak"} {
			before := len(en.svc.Sender.Messages()) + len(en.svc.Caller.Calls())
			res := en.do("POST", "/v1/relay/"+idp, "", body, ct, header{"X-API-Key", keyAcme})
			after := len(en.svc.Sender.Messages()) + len(en.svc.Caller.Calls())
			switch res.Code {
			case http.StatusCreated:
				if after != before+1 {
					t.Fatalf("%s: 201 with %d sends", idp, after-before)
				}
			case http.StatusBadRequest, http.StatusForbidden, http.StatusUnprocessableEntity, http.StatusTooManyRequests, http.StatusRequestEntityTooLarge:
				if res.errCode(t) == "" || after != before {
					t.Fatalf("%s: %d %s with %d sends", idp, res.Code, res.Body, after-before)
				}
			default:
				t.Fatalf("%s: body %q answered %d %s", idp, body, res.Code, res.Body)
			}
		}
	})
}
