package sip_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

// sipp is one running sipp (Debian package sip-tester) on loopback.
type sipp struct {
	port int
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan error
}

// freePort returns a UDP port free on loopback at the time of asking.
func freePort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// startSipp runs scenario (a file in testdata) for one call; remote is the
// address it calls, empty for a phone that waits to be called. It fails
// the test when sipp is not installed: scripts/test.sh installs it.
func startSipp(t *testing.T, scenario, remote string) *sipp {
	t.Helper()
	bin, err := exec.LookPath("sipp")
	if err != nil {
		t.Fatalf("sipp is not installed (Debian package sip-tester; scripts/test.sh installs it): %v", err)
	}
	abs, err := filepath.Abs(filepath.Join("testdata", scenario))
	if err != nil {
		t.Fatal(err)
	}
	s := &sipp{port: freePort(t), done: make(chan error, 1)}
	args := []string{"-sf", abs, "-i", "127.0.0.1", "-p", strconv.Itoa(s.port), "-mp", strconv.Itoa(freePort(t)),
		"-m", "1", "-timeout", "30", "-timeout_error", "-nostdin", "-trace_err", "-trace_msg"}
	if remote != "" {
		args = append(args, remote)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	s.cmd = exec.CommandContext(ctx, bin, args...)
	s.cmd.Dir = t.TempDir()
	s.cmd.Stdout = &s.out
	s.cmd.Stderr = &s.out
	if err := s.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start sipp: %v", err)
	}
	go func() { s.done <- s.cmd.Wait(); cancel() }()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	return s
}

// wait waits for sipp to finish its one call and fails the test unless
// the scenario completed (sipp exits 0 only then).
func (s *sipp) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("sipp scenario failed: %v\n%s", err, tail(s.out.String(), 3000))
		}
	case <-time.After(45 * time.Second):
		t.Fatal("sipp did not finish")
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (s *sipp) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// waitSippReady waits until sipp has bound its SIP port (read from
// /proc/net/udp, so the check itself never takes the port).
func waitSippReady(t *testing.T, s *sipp) {
	t.Helper()
	want := fmt.Sprintf("0100007F:%04X ", s.port)
	for range 1000 { // 20 s: sipp starts slowly on a loaded machine
		data, err := os.ReadFile("/proc/net/udp")
		if err != nil {
			t.Fatalf("cannot tell whether sipp is ready: %v", err)
		}
		if strings.Contains(string(data), want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("sipp did not bind %s\n%s", s.addr(), s.out.String())
}

func TestSippApprove(t *testing.T) {
	s := startSipp(t, "sipp_uas_pound.xml", "")
	waitSippReady(t, s)
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "sipp", Address: s.addr()}, sip.Options{KeyTimeout: 5 * time.Second})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventCompleted, 30*time.Second)
	s.wait(t)
	if !hasInOrder(rep.types("v1"), verify.EventRinging, verify.EventAnswered, verify.EventKeyPressed, verify.EventCallApproved, verify.EventCompleted) {
		t.Fatalf("events %v, want ringing, answered, key_pressed, call_approved, completed", rep.types("v1"))
	}
	// sipp's pcap carries one '#' in many packets, three of them end packets.
	if got := keys(rep.all("v1")); got != "#" {
		t.Errorf("keys reported %q, want exactly one #", got)
	}
}

func TestSippBusy(t *testing.T) {
	s := startSipp(t, "sipp_uas_busy.xml", "")
	waitSippReady(t, s)
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "sipp", Address: s.addr()}, sip.Options{})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventBusy, 20*time.Second)
	s.wait(t) // the scenario ends only after our ACK
	evs := rep.all("v1")
	if len(evs) != 1 || evs[0].ErrorCode != "486" {
		t.Errorf("events %+v, want one busy with 486", evs)
	}
	waitIdle(t, caller, 10*time.Second) // the call gives its rtp port back
}

func TestSippNoAnswerCancels(t *testing.T) {
	s := startSipp(t, "sipp_uas_no_answer.xml", "")
	waitSippReady(t, s)
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "sipp", Address: s.addr()}, sip.Options{RingTimeout: time.Second})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventNoAnswer, 20*time.Second)
	// sipp's scenario completes only when it received our CANCEL (and the
	// ACK of its 487).
	s.wait(t)
	if types := rep.types("v1"); !slices.Equal(types, []verify.EventType{verify.EventRinging, verify.EventNoAnswer}) {
		t.Errorf("events %v, want ringing, no_answer", types)
	}
	waitIdle(t, caller, 10*time.Second) // the call gives its rtp port back
}

func TestSippStrangerRejected(t *testing.T) {
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "nowhere", Address: "127.0.0.1:9"}, sip.Options{})
	s := startSipp(t, "sipp_uac_stranger.xml", caller.Addr().String())
	// The scenario completes only on 403 to its INVITE and 481 to its BYE.
	s.wait(t)
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
	s := startSipp(t, scenario, "")
	waitSippReady(t, s)
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "pbx", Address: s.addr(), Username: "alice", Password: "s3cret"}, sip.Options{KeyTimeout: 5 * time.Second})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventCompleted, 30*time.Second)
	s.wait(t) // fails unless sipp found the credentials valid
	if !slices.Contains(rep.types("v1"), verify.EventCallApproved) {
		t.Fatalf("events %v, want call_approved", rep.types("v1"))
	}
	// sipp checks Authorization itself; Proxy-Authorization is checked here.
	if strings.Contains(scenario, "proxy") {
		checkProxyDigest(t, s.messages(t), "alice", "verigate.test", "s3cret")
	}
}

// messages returns sipp's trace of the messages it sent and received.
func (s *sipp) messages(t *testing.T) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(s.cmd.Dir, "*_messages.log"))
	if len(files) != 1 {
		t.Fatalf("sipp message log: found %v", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
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
	s := startSipp(t, "sipp_uas_digest_refused.xml", "")
	waitSippReady(t, s)
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "pbx", Address: s.addr(), Username: "alice", Password: "wrong"}, sip.Options{})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventFailed, 20*time.Second)
	s.wait(t)
	evs := rep.all("v1")
	if len(evs) != 1 || evs[0].ErrorCode != "401" || !strings.Contains(evs[0].Detail, "authentication failed") {
		t.Fatalf("events %+v, want one failed (401, authentication failed)", evs)
	}
	if strings.Contains(evs[0].Detail, "wrong") {
		t.Fatal("the event shows the password")
	}
}

func TestSippSilentPhoneTimesOut(t *testing.T) {
	s := startSipp(t, "sipp_uas_mute.xml", "")
	waitSippReady(t, s)
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "sipp", Address: s.addr()}, sip.Options{SilenceTimeout: time.Second, KeyTimeout: time.Minute})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventFailed, 20*time.Second)
	s.wait(t) // completes only on the gateway's BYE
	if d, _ := detail(rep.all("v1"), verify.EventFailed); d != "no rtp from the phone" {
		t.Errorf("failed detail %q, want no rtp from the phone", d)
	}
}

// TestSippEarlyMediaPoundDoesNotApprove: the phone answers 183 with early
// media, plays sipp's RFC 4733 '#' in it, answers 200 OK after, and then
// says nothing. The '#' waited in the gateway's RTP socket; it must not
// approve, nor count as a key: the call asks three times and fails.
func TestSippEarlyMediaPoundDoesNotApprove(t *testing.T) {
	s := startSipp(t, "sipp_uas_early_pound.xml", "")
	waitSippReady(t, s)
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "sipp", Address: s.addr()}, sip.Options{KeyTimeout: time.Second, SilenceTimeout: 25 * time.Second})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventCompleted, 40*time.Second)
	s.wait(t)
	types := rep.types("v1")
	if slices.Contains(types, verify.EventCallApproved) || slices.Contains(types, verify.EventKeyPressed) {
		t.Fatalf("events %v: the # of the early media counted", types)
	}
	if d, _ := detail(rep.all("v1"), verify.EventFailed); d != "not_confirmed" {
		t.Errorf("events %v, failed detail %q, want not_confirmed", types, d)
	}
}
