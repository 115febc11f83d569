package peertest

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
)

func login(user, password string) []RADIUSAttr {
	return []RADIUSAttr{{"User-Name", user}, {"User-Password", password}}
}

// TestFreeRADIUSUpstream proves the upstream: PAP against the users file,
// Message-Authenticator on every answer, and a request without one (or
// with a wrong secret) dropped unless allowed.
func TestFreeRADIUSUpstream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	users := map[string]string{"alice": "alice-pw", "bob the builder": "pw, with comma"}
	f := StartFreeRADIUS(t, FreeRADIUSConfig{Mode: FreeRADIUSUpstream, Users: users})
	lenient := StartFreeRADIUS(t, FreeRADIUSConfig{Mode: FreeRADIUSUpstream, Users: users, Secret: "other-secret", AllowNoMessageAuthenticator: true})

	for _, tc := range []struct {
		name   string
		srv    *FreeRADIUS
		req    RadclientRequest
		want   string
		dropRe string // what FreeRADIUS logs when it drops the request
	}{
		{"right password", f, RadclientRequest{Attrs: login("alice", "alice-pw")}, AccessAccept, ""},
		{"name with spaces, password with a comma", f, RadclientRequest{Attrs: login("bob the builder", "pw, with comma")}, AccessAccept, ""},
		{"wrong password", f, RadclientRequest{Attrs: login("alice", "wrong")}, AccessReject, ""},
		{"unknown user", f, RadclientRequest{Attrs: login("mallory", "alice-pw")}, AccessReject, ""},
		{"no Message-Authenticator", f, RadclientRequest{Attrs: login("alice", "alice-pw"), NoMessageAuthenticator: true, Timeout: 2 * time.Second},
			NoReply, `does not contain required Message-Authenticator`},
		{"wrong secret", f, RadclientRequest{Attrs: login("alice", "alice-pw"), Secret: "wrong-secret", Timeout: 2 * time.Second},
			NoReply, `invalid Message-Authenticator`},
		{"no Message-Authenticator allowed", lenient, RadclientRequest{Attrs: login("alice", "alice-pw"), NoMessageAuthenticator: true, Secret: "other-secret"}, AccessAccept, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Addr = tc.srv.Addr
			res, err := Radclient(ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Code() != tc.want || res.Sent != 1 {
				t.Fatalf("got %s after %d sends, want %s\n%s", res.Code(), res.Sent, tc.want, res)
			}
			if tc.want == NoReply {
				if res.Lost != 1 {
					t.Errorf("lost = %d, want 1", res.Lost)
				}
				if !tc.srv.WaitLog(regexp.MustCompile(tc.dropRe), 5*time.Second) {
					t.Errorf("FreeRADIUS did not log %q", tc.dropRe)
				}
				return
			}
			if !res.Reply().HasMessageAuthenticator() {
				t.Errorf("%s without Message-Authenticator\n%s", res.Code(), res)
			}
		})
	}

	// The temporary directory's path must not come from the test's name.
	t.Run("a test named #, like a key", func(t *testing.T) {
		g := StartFreeRADIUS(t, FreeRADIUSConfig{Mode: FreeRADIUSUpstream, Users: users})
		if res, err := Radclient(ctx, RadclientRequest{Addr: g.Addr, Attrs: login("alice", "alice-pw")}); err != nil || res.Code() != AccessAccept {
			t.Fatalf("%v %v", res, err)
		}
	})

	t.Run("burst", func(t *testing.T) {
		var packets [][]RADIUSAttr
		for i := range 200 {
			pw := "alice-pw"
			if i%4 == 0 {
				pw = "wrong"
			}
			packets = append(packets, login("alice", pw))
		}
		res, err := Radclient(ctx, RadclientRequest{Addr: f.Addr, Packets: packets, Parallel: 50})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Counts(); got[AccessAccept] != 150 || got[AccessReject] != 50 || len(got) != 2 || res.Sent != 200 {
			t.Fatalf("burst counts %v after %d sends, want 150 accepts and 50 rejects", got, res.Sent)
		}
	})
}

// homeRequest is what the test's home server saw of one Access-Request.
type homeRequest struct {
	user, password string
	id             byte
	authenticator  [16]byte
	validMA        bool // Message-Authenticator present and right
	proxyState     bool
}

// homeServer is a tiny RADIUS server (layeh.com/radius) standing in for
// Verigate behind the FreeRADIUS proxy. It answers after delay (a phone
// ringing) with Accept for password "right", Reject otherwise, with a
// Message-Authenticator unless the user is "no-ma"; user "silent" gets
// no answer at all.
type homeServer struct {
	addr   string
	secret string
	delay  time.Duration

	mu   sync.Mutex
	seen []homeRequest
}

func startHomeServer(t *testing.T, secret string, delay time.Duration) *homeServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(Loopback, "0"))
	if err != nil {
		t.Fatal(err)
	}
	h := &homeServer{addr: pc.LocalAddr().String(), secret: secret, delay: delay}
	srv := &radius.PacketServer{
		SecretSource: radius.StaticSecretSource([]byte(secret)),
		Handler:      radius.HandlerFunc(h.serve),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(pc); err != nil && !errors.Is(err, radius.ErrServerShutdown) {
			t.Errorf("home server: %v", err)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return h
}

func (h *homeServer) serve(w radius.ResponseWriter, r *radius.Request) {
	raw, err := r.Packet.MarshalBinary()
	if err != nil {
		return
	}
	seen := homeRequest{
		user:          rfc2865.UserName_GetString(r.Packet),
		password:      rfc2865.UserPassword_GetString(r.Packet),
		id:            r.Packet.Identifier,
		authenticator: r.Packet.Authenticator,
		validMA:       validMessageAuthenticator(raw, []byte(h.secret)),
		proxyState:    len(rfc2865.ProxyState_Get(r.Packet)) > 0,
	}
	h.mu.Lock()
	h.seen = append(h.seen, seen)
	h.mu.Unlock()
	if seen.user == "silent" {
		return
	}
	time.Sleep(h.delay)
	code := radius.CodeAccessReject
	if seen.password == "right" {
		code = radius.CodeAccessAccept
	}
	resp := r.Packet.Response(code)
	rfc2865.ReplyMessage_SetString(resp, "home says "+code.String())
	// Proxy-State goes back as it came (RFC 2865 section 5.33).
	for _, ps := range r.Packet.Attributes {
		if ps.Type == rfc2865.ProxyState_Type {
			resp.Add(rfc2865.ProxyState_Type, ps.Attribute)
		}
	}
	if seen.user != "no-ma" {
		signResponse(resp)
	}
	_ = w.Write(resp)
}

func (h *homeServer) requests() []homeRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]homeRequest(nil), h.seen...)
}

// validMessageAuthenticator checks the HMAC-MD5 of a request (RFC 3579
// section 3.2): over the packet with the attribute's value zeroed.
func validMessageAuthenticator(raw, secret []byte) bool {
	for i := 20; i+2 <= len(raw); {
		typ, l := raw[i], int(raw[i+1])
		if l < 2 || i+l > len(raw) {
			return false
		}
		if typ == byte(rfc2869.MessageAuthenticator_Type) && l == 18 {
			got := append([]byte(nil), raw[i+2:i+18]...)
			zeroed := append([]byte(nil), raw...)
			clear(zeroed[i+2 : i+18])
			mac := hmac.New(md5.New, secret)
			mac.Write(zeroed)
			return hmac.Equal(got, mac.Sum(nil))
		}
		i += l
	}
	return false
}

// signResponse adds a Message-Authenticator to a response: the HMAC-MD5
// of the packet carrying the request's authenticator and a zeroed
// attribute. Encode then computes the response authenticator over it.
func signResponse(p *radius.Packet) {
	p.Set(rfc2869.MessageAuthenticator_Type, make([]byte, 16))
	raw, err := p.MarshalBinary()
	if err != nil {
		return
	}
	mac := hmac.New(md5.New, p.Secret)
	mac.Write(raw)
	p.Set(rfc2869.MessageAuthenticator_Type, mac.Sum(nil))
}

// TestFreeRADIUSProxy proves the proxy: radclient → FreeRADIUS → a home
// server in the test. The home server sees the original User-Name and
// password under its own secret, with a valid Message-Authenticator; the
// answer comes back with one; an answer without one becomes a reject; a
// NAS retransmitting while the home server takes its time reaches the
// home server again with the same identifier and authenticator and gets
// the one answer.
func TestFreeRADIUSProxy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	home := startHomeServer(t, "home-secret", 3*time.Second)
	f := StartFreeRADIUS(t, FreeRADIUSConfig{Mode: FreeRADIUSProxy, Secret: "front-secret", HomeServer: home.addr, HomeSecret: "home-secret", ResponseWindow: 10 * time.Second})

	for _, tc := range []struct {
		name, user, password string
		want                 string
	}{
		{"accepted", "alice", "right", AccessAccept},
		{"with a realm", "alice@example.org", "right", AccessAccept},
		{"rejected", "alice", "wrong", AccessReject},
		{"home reply without Message-Authenticator", "no-ma", "right", AccessReject},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(home.requests())
			res, err := Radclient(ctx, RadclientRequest{Addr: f.Addr, Secret: "front-secret", Attrs: login(tc.user, tc.password), Timeout: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if res.Code() != tc.want || !res.Reply().HasMessageAuthenticator() {
				t.Fatalf("got %s (Message-Authenticator %v), want %s with one\n%s", res.Code(), res.Reply().HasMessageAuthenticator(), tc.want, res)
			}
			if tc.user != "no-ma" {
				if msg, _ := res.Reply().Get("Reply-Message"); msg != "home says "+tc.want {
					t.Errorf("Reply-Message = %q, want the home server's", msg)
				}
			}
			got := home.requests()[before:]
			if len(got) != 1 {
				t.Fatalf("home server saw %d requests, want 1: %+v", len(got), got)
			}
			if r := got[0]; r.user != tc.user || r.password != tc.password || !r.validMA || !r.proxyState {
				t.Errorf("home server saw %+v; want user %q, password %q, a valid Message-Authenticator and Proxy-State", r, tc.user, tc.password)
			}
		})
	}

	t.Run("retransmission", func(t *testing.T) {
		before := len(home.requests())
		// radclient resends after 1 s; the home server answers after 3.
		res, err := Radclient(ctx, RadclientRequest{Addr: f.Addr, Secret: "front-secret", Attrs: login("carol", "right"), Timeout: time.Second, Retries: 8})
		if err != nil {
			t.Fatal(err)
		}
		if res.Code() != AccessAccept || res.Sent < 2 || len(res.Replies) != 1 {
			t.Fatalf("got %s after %d sends, want one Access-Accept after a retransmission\n%s", res.Code(), res.Sent, res)
		}
		// layeh.com/radius drops a duplicate that comes while it handles
		// the first copy, and handles one that comes just after: the
		// home server sees one or more copies, all with the proxied
		// request's identifier and authenticator. FreeRADIUS's log shows
		// it passed the retransmissions on as duplicates.
		got := home.requests()[before:]
		if len(got) == 0 {
			t.Fatal("home server handled nothing")
		}
		for _, r := range got[1:] {
			if r.id != got[0].id || r.authenticator != got[0].authenticator {
				t.Errorf("a retransmission reached the home server as a new request: %+v, first %+v", r, got[0])
			}
		}
		if !f.WaitLog(regexp.MustCompile(`Sending duplicate proxied request to home server`), 5*time.Second) {
			t.Error("FreeRADIUS did not pass the NAS's retransmission on to the home server")
		}
	})

	t.Run("home server silent", func(t *testing.T) {
		start := time.Now()
		res, err := Radclient(ctx, RadclientRequest{Addr: f.Addr, Secret: "front-secret", Attrs: login("silent", "right"), Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if res.Code() != AccessReject {
			t.Fatalf("got %s, want the proxy's reject at the end of its response window\n%s", res.Code(), res)
		}
		if took := time.Since(start); took < 9*time.Second {
			t.Errorf("rejected after %s, before the 10 s response window ended", took)
		}
	})
}

// TestParseRadclient checks the parser on radclient's own words.
func TestParseRadclient(t *testing.T) {
	stdout := strings.Join([]string{
		"Sent Access-Request Id 1 from 0.0.0.0:1 to 127.0.0.1:2 length 63",
		"\tUser-Name = \"alice\"",
		"Received Access-Challenge Id 1 from 127.0.0.1:2 to 127.0.0.1:1 length 51",
		"\tReply-Message = \"Enter the code \\\"we\\\" sent\"",
		"\tState = 0x0102",
		"\tMessage-Authenticator = 0x8f0b",
		"Sent Access-Request Id 2 from 0.0.0.0:1 to 127.0.0.1:2 length 63",
		"Received Access-Reject Id 2 from 127.0.0.1:2 to 127.0.0.1:1 length 20",
		"Sent Access-Request Id 3 from 0.0.0.0:1 to 127.0.0.1:2 length 63",
		"Packet summary:",
		"\tAccepted      : 0",
		"\tRejected      : 1",
		"\tLost          : 1",
		"",
	}, "\n")
	res := parseRadclient(stdout, "(2) No reply from server for ID 3 socket 3\n")
	want := fmt.Sprint(map[string]int{AccessChallenge: 1, AccessReject: 1, NoReply: 1})
	if got := fmt.Sprint(res.Counts()); got != want || res.Sent != 3 {
		t.Fatalf("counts %s, sent %d; want %s, 3", got, res.Sent, want)
	}
	r := res.Reply()
	if msg, _ := r.Get("Reply-Message"); msg != `Enter the code "we" sent` {
		t.Errorf("Reply-Message = %q", msg)
	}
	if st, _ := r.Get("State"); st != "0x0102" || !r.HasMessageAuthenticator() || res.Replies[1].HasMessageAuthenticator() {
		t.Errorf("first reply %+v, second %+v", r, res.Replies[1])
	}
}
