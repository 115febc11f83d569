package sip_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/peertest"
	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

// testCert makes a self-signed certificate for 127.0.0.1 and returns the
// server's config and a client config that trusts only it.
func testCert(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "verigate test phone"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return server, client
}

func TestApproveOverTLS(t *testing.T) {
	server, client := testCert(t)
	phone, ended := newPhone(t, siptest.PhoneConfig{TLSListen: "127.0.0.1:0", TLSConfig: server,
		Press: "#", After: pressAfter, Ring: 100 * time.Millisecond})
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "phone", Address: phone.TLSAddr().String(), Transport: "tls"}, sip.Options{TLSConfig: client})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatalf("Call: %v", err)
	}
	rep.waitFor(t, "v1", verify.EventCompleted, 20*time.Second)
	pc := waitCall(t, ended, 5*time.Second)
	if !hasInOrder(rep.types("v1"), verify.EventAnswered, verify.EventCallApproved, verify.EventCompleted) || pc.HungUpBy != "caller" {
		t.Fatalf("events %v, phone %+v", rep.types("v1"), pc)
	}
}

func TestPhoneHangsUpOverTLS(t *testing.T) {
	server, client := testCert(t)
	phone, ended := newPhone(t, siptest.PhoneConfig{TLSListen: "127.0.0.1:0", TLSConfig: server, HangupAfter: 500 * time.Millisecond})
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "phone", Address: phone.TLSAddr().String(), Transport: "tls"}, sip.Options{TLSConfig: client})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatalf("Call: %v", err)
	}
	rep.waitFor(t, "v1", verify.EventCompleted, 20*time.Second)
	if pc := waitCall(t, ended, 10*time.Second); pc.Err != nil || pc.HungUpBy != "phone" {
		t.Errorf("phone: %+v, want its BYE answered", pc)
	}
	if d, _ := detail(rep.all("v1"), verify.EventCompleted); d != "hung up by the phone" {
		t.Fatalf("completed %q, events %v", d, rep.types("v1"))
	}
}

func TestTLSUntrustedPhoneFails(t *testing.T) {
	server, _ := testCert(t)
	_, other := testCert(t)
	phone, _ := newPhone(t, siptest.PhoneConfig{TLSListen: "127.0.0.1:0", TLSConfig: server, Press: "#"})
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "phone", Address: phone.TLSAddr().String(), Transport: "tls"}, sip.Options{TLSConfig: other})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err == nil {
		t.Fatal("a call to a phone with an untrusted certificate was placed")
	}
}

// TestPBXPhoneHangsUpOverTLS is issue 14's third item: the gateway reaches
// kamailio over TLS, kamailio relays the call to baresip, and baresip hangs
// up. kamailio sends the BYE to the gateway's Contact, which says
// transport=tls: the BYE must arrive and end the call "completed" (hung up
// by the phone), not be lost on a port without TLS and leave the call to
// re-prompt and fail for want of RTP.
func TestPBXPhoneHangsUpOverTLS(t *testing.T) {
	certs := peertest.NewCerts(t)
	k := peertest.StartKamailio(t, peertest.KamailioOptions{
		Users: map[string]string{gatewayUser: gatewayPass, pbxNumber: phonePass},
		TLS:   certs,
	})
	b := peertest.StartBaresip(t, peertest.BaresipOptions{User: pbxNumber, Password: phonePass, Registrar: k.Addr})
	if err := b.WaitRegistered(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{
		Name: "pbx", Address: k.TLSAddr, Transport: "tls", Username: gatewayUser, Password: gatewayPass,
	}, sip.Options{TLSConfig: certs.ClientTLS(peertest.Loopback), KeyTimeout: 10 * time.Second})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: pbxNumber, Mode: verify.CallModeApprove}); err != nil {
		t.Fatalf("Call: %v", err)
	}
	if _, err := b.WaitCall(20 * time.Second); err != nil {
		t.Fatalf("%v; gateway events %v", err, rep.types("v1"))
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := b.Command("hangup", "", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventCompleted, 20*time.Second)
	if d, _ := detail(rep.all("v1"), verify.EventCompleted); d != "hung up by the phone" {
		t.Fatalf("completed %q, events %v", d, rep.types("v1"))
	}
	// RFC 3581's rport, and the transport as Via writes it (SIP/2.0/TLS).
	via := regexp.MustCompile(`request (INVITE|ACK) .*\(tls\) .* Via=SIP/2\.0/TLS [^ ]*;rport`)
	if n := k.CountLog(via); n < 3 {
		t.Errorf("kamailio saw %d INVITEs and ACKs whose Via says SIP/2.0/TLS with rport, want 3:\n%s", n, k.Log())
	}
	bye := regexp.MustCompile(`reply 200 OK for BYE|request BYE sip:` + gatewayUser + `@127\.0\.0\.1:\d+;transport=tls`)
	if k.WaitCount(bye, 1, 5*time.Second) < 1 {
		t.Errorf("kamailio did not relay the phone's BYE to the gateway over tls")
	}
}
