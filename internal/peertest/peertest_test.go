package peertest

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSippThroughKamailioToBaresip proves the harness with peers only: sipp
// authenticates its INVITE against kamailio (407 then digest), kamailio
// relays it to the registered baresip, which answers by itself, presses #
// over ctrl_tcp, and records the A-law audio sipp plays.
func TestSippThroughKamailioToBaresip(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			k := StartKamailio(t, KamailioOptions{Users: map[string]string{
				"alice":    "phone-pw",
				"verigate": "gateway-pw",
			}})
			b := StartBaresip(t, BaresipOptions{User: "alice", Password: "phone-pw", Registrar: k.Addr, Transport: transport})
			if err := b.WaitRegistered(10 * time.Second); err != nil {
				t.Fatal(err)
			}
			s := StartSipp(t, SippOptions{
				Scenario: Scenario(t, "uac_auth.xml"), Target: k.Addr, Service: "alice",
				FromUser: "verigate", AuthUser: "verigate", Password: "gateway-pw", Transport: transport,
			})
			if _, err := b.WaitCall(15 * time.Second); err != nil {
				t.Fatalf("%v\nsipp messages:\n%s", err, s.Messages())
			}
			if err := b.Press("#"); err != nil {
				t.Fatal(err)
			}
			if err := s.Wait(30 * time.Second); err != nil {
				t.Fatal(err)
			}
			if _, err := b.WaitClosed(10 * time.Second); err != nil {
				t.Fatal(err)
			}
			msgs := s.Messages()
			if !strings.Contains(msgs, "SIP/2.0 407") || !strings.Contains(msgs, "Proxy-Authorization:") {
				t.Errorf("sipp's INVITE was not challenged and answered with digest:\n%s", msgs)
			}
			if !regexp.MustCompile(`(?i)Record-Route:`).MatchString(msgs) {
				t.Errorf("the 200 OK carries no Record-Route:\n%s", msgs)
			}
			heard, err := b.Heard()
			if err != nil || len(heard) != 1 {
				t.Fatalf("recordings of what baresip heard: %v, %v (all in %s)", heard, err, b.RecordDir)
			}
			pcm, err := ReadWAV(heard[0])
			if err != nil {
				t.Fatal(err)
			}
			if pcm.Duration() < 1 || pcm.RMS() < 100 {
				t.Errorf("baresip's recording %s: %.1f s, RMS %.0f; want at least 1 s of audio above RMS 100", heard[0], pcm.Duration(), pcm.RMS())
			}
			t.Logf("baresip heard %.1f s of audio at RMS %.0f", pcm.Duration(), pcm.RMS())
		})
	}
}

// TestWrongPasswordRefused proves a wrong password never reaches the phone:
// kamailio challenges again (its default, as Asterisk does) or answers 403.
func TestWrongPasswordRefused(t *testing.T) {
	for _, tc := range []struct {
		name     string
		forbid   bool
		scenario string
	}{
		{"challenged again", false, "uac_auth_rejected_407.xml"},
		{"forbidden", true, "uac_auth_rejected_403.xml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := StartKamailio(t, KamailioOptions{
				Users:               map[string]string{"alice": "phone-pw", "verigate": "gateway-pw"},
				ForbidWrongPassword: tc.forbid,
			})
			b := StartBaresip(t, BaresipOptions{User: "alice", Password: "phone-pw", Registrar: k.Addr})
			if err := b.WaitRegistered(10 * time.Second); err != nil {
				t.Fatal(err)
			}
			s := StartSipp(t, SippOptions{
				Scenario: Scenario(t, tc.scenario), Target: k.Addr, Service: "alice",
				FromUser: "verigate", AuthUser: "verigate", Password: "wrong-pw",
			})
			if err := s.Wait(30 * time.Second); err != nil {
				t.Fatal(err)
			}
			if !k.WaitLog(regexp.MustCompile(`proxy auth of verigate failed: -2`), 5*time.Second) {
				t.Error("kamailio did not log the wrong password (-2)")
			}
			for _, ev := range b.Events() {
				if strings.HasPrefix(ev.Type, "CALL_") {
					t.Errorf("the phone saw a call event %s with a wrong password", ev.Type)
				}
			}
		})
	}
}

// TestRequireBinaryMessage checks the helpers name the missing package.
func TestRequireBinaryMessage(t *testing.T) {
	ft := &fatalRecorder{TB: t}
	func() {
		defer func() { _ = recover() }()
		RequireBinary(ft, "peertest-no-such-binary", "no-such-package")
	}()
	if !strings.Contains(ft.msg, `Debian package "no-such-package"`) {
		t.Errorf("RequireBinary message = %q", ft.msg)
	}
}

// fatalRecorder records Fatalf instead of ending the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic("fatal")
}
