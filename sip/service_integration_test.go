package sip_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/internal/prompttest"
	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

// newService builds a verify.Service (verifytest's, on the in-memory store
// and limiter) whose calls go through a Caller to phone.
func newService(t *testing.T, phone *siptest.Phone) (*verifytest.Service, *prompts.Catalogue) {
	t.Helper()
	cat, err := prompts.Load(prompts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The Service is built with the Caller, and the Caller reports to the
	// Service once it exists.
	caller := newCaller(t, nil, phone.LoopbackTrunk(), sip.Options{Audio: sip.PromptAudio{Catalogue: cat}, KeyTimeout: 5 * time.Second})
	svc := verifytest.NewService(t, verifytest.WithConfig(func(c *verify.Config) {
		c.Callers = map[string]verify.Caller{sip.Provider: caller}
		c.DefaultCaller = sip.Provider
	}))
	caller.ReportTo(svc)
	return svc, cat
}

func waitStatus(t *testing.T, svc *verifytest.Service, id string, want verify.Status) *verify.Verification {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := svc.Get(context.Background(), "tenant", id)
		if err != nil {
			t.Fatal(err)
		}
		if v.Status == want {
			return v
		}
		if v.Status.Final() || time.Now().After(deadline) {
			var types []verify.EventType
			for _, ev := range v.Events {
				types = append(types, ev.Type)
			}
			t.Fatalf("status %s (%s), want %s; events %v", v.Status, v.Reason, want, types)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func startCall(t *testing.T, svc *verifytest.Service, mode verify.CallMode) *verify.Verification {
	t.Helper()
	v, err := svc.Start(context.Background(), verify.StartRequest{Tenant: "tenant", To: "+4915123456789", Channel: verify.ChannelCall, CallMode: mode, Locale: "en"})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestServiceApprovedOverSIP(t *testing.T) {
	phone, _ := newPhone(t, siptest.PhoneConfig{Press: "#", After: greetingLength(t) + time.Second, Ring: 100 * time.Millisecond})
	svc, _ := newService(t, phone)
	v := waitStatus(t, svc, startCall(t, svc, verify.CallModeApprove).ID, verify.StatusApproved)
	var types []verify.EventType
	for _, ev := range v.Events {
		types = append(types, ev.Type)
	}
	if !hasInOrder(types, verify.EventRinging, verify.EventAnswered, verify.EventKeyPressed, verify.EventCallApproved) {
		t.Errorf("history %v", types)
	}
}

func TestServiceFraudOverSIP(t *testing.T) {
	phone, _ := newPhone(t, siptest.PhoneConfig{Press: "0#", After: greetingLength(t) + time.Second, KeyGap: 300 * time.Millisecond})
	svc, _ := newService(t, phone)
	got := waitStatus(t, svc, startCall(t, svc, verify.CallModeApprove).ID, verify.StatusDenied)
	if got.Reason != string(verify.EventFraudReported) {
		t.Errorf("reason %q, want fraud_reported", got.Reason)
	}
	// The number is blocked now.
	if _, err := svc.Start(context.Background(), verify.StartRequest{Tenant: "tenant", To: "+4915123456789", Channel: verify.ChannelCall}); err == nil {
		t.Error("a fraud-reported number could be called again")
	}
}

func TestServiceHangUpFailsOverSIP(t *testing.T) {
	phone, _ := newPhone(t, siptest.PhoneConfig{HangupAfter: 700 * time.Millisecond})
	svc, _ := newService(t, phone)
	waitStatus(t, svc, startCall(t, svc, verify.CallModeApprove).ID, verify.StatusFailed)
}

// TestServiceCodeModeOverSIP runs the code-mode flow end to end: the call
// reads the code, the phone records it, the test recognises the digits in
// the recording (as a person would hear them) and checks that code.
func TestServiceCodeModeOverSIP(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "heard.wav")
	phone, ended := newPhone(t, siptest.PhoneConfig{Record: rec})
	svc, cat := newService(t, phone)
	v := startCall(t, svc, verify.CallModeCode)
	pc := waitCall(t, ended, 60*time.Second)
	f, err := os.Open(pc.Recording)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := audio.ReadWAV(f)
	if err != nil {
		t.Fatal(err)
	}
	law := audio.PCMU
	if pc.Codec == audio.PCMA {
		law = audio.PCMA
	}
	r, err := prompttest.NewRecogniser(cat, "en", law)
	if err != nil {
		t.Fatal(err)
	}
	matches := r.Recognise(w.PCM())
	var code strings.Builder
	for _, id := range prompttest.IDs(matches) {
		if id == prompts.CodeAgain {
			break
		}
		if d, ok := strings.CutPrefix(string(id), "digit_"); ok {
			code.WriteString(d)
		}
	}
	if want := prompts.CodeSequence(code.String()); code.Len() == 0 || !slices.Equal(prompttest.IDs(matches), want) {
		t.Fatalf("heard %v, want the code read twice", matches)
	}
	got, err := svc.Check(context.Background(), "tenant", v.ID, code.String())
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != verify.StatusApproved {
		t.Fatalf("checking the code heard on the call gave %s", got.Status)
	}
}
