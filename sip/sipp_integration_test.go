package sip_test

import (
	"context"
	"crypto/md5"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/peertest"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

// startSippPhone runs sipp as a phone taking one call by scenario, a file
// in testdata. A missing sipp fails the test: scripts/test.sh installs it.
func startSippPhone(t *testing.T, scenario string) *peertest.Sipp {
	t.Helper()
	return peertest.StartSippUAS(t, peertest.SippUASOptions{Scenario: filepath.Join("testdata", scenario)})
}

// waitSipp waits for sipp to finish its one call and fails the test
// unless the call followed the scenario (sipp exits 0 only then).
func waitSipp(t *testing.T, s *peertest.Sipp) {
	t.Helper()
	if err := s.Wait(45 * time.Second); err != nil {
		t.Fatalf("sipp scenario failed: %v", err)
	}
}

func TestSippApprove(t *testing.T) {
	s := startSippPhone(t, "sipp_uas_pound.xml")
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "sipp", Address: s.Addr}, sip.Options{KeyTimeout: 5 * time.Second})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventCompleted, 30*time.Second)
	waitSipp(t, s)
	if !hasInOrder(rep.types("v1"), verify.EventRinging, verify.EventAnswered, verify.EventKeyPressed, verify.EventCallApproved, verify.EventCompleted) {
		t.Fatalf("events %v, want ringing, answered, key_pressed, call_approved, completed", rep.types("v1"))
	}
	// sipp's pcap carries one '#' in many packets, three of them end packets.
	if got := keys(rep.all("v1")); got != "#" {
		t.Errorf("keys reported %q, want exactly one #", got)
	}
}

func TestSippBusy(t *testing.T) {
	s := startSippPhone(t, "sipp_uas_busy.xml")
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "sipp", Address: s.Addr}, sip.Options{})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventBusy, 20*time.Second)
	waitSipp(t, s) // the scenario ends only after our ACK
	evs := rep.all("v1")
	if len(evs) != 1 || evs[0].ErrorCode != "486" {
		t.Errorf("events %+v, want one busy with 486", evs)
	}
	waitIdle(t, caller, 10*time.Second) // the call gives its rtp port back
}

func TestSippNoAnswerCancels(t *testing.T) {
	s := startSippPhone(t, "sipp_uas_no_answer.xml")
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "sipp", Address: s.Addr}, sip.Options{RingTimeout: time.Second})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventNoAnswer, 20*time.Second)
	// sipp's scenario completes only when it received our CANCEL (and the
	// ACK of its 487).
	waitSipp(t, s)
	if types := rep.types("v1"); !slices.Equal(types, []verify.EventType{verify.EventRinging, verify.EventNoAnswer}) {
		t.Errorf("events %v, want ringing, no_answer", types)
	}
	waitIdle(t, caller, 10*time.Second) // the call gives its rtp port back
}

func TestSippStrangerRejected(t *testing.T) {
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "nowhere", Address: "127.0.0.1:9"}, sip.Options{})
	s := peertest.StartSipp(t, peertest.SippOptions{Scenario: filepath.Join("testdata", "sipp_uac_stranger.xml"), Target: caller.Addr().String(), Service: "verigate"})
	// The scenario completes only on 403 to its INVITE and 481 to its BYE.
	waitSipp(t, s)
	if n := caller.ActiveCalls(); n != 0 {
		t.Errorf("%d calls active after a stranger's INVITE", n)
	}
	if n := caller.RTPPortsInUse(); n != 0 {
		t.Errorf("%d rtp ports taken by a stranger's INVITE", n)
	}
	rep.mu.Lock()
	defer rep.mu.Unlock()
	if len(rep.events) != 0 {
		t.Errorf("events reported for a stranger: %v", rep.events)
	}
}

func TestSippDigestAuth(t *testing.T) {
	for _, scenario := range []string{"sipp_uas_digest.xml", "sipp_uas_digest_proxy.xml"} {
		t.Run(scenario, func(t *testing.T) { testDigest(t, scenario) })
	}
}

// testDigest places a call to a sipp phone that challenges it (401 or
// 407) and checks the credentials.
func testDigest(t *testing.T, scenario string) {
	s := startSippPhone(t, scenario)
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "pbx", Address: s.Addr, Username: "alice", Password: "s3cret"}, sip.Options{KeyTimeout: 5 * time.Second})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventCompleted, 30*time.Second)
	waitSipp(t, s) // fails unless sipp found the credentials valid
	if !slices.Contains(rep.types("v1"), verify.EventCallApproved) {
		t.Fatalf("events %v, want call_approved", rep.types("v1"))
	}
	// sipp checks Authorization itself; Proxy-Authorization is checked here.
	if strings.Contains(scenario, "proxy") {
		checkProxyDigest(t, s.Messages(), "alice", "verigate.test", "s3cret")
	}
}

// checkProxyDigest finds the Proxy-Authorization the gateway sent and
// checks its RFC 2617 response (MD5, no qop) against the password.
func checkProxyDigest(t *testing.T, log, user, realm, password string) {
	t.Helper()
	var hdr string
	for _, line := range strings.Split(log, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Proxy-Authorization: Digest "); ok {
			hdr = v
		}
	}
	if hdr == "" {
		t.Fatal("no Proxy-Authorization in the second INVITE")
	}
	params := map[string]string{}
	for _, kv := range strings.Split(hdr, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		params[k] = strings.Trim(v, `"`)
	}
	md5hex := func(s string) string { return fmt.Sprintf("%x", md5.Sum([]byte(s))) }
	want := md5hex(md5hex(user+":"+realm+":"+password) + ":" + params["nonce"] + ":" + md5hex("INVITE:"+params["uri"]))
	if params["username"] != user || params["realm"] != realm || params["response"] != want {
		t.Errorf("Proxy-Authorization %q: want username %s, realm %s, response %s", hdr, user, realm, want)
	}
}

func TestSippDigestWrongPassword(t *testing.T) {
	s := startSippPhone(t, "sipp_uas_digest_refused.xml")
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "pbx", Address: s.Addr, Username: "alice", Password: "wrong"}, sip.Options{})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventFailed, 20*time.Second)
	waitSipp(t, s)
	evs := rep.all("v1")
	if len(evs) != 1 || evs[0].ErrorCode != "401" || !strings.Contains(evs[0].Detail, "authentication failed") {
		t.Fatalf("events %+v, want one failed (401, authentication failed)", evs)
	}
	if strings.Contains(evs[0].Detail, "wrong") {
		t.Fatal("the event shows the password")
	}
}

func TestSippSilentPhoneTimesOut(t *testing.T) {
	s := startSippPhone(t, "sipp_uas_mute.xml")
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "sipp", Address: s.Addr}, sip.Options{SilenceTimeout: time.Second, KeyTimeout: time.Minute})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventFailed, 20*time.Second)
	waitSipp(t, s) // completes only on the gateway's BYE
	if d, _ := detail(rep.all("v1"), verify.EventFailed); d != "no rtp from the phone" {
		t.Errorf("failed detail %q, want no rtp from the phone", d)
	}
}

// TestSippEarlyMediaPoundDoesNotApprove: the phone answers 183 with early
// media, plays sipp's RFC 4733 '#' in it, answers 200 OK after, and then
// says nothing. The '#' waited in the gateway's RTP socket; it must not
// approve, nor count as a key: the call asks three times and fails.
func TestSippEarlyMediaPoundDoesNotApprove(t *testing.T) {
	s := startSippPhone(t, "sipp_uas_early_pound.xml")
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "sipp", Address: s.Addr}, sip.Options{KeyTimeout: time.Second, SilenceTimeout: 25 * time.Second})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventCompleted, 40*time.Second)
	waitSipp(t, s)
	types := rep.types("v1")
	if slices.Contains(types, verify.EventCallApproved) || slices.Contains(types, verify.EventKeyPressed) {
		t.Fatalf("events %v: the # of the early media counted", types)
	}
	if d, _ := detail(rep.all("v1"), verify.EventFailed); d != "not_confirmed" {
		t.Errorf("events %v, failed detail %q, want not_confirmed", types, d)
	}
}
