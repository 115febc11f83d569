package sip_test

import (
	"context"
	"errors"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"

	"github.com/verigate/verigate/internal/peertest"
	"github.com/verigate/verigate/sip"
)

// newTestClient returns a sipgo client on loopback, closed on cleanup.
// With certs it trusts their CA for TLS.
func newTestClient(t *testing.T, certs ...*peertest.Certs) *sipgo.Client {
	t.Helper()
	opts := []sipgo.UserAgentOption{sipgo.WithUserAgent("verigate"), sipgo.WithUserAgentHostname(peertest.Loopback)}
	for _, c := range certs {
		opts = append(opts, sipgo.WithUserAgenTLSConfig(c.ClientTLS(peertest.Loopback)))
	}
	ua, err := sipgo.NewUA(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname(peertest.Loopback))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// silentUDP returns a bound loopback UDP address that never answers.
func silentUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", net.JoinHostPort(peertest.Loopback, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().String()
}

// TestKeepAliveAgainstKamailio probes a real kamailio over UDP and TCP and
// a silent port, and checks readiness names the trunk that is down.
func TestKeepAliveAgainstKamailio(t *testing.T) {
	k := peertest.StartKamailio(t, peertest.KamailioOptions{Users: map[string]string{"verigate": "gw-pass"}})
	cfg := sip.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Trunks = []sip.Trunk{
		{Name: "pbx-udp", Address: k.Addr, Transport: "udp"},
		{Name: "pbx-tcp", Address: k.Addr, Transport: "tcp"},
		{Name: "dead", Address: silentUDP(t)},
	}
	ka := sip.NewKeepAlive(cfg, newTestClient(t), sip.KeepAliveOptions{Interval: 200 * time.Millisecond, Timeout: 700 * time.Millisecond})
	if err := ka.Ready(); !errors.Is(err, sip.ErrTrunkDown) || !strings.Contains(err.Error(), "not probed yet") {
		t.Errorf("Ready before any probe = %v, want ErrTrunkDown naming trunks not probed yet", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, name := range []string{"pbx-udp", "pbx-tcp"} {
		h, err := ka.Probe(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if !h.Up || h.Status != 200 || h.Error != "" || h.Checked.IsZero() {
			t.Errorf("%s: %+v, want up with 200", name, h)
		}
	}
	h, err := ka.Probe(ctx, "dead")
	if err != nil {
		t.Fatal(err)
	}
	if h.Up || h.Status != 0 || h.Error != "no answer in time" || h.Failures != 1 {
		t.Errorf("dead: %+v, want down after no answer, 1 failure", h)
	}
	err = ka.Ready()
	if !errors.Is(err, sip.ErrTrunkDown) || !strings.Contains(err.Error(), "dead: no answer in time") || strings.Contains(err.Error(), "pbx-") {
		t.Errorf("Ready = %v, want ErrTrunkDown naming only dead", err)
	}
	if _, err := ka.Probe(ctx, "nope"); !errors.Is(err, sip.ErrNoTrunk) {
		t.Errorf("Probe of an unknown trunk = %v, want ErrNoTrunk", err)
	}

	// Run keeps probing: the dead trunk's failures grow, the others stay up.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ka.Run(runCtx) }()
	deadline := time.Now().Add(8 * time.Second)
	for {
		hs := ka.Health()
		if len(hs) == 3 && hs[2].Failures >= 3 && hs[0].Up && hs[1].Up {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Run did not keep probing: %+v", hs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop when its context ended")
	}
}

// TestKeepAliveAndRegistrationOverTLS probes and registers at kamailio's
// TLS listener, whose certificate the tests made.
func TestKeepAliveAndRegistrationOverTLS(t *testing.T) {
	certs := peertest.NewCerts(t)
	k := peertest.StartKamailio(t, peertest.KamailioOptions{Users: map[string]string{"verigate": "gw-pass"}, TLS: certs})
	trunk := sip.Trunk{Name: "pbx-tls", Address: k.TLSAddr, Transport: "tls", Username: "verigate", Password: "gw-pass"}
	cfg := sip.DefaultConfig()
	cfg.Trunks = []sip.Trunk{trunk}
	client := newTestClient(t, certs)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := sip.NewKeepAlive(cfg, client, sip.KeepAliveOptions{}).Probe(ctx, "pbx-tls")
	if err != nil {
		t.Fatal(err)
	}
	if !h.Up || h.Status != 200 {
		t.Errorf("keep-alive over TLS: %+v, want up with 200", h)
	}
	if !k.WaitLog(regexp.MustCompile(`request OPTIONS .* \(tls\)`), 5*time.Second) {
		t.Error("kamailio saw no OPTIONS over TLS")
	}
	g, err := sip.NewRegistration(trunk, client, sip.RegisterOptions{Contact: contactFor(peertest.FreePort(t)), Expires: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	runRegistration(t, g)
	waitState(t, g, "registered over TLS", func(s sip.RegistrationState) bool { return s.Registered })
	if !k.WaitLog(regexp.MustCompile(`registered verigate at <sip:verigate@127\.0\.0\.1:\d+;transport=tls> expires 60`), 5*time.Second) {
		t.Errorf("kamailio did not save a TLS contact:\n%s", k.Log())
	}
}
