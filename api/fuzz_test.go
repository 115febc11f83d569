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
