package sip_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/verigate/verigate/internal/peertest"
	"github.com/verigate/verigate/sip"
)

// runRegistration runs g until the test ends and returns a stop function
// that ends Run and returns its error.
func runRegistration(t *testing.T, g *sip.Registration) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		runErr = g.Run(ctx)
	}()
	stop := func() error {
		cancel()
		select {
		case <-done:
			return runErr
		case <-time.After(10 * time.Second):
			return errors.New("Run did not stop")
		}
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// waitState polls g until ok holds or the time is up.
func waitState(t *testing.T, g *sip.Registration, what string, ok func(sip.RegistrationState) bool) sip.RegistrationState {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := g.State()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("registration never %s: %+v", what, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func contactFor(port int) sipmsg.Uri {
	return sipmsg.Uri{Scheme: "sip", User: "verigate", Host: peertest.Loopback, Port: port}
}

// TestRegistrationRefreshesAndUnregisters registers at kamailio with
// digest, refreshes before the granted 2 s lapse, and unregisters on stop.
func TestRegistrationRefreshesAndUnregisters(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			k := peertest.StartKamailio(t, peertest.KamailioOptions{Users: map[string]string{"verigate": "gw-pass"}})
			trunk := sip.Trunk{Name: "pbx", Address: k.Addr, Transport: transport, Username: "verigate", Password: "gw-pass"}
			port := peertest.FreePort(t)
			g, err := sip.NewRegistration(trunk, newTestClient(t), sip.RegisterOptions{Contact: contactFor(port), Expires: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			stop := runRegistration(t, g)
			s := waitState(t, g, "refreshed twice", func(s sip.RegistrationState) bool { return s.Registrations >= 3 })
			if !s.Registered || s.Status != 200 || s.Error != "" || s.Expires.IsZero() {
				t.Errorf("state after refreshes: %+v", s)
			}
			registered := regexp.MustCompile(fmt.Sprintf(`registered verigate at <sip:verigate@127\.0\.0\.1:%d[^>]*> expires 2$`, port))
			if n := k.WaitCount(registered, 3, 5*time.Second); n < 3 {
				t.Errorf("kamailio saved %d registrations of the gateway's contact with expires 2, want at least 3", n)
			}
			if err := stop(); !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
			if !k.WaitLog(regexp.MustCompile(`registered verigate at .* expires 0`), 5*time.Second) {
				t.Error("no REGISTER with Expires: 0 reached kamailio on stop")
			}
			if s := g.State(); s.Registered {
				t.Errorf("still registered after stop: %+v", s)
			}
		})
	}
}

// TestRegistrationWrongPassword reports an authentication failure and keeps
// retrying with back-off instead of giving up or hanging.
func TestRegistrationWrongPassword(t *testing.T) {
	k := peertest.StartKamailio(t, peertest.KamailioOptions{Users: map[string]string{"verigate": "gw-pass"}})
	trunk := sip.Trunk{Name: "pbx", Address: k.Addr, Username: "verigate", Password: "wrong"}
	g, err := sip.NewRegistration(trunk, newTestClient(t), sip.RegisterOptions{
		Contact: contactFor(peertest.FreePort(t)), Expires: time.Minute, RetryMin: 100 * time.Millisecond, RetryMax: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	runRegistration(t, g)
	s := waitState(t, g, "failed three times", func(s sip.RegistrationState) bool { return s.Failures >= 3 })
	if s.Registered || s.Status != 401 || !strings.Contains(s.Error, "username and password") || s.Registrations != 0 {
		t.Errorf("state with a wrong password: %+v", s)
	}
}

// TestRegistrationRecovers keeps trying while the registrar is down and
// registers once it comes up.
func TestRegistrationRecovers(t *testing.T) {
	port := peertest.FreePort(t)
	trunk := sip.Trunk{Name: "pbx", Address: fmt.Sprintf("127.0.0.1:%d", port), Transport: "tcp", Username: "verigate", Password: "gw-pass"}
	g, err := sip.NewRegistration(trunk, newTestClient(t), sip.RegisterOptions{
		Contact: contactFor(peertest.FreePort(t)), Expires: time.Minute,
		RetryMin: 100 * time.Millisecond, RetryMax: 300 * time.Millisecond, Timeout: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	runRegistration(t, g)
	waitState(t, g, "failed while the registrar is down", func(s sip.RegistrationState) bool { return s.Failures >= 2 && !s.Registered })
	peertest.StartKamailio(t, peertest.KamailioOptions{Port: port, Users: map[string]string{"verigate": "gw-pass"}})
	s := waitState(t, g, "registered after the registrar came up", func(s sip.RegistrationState) bool { return s.Registered })
	if s.Failures != 0 || s.Error != "" {
		t.Errorf("state after recovery: %+v", s)
	}
}
