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
	"testing"
	"time"

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
	phone, ended := newPhone(t, sip.PhoneConfig{TLSListen: "127.0.0.1:0", TLSConfig: server,
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
	phone, ended := newPhone(t, sip.PhoneConfig{TLSListen: "127.0.0.1:0", TLSConfig: server, HangupAfter: 500 * time.Millisecond})
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
	phone, _ := newPhone(t, sip.PhoneConfig{TLSListen: "127.0.0.1:0", TLSConfig: server, Press: "#"})
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "phone", Address: phone.TLSAddr().String(), Transport: "tls"}, sip.Options{TLSConfig: other})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err == nil {
		t.Fatal("a call to a phone with an untrusted certificate was placed")
	}
}
