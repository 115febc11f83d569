package radius_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/directory"
	"github.com/verigate/verigate/internal/peertest"
	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/radius"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

// The end-to-end tests of issue 18 with Debian's FreeRADIUS and radclient
// (internal/peertest): radclient plays the NAS, FreeRADIUS proxies to
// Verigate (primary none) or is Verigate's upstream (primary radius), and
// a SIP test phone answers Verigate's call and presses # or 0#.

const (
	frAliceNumber    = "+4915123456789"
	frVerigateSecret = "verigate-home-secret"
	frNASSecret      = "nas-front-secret"
	frUpstreamSecret = "upstream-secret"
	frAlicePassword  = "alice-pw"
)

// frDirectory is the directory serve builds from a static file: alice's
// mobile, typed as people type it.
func frDirectory(t *testing.T) directory.Chain {
	t.Helper()
	file := filepath.Join(t.TempDir(), "people.csv")
	if err := os.WriteFile(file, []byte("username,upn,display_name,mobile\nalice,alice@example.com,Alice Example,+49 151 23456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := directory.New(directory.Config{Static: directory.StaticConfig{File: file}}, directory.Options{Parser: route.Classifier{}, Logger: frLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// frTones speaks every prompt as a 400 ms tone, so a call reaches the
// question for a key within a second or two.
type frTones struct{}

func (frTones) Audio(_ string, _ prompts.ID, c audio.Codec) ([]byte, error) {
	pcm := make([]int16, 3200)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000))
	}
	return c.Encode(nil, pcm), nil
}

func frLogger() *slog.Logger {
	if os.Getenv("VERIGATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// frStack is Verigate's RADIUS server with a SIP caller to one test phone.
type frStack struct {
	addr string // the RADIUS server's UDP address
	svc  *verifytest.Service

	mu    sync.Mutex
	rings int                 // INVITEs the phone got
	calls []siptest.PhoneCall // the phone's finished calls
}

// phoneRings returns how many calls reached the phone so far.
func (e *frStack) phoneRings() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rings
}

func (e *frStack) phoneCalls() []siptest.PhoneCall {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]siptest.PhoneCall(nil), e.calls...)
}

// waitCalls waits up to d for the phone to have finished n calls.
func (e *frStack) waitCalls(n int, d time.Duration) []siptest.PhoneCall {
	deadline := time.Now().Add(d)
	for {
		if c := e.phoneCalls(); len(c) >= n || time.Now().After(deadline) {
			return c
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// frOptions shape frStartVerigate's stack.
type frOptions struct {
	press string        // what the phone presses after answering
	ring  time.Duration // how long it rings first; 100 ms if zero
	// The radius: settings.
	primary       radius.Primary
	secondFactor  string
	answerTimeout time.Duration // 40 s if zero
}

// frStartVerigate starts a test phone, a SIP caller dialling it, a
// verify.Service on memory (SMS recorded by verifytest's Sender), and
// Verigate's RADIUS server on loopback for client 127.0.0.1.
func frStartVerigate(t *testing.T, o frOptions) *frStack {
	t.Helper()
	if o.ring == 0 {
		o.ring = 100 * time.Millisecond
	}
	if o.answerTimeout == 0 {
		o.answerTimeout = 40 * time.Second
	}
	e := &frStack{}
	phone, err := siptest.NewPhone(siptest.PhoneConfig{
		Listen: "127.0.0.1:0", RTPPorts: "31200-31399", Ring: o.ring,
		Press: o.press, After: 1200 * time.Millisecond, KeyGap: 300 * time.Millisecond,
		Logger: frLogger().With("side", "phone"),
		OnCallEnd: func(pc siptest.PhoneCall) {
			e.mu.Lock()
			e.calls = append(e.calls, pc)
			e.mu.Unlock()
		},
		OnEvent: func(ev siptest.PhoneEvent) {
			if ev.Kind == siptest.PhoneIncoming {
				e.mu.Lock()
				e.rings++
				e.mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { phone.Close() })
	trunk := phone.LoopbackTrunk()
	caller, err := sip.NewCaller(sip.Config{Listen: "127.0.0.1:0", RTPPorts: "31000-31199", DefaultTrunk: trunk.Name, Trunks: []sip.Trunk{trunk}},
		sip.Options{Audio: frTones{}, Logger: frLogger().With("side", "gateway"), KeyTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { caller.Close() })
	e.svc = verifytest.NewService(t, verifytest.WithConfig(func(c *verify.Config) {
		c.Callers = map[string]verify.Caller{sip.Provider: caller}
		c.DefaultCaller = sip.Provider
	}))
	caller.ReportTo(e.svc)

	srv, err := radius.Listen(radius.Config{
		Listen:        "127.0.0.1:0",
		Clients:       []radius.Client{{Address: "127.0.0.1", Secret: frVerigateSecret, Name: "freeradius"}},
		Primary:       o.primary,
		SecondFactor:  o.secondFactor,
		AnswerTimeout: o.answerTimeout,
	}, radius.Options{Verifier: e.svc, Directory: frDirectory(t), Logger: frLogger().With("side", "radius")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("radius server: %v", err)
		}
	})
	e.addr = srv.Addr().String()
	return e
}

// frProxyTo starts FreeRADIUS proxying everything to Verigate, with a
// response window long enough for the call.
func frProxyTo(t *testing.T, e *frStack) *peertest.FreeRADIUS {
	return peertest.StartFreeRADIUS(t, peertest.FreeRADIUSConfig{
		Mode: peertest.FreeRADIUSProxy, Secret: frNASSecret,
		HomeServer: e.addr, HomeSecret: frVerigateSecret, ResponseWindow: 60 * time.Second,
	})
}

func frLogin(addr, password string) peertest.RadclientRequest {
	return peertest.RadclientRequest{
		Addr: addr, Secret: frNASSecret, Timeout: 50 * time.Second,
		Attrs: []peertest.RADIUSAttr{{Name: "User-Name", Value: "alice"}, {Name: "User-Password", Value: password}, {Name: "NAS-Identifier", Value: "vpn-1"}},
	}
}

// TestFreeRADIUSProxyPrimaryNone: radclient → FreeRADIUS (checks nothing,
// proxies) → Verigate (primary none) → the phone. # approves, 0# reports
// fraud; the NAS gets Accept or Reject with a Message-Authenticator, and
// a NAS retransmitting through the proxy while the phone rings starts one
// call only.
func TestFreeRADIUSProxyPrimaryNone(t *testing.T) {
	for _, tc := range []struct {
		name, press   string
		ring, timeout time.Duration
		retries       int
		want          string
		reply         *regexp.Regexp
	}{
		{"pressed #", "#", 100 * time.Millisecond, 50 * time.Second, 1, peertest.AccessAccept, regexp.MustCompile(`verified`)},
		{"pressed 0#", "0#", 100 * time.Millisecond, 50 * time.Second, 1, peertest.AccessReject, regexp.MustCompile(`fraud`)},
		{"NAS retransmits while ringing", "#", 5 * time.Second, 2 * time.Second, 20, peertest.AccessAccept, regexp.MustCompile(`verified`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			e := frStartVerigate(t, frOptions{press: tc.press, ring: tc.ring, primary: radius.Primary{Mode: "none"}})
			f := frProxyTo(t, e)
			req := frLogin(f.Addr, "anything")
			req.Timeout, req.Retries = tc.timeout, tc.retries
			res, err := peertest.Radclient(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := res.Reply().Get("Reply-Message")
			if res.Code() != tc.want || !res.Reply().HasMessageAuthenticator() || !tc.reply.MatchString(msg) {
				t.Fatalf("got %s %q (Message-Authenticator %v), want %s matching %s\n%s",
					res.Code(), msg, res.Reply().HasMessageAuthenticator(), tc.want, tc.reply, res)
			}
			calls := e.waitCalls(1, 10*time.Second)
			if len(calls) != 1 || calls[0].KeysSent != tc.press {
				t.Fatalf("phone calls %+v, want one in which %q was pressed", calls, tc.press)
			}
			if tc.retries > 1 {
				if res.Sent < 2 {
					t.Errorf("radclient sent %d times; the test needs a retransmission during the call", res.Sent)
				}
				if !f.WaitLog(regexp.MustCompile(`Sending duplicate proxied request to home server`), 5*time.Second) {
					t.Error("FreeRADIUS passed no retransmission on to Verigate")
				}
				// Every retransmission came while the phone rang,
				// before the answer: a second call would have rung.
				if n := e.phoneRings(); n != 1 {
					t.Errorf("the phone rang %d times, want 1", n)
				}
			}
		})
	}
}

// TestFreeRADIUSUpstreamPrimaryRadius: radclient → FreeRADIUS proxy →
// Verigate (primary radius) → FreeRADIUS upstream checking PAP. The right
// password and # are an Accept; a wrong password a Reject without a call.
// The upstream requires a Message-Authenticator, so Verigate sends one.
func TestFreeRADIUSUpstreamPrimaryRadius(t *testing.T) {
	for _, tc := range []struct {
		name, password string
		want           string
		calls          int
	}{
		{"right password, pressed #", frAlicePassword, peertest.AccessAccept, 1},
		{"wrong password", "wrong-pw", peertest.AccessReject, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			up := peertest.StartFreeRADIUS(t, peertest.FreeRADIUSConfig{
				Mode: peertest.FreeRADIUSUpstream, Secret: frUpstreamSecret, Users: map[string]string{"alice": frAlicePassword},
			})
			e := frStartVerigate(t, frOptions{press: "#", primary: radius.Primary{Mode: "radius", RADIUS: radius.UpstreamRAD{Address: up.Addr, Secret: frUpstreamSecret, Timeout: 5 * time.Second}}})
			f := frProxyTo(t, e)
			res, err := peertest.Radclient(ctx, frLogin(f.Addr, tc.password))
			if err != nil {
				t.Fatal(err)
			}
			if res.Code() != tc.want || !res.Reply().HasMessageAuthenticator() {
				t.Fatalf("got %s, want %s with a Message-Authenticator\n%s", res.Code(), tc.want, res)
			}
			if msg, _ := res.Reply().Get("Reply-Message"); tc.calls == 0 && !regexp.MustCompile(`(?i)password`).MatchString(msg) {
				t.Errorf("Reply-Message %q does not speak of the password", msg)
			}
			if !up.WaitLog(regexp.MustCompile(`Received Access-Request[^\n]*\n(\(\d+\) +[\w-]+ = [^\n]*\n)*?\(\d+\) +Message-Authenticator = 0x`), 5*time.Second) {
				t.Errorf("the upstream saw no Access-Request with a Message-Authenticator")
			}
			if calls := e.waitCalls(tc.calls, 10*time.Second); len(calls) != tc.calls || e.phoneRings() != tc.calls {
				t.Fatalf("phone calls %+v (rang %d times), want %d", calls, e.phoneRings(), tc.calls)
			}
		})
	}
}

// TestFreeRADIUSProxyPrimaryLDAP: radclient → FreeRADIUS proxy → Verigate
// (primary ldap: a bind as the user against a real slapd, over StartTLS)
// → the phone. The right password and # are an Accept; a wrong password a
// Reject without a call.
func TestFreeRADIUSProxyPrimaryLDAP(t *testing.T) {
	certs := peertest.NewCerts(t)
	sl := peertest.StartSlapd(t, peertest.SlapdOptions{Users: []peertest.LDAPUser{{UID: "alice", Password: frAlicePassword}}, TLS: certs})
	primary := radius.Primary{Mode: "ldap", LDAP: radius.LDAPAuth{URL: sl.URL, StartTLS: true, CAFile: certs.CAFile, UserDN: "uid={username}," + sl.PeopleDN}}
	for _, tc := range []struct {
		name, password string
		want           string
		calls          int
	}{
		{"right password, pressed #", frAlicePassword, peertest.AccessAccept, 1},
		{"wrong password", "wrong-pw", peertest.AccessReject, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			e := frStartVerigate(t, frOptions{press: "#", primary: primary})
			f := frProxyTo(t, e)
			res, err := peertest.Radclient(ctx, frLogin(f.Addr, tc.password))
			if err != nil {
				t.Fatal(err)
			}
			if res.Code() != tc.want || !res.Reply().HasMessageAuthenticator() {
				t.Fatalf("got %s, want %s with a Message-Authenticator\n%s", res.Code(), tc.want, res)
			}
			if calls := e.waitCalls(tc.calls, 10*time.Second); len(calls) != tc.calls || e.phoneRings() != tc.calls {
				t.Fatalf("phone calls %+v (rang %d times), want %d", calls, e.phoneRings(), tc.calls)
			}
		})
	}
}

// TestFreeRADIUSBurst: 200 logins of alice at once through the proxy, 50
// in flight. Every one is answered; the per-number call limit (5 in 10
// minutes by default) lets only a few ring the phone, and the rest are
// rejected at once, without a call. Of logins whose calls overlap, a later
// one supersedes the earlier's verification (one # approves one login,
// never two), so those are rejected as not approved.
func TestFreeRADIUSBurst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := frStartVerigate(t, frOptions{press: "#", primary: radius.Primary{Mode: "none"}})
	f := frProxyTo(t, e)
	packets := make([][]peertest.RADIUSAttr, 200)
	for i := range packets {
		packets[i] = frLogin(f.Addr, "x").Attrs
	}
	res, err := peertest.Radclient(ctx, peertest.RadclientRequest{
		Addr: f.Addr, Secret: frNASSecret, Packets: packets, Parallel: 50, Timeout: 50 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	counts := res.Counts()
	accepts, rejects := counts[peertest.AccessAccept], counts[peertest.AccessReject]
	if res.Lost != 0 || accepts+rejects != 200 || accepts < 1 || accepts > 5 {
		t.Fatalf("burst: %v; want all 200 answered, 1 to 5 accepted (the call limit), the rest rejected", counts)
	}
	rejected := map[string]int{} // Reply-Message → rejects
	for _, r := range res.Replies {
		if !r.HasMessageAuthenticator() {
			t.Fatalf("a %s without Message-Authenticator", r.Code)
		}
		if r.Code == peertest.AccessReject {
			msg, _ := r.Get("Reply-Message")
			rejected[msg]++
			if !strings.HasPrefix(msg, verify.MessageCallLimit) && msg != "The call was not approved." {
				t.Errorf("a reject said %q, not the call limit's message nor a superseded login's", msg)
			}
		}
	}
	t.Logf("burst of 200: %v; rejected with %v", counts, rejected)
	if calls := e.waitCalls(accepts, 10*time.Second); len(calls) < accepts || e.phoneRings() > 5 {
		t.Errorf("the phone rang %d times, finished %d calls, for %d accepts; the limit is 5", e.phoneRings(), len(calls), accepts)
	}
}

// TestFreeRADIUSProxyNoAnswer: the phone rings and rings; Verigate gives
// up after its answer timeout and the NAS gets a Reject well before its
// own timeout (and the proxy's response window).
func TestFreeRADIUSProxyNoAnswer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	e := frStartVerigate(t, frOptions{press: "#", ring: time.Minute, primary: radius.Primary{Mode: "none"}, answerTimeout: 5 * time.Second})
	f := frProxyTo(t, e)
	start := time.Now()
	res, err := peertest.Radclient(ctx, frLogin(f.Addr, "x"))
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	msg, _ := res.Reply().Get("Reply-Message")
	if res.Code() != peertest.AccessReject || !res.Reply().HasMessageAuthenticator() || !regexp.MustCompile(`not answered`).MatchString(msg) {
		t.Fatalf("got %s %q, want a Reject saying the call was not answered\n%s", res.Code(), msg, res)
	}
	if took < 5*time.Second || took > 30*time.Second {
		t.Errorf("rejected after %s; want soon after the 5 s answer timeout", took)
	}
}

// TestFreeRADIUSProxySMSChallenge: second factor sms through the proxy.
// The first request gets an Access-Challenge with a State and the masked
// number; the NAS sends the code with that State and gets an Accept. The
// proxy passes State both ways untouched.
func TestFreeRADIUSProxySMSChallenge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	e := frStartVerigate(t, frOptions{primary: radius.Primary{Mode: "none"}, secondFactor: "sms"})
	f := frProxyTo(t, e)
	res, err := peertest.Radclient(ctx, frLogin(f.Addr, "x"))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := res.Reply().Get("Reply-Message")
	state, ok := res.Reply().Get("State")
	if res.Code() != peertest.AccessChallenge || !ok || msg != "Enter the code we sent to +49 151 *** 789" || !res.Reply().HasMessageAuthenticator() {
		t.Fatalf("got %s %q (State %v), want a challenge naming the masked number\n%s", res.Code(), msg, ok, res)
	}
	code := e.svc.Sender.LastCode(t, frAliceNumber)
	for _, tc := range []struct {
		name, code, want string
	}{
		{"wrong code", "000000", peertest.AccessChallenge}, // attempts are left: asked again
		{"right code", code, peertest.AccessAccept},
	} {
		req := frLogin(f.Addr, tc.code)
		req.Attrs = append(req.Attrs, peertest.RADIUSAttr{Name: "State", Value: state})
		res, err := peertest.Radclient(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Code() != tc.want || !res.Reply().HasMessageAuthenticator() {
			t.Fatalf("%s: got %s, want %s\n%s", tc.name, res.Code(), tc.want, res)
		}
		if next, ok := res.Reply().Get("State"); ok {
			state = next
		}
	}
	if n := e.phoneRings(); n != 0 {
		t.Errorf("the phone rang %d times in sms mode", n)
	}
}
