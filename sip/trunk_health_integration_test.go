package sip_test

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/peertest"
	"github.com/verigate/verigate/sip"
)

// TestCallerKeepAliveAndRegistrationThroughPBX runs the Caller's own
// keep-alive and registration against kamailio: OPTIONS and REGISTER
// leave from the gateway's listen port, the registered Contact is the
// gateway's address, and an INVITE a stranger sends to the gateway's AoR
// through kamailio reaches the gateway, which refuses it (403).
func TestCallerKeepAliveAndRegistrationThroughPBX(t *testing.T) {
	k := peertest.StartKamailio(t, peertest.KamailioOptions{Users: map[string]string{
		gatewayUser: gatewayPass,
		"stranger":  "stranger-pw",
	}})
	caller := newCaller(t, newReporter(), sip.Trunk{Name: "pbx", Address: k.Addr, Username: gatewayUser, Password: gatewayPass}, sip.Options{})
	gw := caller.Addr()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := caller.KeepAlive(sip.KeepAliveOptions{}).Probe(ctx, "pbx")
	if err != nil {
		t.Fatal(err)
	}
	if !h.Up || h.Status != 200 {
		t.Errorf("keep-alive: %+v, want up with 200", h)
	}
	options := regexp.MustCompile(fmt.Sprintf(`request OPTIONS sip:%s from %s \(udp\)`, regexp.QuoteMeta(k.Addr), regexp.QuoteMeta(gw.String())))
	if k.WaitCount(options, 1, 5*time.Second) != 1 {
		t.Errorf("kamailio saw no OPTIONS from the gateway's listen address %s:\n%s", gw, k.Log())
	}

	g, err := caller.Registration(ctx, "", sip.RegisterOptions{Expires: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	runRegistration(t, g)
	waitState(t, g, "registered", func(s sip.RegistrationState) bool { return s.Registered })
	saved := regexp.MustCompile(fmt.Sprintf(`registered %s at <sip:%s@%s> expires 60$`, gatewayUser, gatewayUser, regexp.QuoteMeta(gw.String())))
	if k.WaitCount(saved, 1, 5*time.Second) != 1 {
		t.Errorf("kamailio did not save the gateway's listen address as its contact:\n%s", k.Log())
	}
	register := regexp.MustCompile(fmt.Sprintf(`request REGISTER .* from %s \(udp\)`, regexp.QuoteMeta(gw.String())))
	if k.WaitCount(register, 2, 5*time.Second) < 2 {
		t.Errorf("the REGISTERs (challenged and authenticated) did not come from the listen address %s", gw)
	}

	s := peertest.StartSipp(t, peertest.SippOptions{
		Scenario: peertest.Scenario(t, "uac_auth_rejected_403.xml"), Target: k.Addr, Service: gatewayUser,
		FromUser: "stranger", AuthUser: "stranger", Password: "stranger-pw",
	})
	if err := s.Wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	refused := regexp.MustCompile(fmt.Sprintf(`reply 403 .* for INVITE from %s`, regexp.QuoteMeta(gw.String())))
	if !k.WaitLog(refused, 5*time.Second) {
		t.Errorf("the gateway did not refuse the stranger's INVITE relayed to its registered contact:\n%s", k.Log())
	}
	if n := caller.ActiveCalls(); n != 0 {
		t.Errorf("a stranger's INVITE left %d calls active", n)
	}
}

// TestCallerRegistrationOverTLSReachesGateway: the Caller registers at
// kamailio over TLS; the Contact it registers names its end of the TLS
// connection (the gateway has no TLS listener), so an INVITE a stranger
// sends to the gateway's AoR through kamailio reaches the gateway over
// that connection, which refuses it (403), instead of meeting the plain
// TCP listener at the listen port.
func TestCallerRegistrationOverTLSReachesGateway(t *testing.T) {
	certs := peertest.NewCerts(t)
	k := peertest.StartKamailio(t, peertest.KamailioOptions{Users: map[string]string{
		gatewayUser: gatewayPass,
		"stranger":  "stranger-pw",
	}, TLS: certs})
	caller := newCaller(t, newReporter(), sip.Trunk{Name: "pbx", Address: k.TLSAddr, Transport: "tls", Username: gatewayUser, Password: gatewayPass},
		sip.Options{TLSConfig: certs.ClientTLS(peertest.Loopback)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := caller.Registration(ctx, "", sip.RegisterOptions{Expires: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	runRegistration(t, g)
	waitState(t, g, "registered", func(s sip.RegistrationState) bool { return s.Registered })
	register := regexp.MustCompile(`request REGISTER .* from 127\.0\.0\.1:(\d+) \(tls\)`)
	saved := regexp.MustCompile(`registered ` + gatewayUser + ` at <sip:` + gatewayUser + `@127\.0\.0\.1:(\d+);transport=tls> expires 60`)
	if !k.WaitLog(saved, 5*time.Second) {
		t.Fatalf("kamailio saved no TLS contact of the gateway:\n%s", k.Log())
	}
	from, contact := register.FindStringSubmatch(k.Log()), saved.FindStringSubmatch(k.Log())
	if from == nil || from[1] != contact[1] {
		t.Errorf("registered contact port %s, REGISTER came from %v: want the connection's port", contact[1], from)
	}

	s := peertest.StartSipp(t, peertest.SippOptions{
		Scenario: peertest.Scenario(t, "uac_auth_rejected_403.xml"), Target: k.Addr, Service: gatewayUser,
		FromUser: "stranger", AuthUser: "stranger", Password: "stranger-pw",
	})
	if err := s.Wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	refused := regexp.MustCompile(`reply 403 .* for INVITE from 127\.0\.0\.1:` + contact[1])
	if !k.WaitLog(refused, 5*time.Second) {
		t.Errorf("the gateway did not refuse the stranger's INVITE relayed to its registered TLS contact:\n%s", k.Log())
	}
}
