package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/twiliotest"
)

// TestServeWithTwilioPlay proves VERIGATE_TWILIO_VOICE_MODE=play reaches
// the webhooks and that their one Register call also serves the clips:
// the phone hears <Play> only, fetches every clip from the gateway, and
// approves with '#'.
func TestServeWithTwilioPlay(t *testing.T) {
	fake, base, key, addr, _ := startServeWithTwilio(t, map[string]string{"VERIGATE_TWILIO_VOICE_MODE": "play"})
	fake.SetPhone("+4915123456781", twiliotest.Phone{Keys: "#"})
	status, v := call(t, "POST", base+"/v1/verifications", key, `{"to":"+4915123456781","channel":"call","locale":"de"}`)
	if status != http.StatusCreated {
		t.Fatalf("start call: %d %v", status, v)
	}
	id := v["id"].(string)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, got := call(t, "GET", base+"/v1/verifications/"+id, key, ""); got["status"] == "approved" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	fake.Wait()
	if errs := fake.Errors(); len(errs) > 0 {
		t.Fatalf("fake Twilio: %v", errs)
	}
	calls := fake.Calls()
	if len(calls) != 1 {
		t.Fatalf("fake Twilio placed %d calls, want 1", len(calls))
	}
	c := calls[0]
	if len(c.Said) != 0 || len(c.Plays) != 3 {
		t.Fatalf("the phone heard %d <Say> and %d <Play>, want 3 clips only", len(c.Said), len(c.Plays))
	}
	for _, p := range c.Plays {
		if !strings.HasPrefix(p.URL, "http://"+addr+"/twilio/audio/de/") || len(p.Data) == 0 {
			t.Errorf("<Play> %s: %d samples", p.URL, len(p.Data))
		}
	}
	if _, got := call(t, "GET", base+"/v1/verifications/"+id, key, ""); got["status"] != "approved" {
		t.Fatalf("call did not approve: %v", got)
	}
}
