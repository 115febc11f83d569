package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/verigate/verigate/callback"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/verify"
)

// TestCallbackURLOnPrivateNetworks: with the callback package's Notifier,
// a start whose callback_url points at the gateway's own networks gets
// invalid_request at once, unless the operator allows private networks;
// cloud metadata and ambiguous numeric hosts are refused either way.
func TestCallbackURLOnPrivateNetworks(t *testing.T) {
	tests := []struct {
		url                     string
		refused, refusedAllowed bool
	}{
		{"https://idp.example.com/hooks/verigate", false, false},
		{"http://127.0.0.1:8080/hook", true, false},
		{"http://[::1]:8080/hook", true, false},
		{"http://localhost:8080/hook", true, false},
		{"http://10.1.2.3/hook", true, false},
		{"http://127.1/hook", true, true},
		{"http://2130706433/hook", true, true},
		{"http://169.254.169.254/latest/meta-data/", true, true},
	}
	for _, allow := range []bool{false, true} {
		n, err := callback.New(callback.Config{Secret: "callback-secret-0123456789", AllowPrivateNetworks: &allow}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		en := newEnv(t, nil, verifytest.WithConfig(func(c *verify.Config) { c.Notifier = n }))
		for _, tt := range tests {
			want := tt.refused
			if allow {
				want = tt.refusedAllowed
			}
			r := en.do("POST", "/v1/verifications", keyAcme, `{"to":"`+deMobile+`","callback_url":"`+tt.url+`"}`)
			msg, _ := r.errField(t, "message").(string)
			switch {
			case want && (r.Code != http.StatusBadRequest || r.errCode(t) != verify.CodeInvalidRequest || !strings.Contains(msg, "callback_url refused")):
				t.Errorf("allow %v, %s: %d %s, want 400 invalid_request", allow, tt.url, r.Code, r.Body)
			case !want && r.Code != http.StatusCreated && r.Code != http.StatusOK:
				t.Errorf("allow %v, %s: %d %s, want it accepted", allow, tt.url, r.Code, r.Body)
			}
		}
	}
}
