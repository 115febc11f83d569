package peertest

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestCertsHandshake proves the certificate verifies for 127.0.0.1 against
// the CA alone, and that a client without the CA refuses it.
func TestCertsHandshake(t *testing.T) {
	c := NewCerts(t, "pbx.test")
	l, err := tls.Listen("tcp", net.JoinHostPort(Loopback, "0"), c.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = io.WriteString(conn, "hello")
			}()
		}
	}()
	for _, name := range []string{"127.0.0.1", "localhost", "pbx.test"} {
		conn, err := tls.Dial("tcp", l.Addr().String(), c.ClientTLS(name))
		if err != nil {
			t.Fatalf("handshake as %s: %v", name, err)
		}
		b, _ := io.ReadAll(conn)
		conn.Close()
		if string(b) != "hello" {
			t.Errorf("read %q over TLS as %s", b, name)
		}
	}
	if conn, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{ServerName: Loopback}); err == nil {
		conn.Close()
		t.Error("a client trusting only the system roots accepted the throwaway certificate")
	}
}

// TestKamailioAnswersOverTLS sends OPTIONS over kamailio's TLS listener,
// which presents the throwaway certificate.
func TestKamailioAnswersOverTLS(t *testing.T) {
	c := NewCerts(t)
	k := StartKamailio(t, KamailioOptions{TLS: c})
	conn, err := tls.Dial("tcp", k.TLSAddr, c.ClientTLS(Loopback))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	local := conn.LocalAddr().String()
	msg := "OPTIONS sip:" + k.TLSAddr + ";transport=tls SIP/2.0\r\n" +
		"Via: SIP/2.0/TLS " + local + ";branch=z9hG4bK-peertest-tls\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=tls1\r\nTo: <sip:" + k.TLSAddr + ">\r\n" +
		"Call-ID: peertest-tls@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	if _, err := io.WriteString(conn, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200") {
		t.Errorf("kamailio answered OPTIONS over TLS with %q", strings.SplitN(string(buf[:n]), "\r\n", 2)[0])
	}
}
