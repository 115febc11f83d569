package main

import (
	"fmt"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/testbuf"

	"github.com/verigate/verigate/internal/twiliotest"
)

// startServeWithTwilio runs `serve --dev` configured, through the
// environment, for a fake Twilio; env adds or overrides variables, args
// are serve's further arguments.
func startServeWithTwilio(t *testing.T, env map[string]string, args ...string) (fake *twiliotest.Server, base, key, addr string, stdout *testbuf.Buffer) {
	t.Helper()
	const sid, token = "AC00000000000000000000000000000001", "0123456789abcdef0123456789abcdef"
	fake = twiliotest.New(twiliotest.Config{AccountSID: sid, AuthToken: token})
	t.Cleanup(fake.Close)
	addr = freeAddr(t)
	vars := map[string]string{
		"VERIGATE_TWILIO_ACCOUNT_SID": sid,
		"VERIGATE_TWILIO_AUTH_TOKEN":  token,
		"VERIGATE_TWILIO_FROM":        "+15005550006",
		"VERIGATE_TWILIO_BASE_URL":    fake.URL,
		"VERIGATE_PUBLIC_URL":         "http://" + addr,
	}
	for k, v := range env {
		vars[k] = v
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
	base, key, stdout = startDevServe(t, addr, args...)
	return fake, base, key, addr, stdout
}

// TestServeWithTwilio proves the wiring from VERIGATE_TWILIO_* to the
// provider and the webhooks: an SMS through the fake Twilio approves with
// the code it carried, and an approve-mode call approves on '#'.
func TestServeWithTwilio(t *testing.T) {
	fake, base, key, _, stdout := startServeWithTwilio(t, map[string]string{"VERIGATE_TWILIO_KEY_TIMEOUT": "1s"})
	fake.SetPhone("+4915123456780", twiliotest.Phone{Keys: "#"})

	status, v := call(t, "POST", base+"/v1/verifications", key, `{"to":"+4915123456789","channel":"sms"}`)
	if status != http.StatusCreated {
		t.Fatalf("start sms: %d %v", status, v)
	}
	msgs := fake.Messages()
	if len(msgs) != 1 {
		t.Fatalf("fake Twilio got %d messages, want 1", len(msgs))
	}
	code := regexp.MustCompile(`\d{6}`).FindString(msgs[0].Body)
	status, c := call(t, "POST", base+"/v1/verifications/"+v["id"].(string)+"/check", key, fmt.Sprintf(`{"code":%q}`, code))
	if status != http.StatusOK || c["status"] != "approved" {
		t.Fatalf("check: %d %v", status, c)
	}
	if regexp.MustCompile(`sms to=`).MatchString(stdout.String()) {
		t.Fatal("the console provider was used although Twilio is configured")
	}

	status, v = call(t, "POST", base+"/v1/verifications", key, `{"to":"+4915123456780","channel":"call"}`)
	if status != http.StatusCreated {
		t.Fatalf("start call: %d %v", status, v)
	}
	id := v["id"].(string)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, got := call(t, "GET", base+"/v1/verifications/"+id, key, ""); got["status"] == "approved" {
			if calls := fake.Calls(); len(calls) != 1 || calls[0].To != "+4915123456780" {
				t.Fatalf("approved, but not through Twilio: the fake placed %d calls", len(calls))
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, got := call(t, "GET", base+"/v1/verifications/"+id, key, "")
	t.Fatalf("call did not approve: %v; fake errors %v", got, fake.Errors())
}
