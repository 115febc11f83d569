package radius

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/verigate/verigate/internal/peertest"
	"github.com/verigate/verigate/internal/verifytest"
)

var ldapPeople = []peertest.LDAPUser{
	{UID: "alice", Password: "alice-pw", Mobile: []string{"+49 151 23456789"}},
	{UID: "bob", Password: "bob-pw"},
}

// TestPrimaryLDAP: against a real slapd, with the DN template and with
// search-then-bind, over StartTLS and ldaps: the right password rings the
// phone, a wrong or empty one is rejected without a call.
func TestPrimaryLDAP(t *testing.T) {
	certs := peertest.NewCerts(t)
	sl := peertest.StartSlapd(t, peertest.SlapdOptions{Users: ldapPeople, TLS: certs})
	modes := map[string]LDAPAuth{
		"dn template, starttls": {URL: sl.URL, StartTLS: true, CAFile: certs.CAFile, UserDN: "uid={username}," + sl.PeopleDN},
		"search then bind, ldaps": {URL: sl.LDAPSURL, CAFile: certs.CAFile, BaseDN: sl.Suffix,
			BindDN: sl.ServiceDN, BindPassword: sl.ServicePassword, Filter: "(uid={username})"},
	}
	for name, lc := range modes {
		t.Run(name, func(t *testing.T) {
			svc := verifytest.NewService(t)
			cfg := testConfig()
			cfg.Primary = Primary{Mode: "ldap", LDAP: lc}
			s := startServer(t, cfg, Options{Verifier: svc})
			approveCalls(t, svc)
			for _, pw := range []string{"wrong", "", "alice-pw "} {
				resp := exchange(t, s, accessRequest(t, testSecret, "alice", pw, nil), 10*time.Second)
				if resp.Code != radius.CodeAccessReject || rfc2865.ReplyMessage_GetString(resp) != msgWrongPassword {
					t.Errorf("password %q: %v %q", pw, resp.Code, rfc2865.ReplyMessage_GetString(resp))
				}
			}
			// An injection in the user name binds as nobody.
			if resp := exchange(t, s, accessRequest(t, testSecret, "*", "alice-pw", nil), 10*time.Second); resp.Code != radius.CodeAccessReject {
				t.Errorf("user *: %v", resp.Code)
			}
			if n := len(svc.Caller.Calls()); n != 0 {
				t.Fatalf("%d calls after wrong passwords", n)
			}
			resp := exchange(t, s, accessRequest(t, testSecret, "alice", "alice-pw", nil), 15*time.Second)
			if resp.Code != radius.CodeAccessAccept || len(svc.Caller.Calls()) != 1 {
				t.Fatalf("right password: %v after %d calls", resp.Code, len(svc.Caller.Calls()))
			}
		})
	}
}

// upstreamServer is an upstream RADIUS server built on layeh's packets:
// it requires the Message-Authenticator and answers with one, accepting
// password for user.
type upstreamServer struct {
	conn     *net.UDPConn
	secret   []byte
	user, pw string
	unsigned atomic.Bool // answer without Message-Authenticator (a server to distrust)
	requests atomic.Int32
}

func startUpstream(t *testing.T, secret, user, pw string) *upstreamServer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	u := &upstreamServer{conn: c, secret: []byte(secret), user: user, pw: pw}
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, MaxPacket)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			b := buf[:n]
			if checkRequestAuth(b, u.secret) != nil {
				continue
			}
			req, err := radius.Parse(b, u.secret)
			if err != nil {
				continue
			}
			u.requests.Add(1)
			code := radius.CodeAccessReject
			if rfc2865.UserName_GetString(req) == u.user && rfc2865.UserPassword_GetString(req) == u.pw {
				code = radius.CodeAccessAccept
			}
			resp := req.Response(code)
			var out []byte
			if u.unsigned.Load() {
				out, err = resp.Encode()
			} else {
				out, err = encodeSigned(resp)
			}
			if err != nil {
				t.Error(err)
				return
			}
			c.WriteToUDPAddrPort(out, from)
		}
	}()
	return u
}

// TestPrimaryUpstreamRADIUS: PAP forwarded to an upstream server with
// its own secret; its Reject rejects without a call, its Accept rings the
// phone, and an answer without Message-Authenticator is not believed.
func TestPrimaryUpstreamRADIUS(t *testing.T) {
	up := startUpstream(t, "upstream-secret", "alice", "alice-pw")
	svc := verifytest.NewService(t)
	cfg := testConfig()
	cfg.Primary = Primary{Mode: "radius", RADIUS: UpstreamRAD{Address: up.conn.LocalAddr().String(), Secret: "upstream-secret",
		Timeout: 300 * time.Millisecond, Retries: 1}}
	s := startServer(t, cfg, Options{Verifier: svc})
	approveCalls(t, svc)
	if resp := exchange(t, s, accessRequest(t, testSecret, "alice", "wrong", nil), 10*time.Second); resp.Code != radius.CodeAccessReject ||
		rfc2865.ReplyMessage_GetString(resp) != msgWrongPassword {
		t.Fatalf("wrong password: %v %q", resp.Code, rfc2865.ReplyMessage_GetString(resp))
	}
	if n := len(svc.Caller.Calls()); n != 0 {
		t.Fatalf("%d calls after a wrong password", n)
	}
	if resp := exchange(t, s, accessRequest(t, testSecret, "alice", "alice-pw", nil), 15*time.Second); resp.Code != radius.CodeAccessAccept {
		t.Fatalf("right password: %v", resp.Code)
	}
	if up.requests.Load() != 2 {
		t.Errorf("upstream saw %d requests, want 2", up.requests.Load())
	}
}

func TestUpstreamUnsignedAnswerIgnored(t *testing.T) {
	up := startUpstream(t, "upstream-secret", "alice", "alice-pw")
	up.unsigned.Store(true)
	u := &upstream{cfg: UpstreamRAD{Address: up.conn.LocalAddr().String(), Secret: "upstream-secret", Timeout: 200 * time.Millisecond, Retries: 1}}
	err := u.CheckPassword(context.Background(), "alice", "alice-pw")
	if err == nil || errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("unsigned Accept: %v, want no answer believed", err)
	}
	if up.requests.Load() != 2 {
		t.Errorf("upstream saw %d tries, want 2 (one retry)", up.requests.Load())
	}
}
