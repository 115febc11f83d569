package radius

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"

	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/verify"
)

func dropped(s *Server, reason string) float64 {
	return testutil.ToFloat64(s.dropped.WithLabelValues(reason))
}

func decided(s *Server, code radius.Code, reason string) float64 {
	return testutil.ToFloat64(s.decisions.WithLabelValues(code.String(), reason))
}

// TestCallApproved: a PAP login rings alice's mobile and is accepted once
// the call is approved; the answer carries a Message-Authenticator
// (checked by exchange) and the Reply-Message.
func TestCallApproved(t *testing.T) {
	svc := verifytest.NewService(t)
	s := startServer(t, testConfig(), Options{Verifier: svc})
	approveCalls(t, svc)
	resp := exchange(t, s, accessRequest(t, testSecret, "alice", "pw", nil), 15*time.Second)
	if resp.Code != radius.CodeAccessAccept {
		t.Fatalf("answer %v %q, want Access-Accept", resp.Code, rfc2865.ReplyMessage_GetString(resp))
	}
	if rfc2869.MessageAuthenticator_Get(resp) == nil {
		t.Error("answer without Message-Authenticator")
	}
	calls := svc.Caller.Calls()
	if len(calls) != 1 || calls[0].To != aliceE164 || calls[0].Mode != verify.CallModeApprove {
		t.Fatalf("calls %+v, want one approve-mode call to alice's mobile", calls)
	}
	if decided(s, radius.CodeAccessAccept, "approved") != 1 {
		t.Error("decision not counted")
	}
}

// TestNoAnswerRejected: a call nobody answers is rejected when
// answer_timeout ends, and the verification is canceled so that a late #
// approves nothing.
func TestNoAnswerRejected(t *testing.T) {
	svc := verifytest.NewService(t)
	cfg := testConfig()
	cfg.AnswerTimeout = 300 * time.Millisecond
	s := startServer(t, cfg, Options{Verifier: svc})
	began := time.Now()
	resp := exchange(t, s, accessRequest(t, testSecret, "alice", "pw", nil), 10*time.Second)
	if resp.Code != radius.CodeAccessReject || rfc2865.ReplyMessage_GetString(resp) != msgNoAnswer {
		t.Fatalf("answer %v %q, want Access-Reject %q", resp.Code, rfc2865.ReplyMessage_GetString(resp), msgNoAnswer)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("answered after %s with answer_timeout 300ms", d)
	}
	calls := svc.Caller.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls", len(calls))
	}
	v, err := svc.Get(context.Background(), DefaultTenant, calls[0].VerificationID)
	if err != nil || v.Status != verify.StatusCanceled {
		t.Fatalf("verification after the timeout: %+v %v, want canceled", v, err)
	}
}

// TestUnknownUserAndNoMobile: nobody is called for a user the directory
// does not know; SMS needs a mobile.
func TestUnknownUserAndNoMobile(t *testing.T) {
	svc := verifytest.NewService(t)
	cfg := testConfig()
	cfg.SecondFactor = "sms"
	s := startServer(t, cfg, Options{Verifier: svc})
	for _, user := range []string{"mallory", "bob"} {
		resp := exchange(t, s, accessRequest(t, testSecret, user, "pw", nil), 10*time.Second)
		if resp.Code != radius.CodeAccessReject || rfc2865.ReplyMessage_GetString(resp) != msgNoPhone {
			t.Errorf("%s: %v %q", user, resp.Code, rfc2865.ReplyMessage_GetString(resp))
		}
	}
	if n := len(svc.Sender.Messages()) + len(svc.Caller.Calls()); n != 0 {
		t.Errorf("%d sends", n)
	}
}

// TestSMSChallenge: in sms mode the login is challenged with a State and
// the masked number; the code in the answer is accepted. A wrong code is
// challenged again, a State is used once, and belongs to its user.
func TestSMSChallenge(t *testing.T) {
	svc := verifytest.NewService(t)
	cfg := testConfig()
	cfg.SecondFactor = "sms"
	s := startServer(t, cfg, Options{Verifier: svc})

	ch := exchange(t, s, accessRequest(t, testSecret, "alice", "pw", nil), 10*time.Second)
	if ch.Code != radius.CodeAccessChallenge {
		t.Fatalf("answer %v, want Access-Challenge", ch.Code)
	}
	if got, want := rfc2865.ReplyMessage_GetString(ch), "Enter the code we sent to +49 151 *** 789"; got != want {
		t.Errorf("Reply-Message %q, want %q", got, want)
	}
	state := rfc2865.State_Get(ch)
	if len(state) < 16 {
		t.Fatalf("State %x", state)
	}
	code := svc.Sender.LastCode(t, aliceE164)

	// Another user cannot use (or burn) alice's State.
	if r := exchange(t, s, accessRequest(t, testSecret, "bob", code, state), 10*time.Second); r.Code != radius.CodeAccessReject {
		t.Fatalf("bob with alice's State: %v", r.Code)
	}
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	again := exchange(t, s, accessRequest(t, testSecret, "alice", wrong, state), 10*time.Second)
	if again.Code != radius.CodeAccessChallenge || !strings.HasPrefix(rfc2865.ReplyMessage_GetString(again), msgWrongCode) {
		t.Fatalf("wrong code: %v %q, want a new challenge", again.Code, rfc2865.ReplyMessage_GetString(again))
	}
	// The State answered is spent.
	if r := exchange(t, s, accessRequest(t, testSecret, "alice", code, state), 10*time.Second); r.Code != radius.CodeAccessReject {
		t.Fatalf("State used twice: %v", r.Code)
	}
	ok := exchange(t, s, accessRequest(t, testSecret, "alice", code, rfc2865.State_Get(again)), 10*time.Second)
	if ok.Code != radius.CodeAccessAccept {
		t.Fatalf("right code: %v %q", ok.Code, rfc2865.ReplyMessage_GetString(ok))
	}
	if n := len(svc.Caller.Calls()); n != 0 {
		t.Errorf("%d calls in sms mode", n)
	}
}

// TestChallengeChoosesCall: the NPS extension's answer "call" to the
// challenge rings the phone instead.
func TestChallengeChoosesCall(t *testing.T) {
	svc := verifytest.NewService(t)
	cfg := testConfig()
	cfg.SecondFactor = "sms"
	s := startServer(t, cfg, Options{Verifier: svc})
	approveCalls(t, svc)
	ch := exchange(t, s, accessRequest(t, testSecret, "alice", "pw", nil), 10*time.Second)
	if ch.Code != radius.CodeAccessChallenge {
		t.Fatalf("answer %v", ch.Code)
	}
	resp := exchange(t, s, accessRequest(t, testSecret, "alice", "call", rfc2865.State_Get(ch)), 15*time.Second)
	if resp.Code != radius.CodeAccessAccept || len(svc.Caller.Calls()) != 1 {
		t.Fatalf("answer %v after %d calls, want Access-Accept after one", resp.Code, len(svc.Caller.Calls()))
	}
}

// TestPasswordCommaCode: "password,123456" checks the password and the
// code of the SMS sent before, in one Access-Request.
func TestPasswordCommaCode(t *testing.T) {
	svc := verifytest.NewService(t)
	cfg := testConfig()
	cfg.SecondFactor = "sms"
	pc := &recordingChecker{password: "s3cret,x"}
	s := startServer(t, cfg, Options{Verifier: svc, Primary: pc})
	if ch := exchange(t, s, accessRequest(t, testSecret, "alice", "s3cret,x", nil), 10*time.Second); ch.Code != radius.CodeAccessChallenge {
		t.Fatalf("first login: %v", ch.Code)
	}
	code := svc.Sender.LastCode(t, aliceE164)
	if r := exchange(t, s, accessRequest(t, testSecret, "alice", "wrong,"+code, nil), 10*time.Second); r.Code != radius.CodeAccessReject {
		t.Fatalf("wrong password with the right code: %v", r.Code)
	}
	resp := exchange(t, s, accessRequest(t, testSecret, "alice", "s3cret,x,"+code, nil), 10*time.Second)
	if resp.Code != radius.CodeAccessAccept {
		t.Fatalf("password,code: %v %q", resp.Code, rfc2865.ReplyMessage_GetString(resp))
	}
	if got := pc.seen(); got[len(got)-1] != "s3cret,x" {
		t.Errorf("primary saw %q, want the password without the code", got)
	}
	if len(svc.Sender.Messages()) != 1 {
		t.Errorf("%d SMS, want the one of the first login only", len(svc.Sender.Messages()))
	}
}

type recordingChecker struct {
	password string
	mu       sync.Mutex
	got      []string
}

func (r *recordingChecker) CheckPassword(_ context.Context, _, password string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, password)
	if password != r.password {
		return ErrWrongPassword
	}
	return nil
}

func (r *recordingChecker) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// TestRetransmissionWhileRinging: the NAS retransmits while the phone
// rings; the copy starts no second call, and a copy after the answer gets
// the very same answer.
func TestRetransmissionWhileRinging(t *testing.T) {
	svc := verifytest.NewService(t)
	s := startServer(t, testConfig(), Options{Verifier: svc})
	n := newNAS(t, s)
	req := signed(t, accessRequest(t, testSecret, "alice", "pw", nil))
	n.send(t, req)
	waitCalls(t, svc, 1)
	n.send(t, req) // while ringing
	deadline := time.Now().Add(5 * time.Second)
	for dropped(s, DropInFlight) != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if d := dropped(s, DropInFlight); d != 1 {
		t.Fatalf("in-flight duplicates counted %v, want 1", d)
	}
	if _, err := svc.Approve(context.Background(), DefaultTenant, svc.Caller.Calls()[0].VerificationID); err != nil {
		t.Fatal(err)
	}
	first, b1 := n.read(t, req, testSecret, 10*time.Second)
	if first == nil || first.Code != radius.CodeAccessAccept {
		t.Fatalf("first answer %v", first)
	}
	if extra, _ := n.read(t, req, testSecret, 300*time.Millisecond); extra != nil {
		t.Fatalf("a second answer (%v) to one request", extra.Code)
	}
	n.send(t, req) // after the answer
	again, b2 := n.read(t, req, testSecret, 5*time.Second)
	if again == nil || !bytes.Equal(b1, b2) {
		t.Fatalf("retransmission answered %x, want the first answer %x", b2, b1)
	}
	if c := len(svc.Caller.Calls()); c != 1 {
		t.Errorf("%d calls for one login", c)
	}
	if testutil.ToFloat64(s.resent) != 1 {
		t.Error("answer from the cache not counted")
	}
}

// TestDropped: packets that fail the screening are dropped unanswered,
// start nothing, and are counted by reason.
func TestDropped(t *testing.T) {
	svc := verifytest.NewService(t)
	cfg := testConfig()
	cfg.Clients = []Client{{Address: "10.0.0.0/8", Secret: "another-secret"}, {Address: "127.0.0.1", Secret: testSecret}}
	s := startServer(t, cfg, Options{Verifier: svc})

	unsigned, err := accessRequest(t, testSecret, "alice", "pw", nil).Encode()
	if err != nil {
		t.Fatal(err)
	}
	forged := signed(t, accessRequest(t, testSecret, "alice", "pw", nil))
	forged[len(forged)-1] ^= 1 // a changed attribute after signing
	big := make([]byte, MaxPacket+1)
	copy(big, signed(t, accessRequest(t, testSecret, "alice", "pw", nil)))
	acct := signed(t, accessRequest(t, testSecret, "alice", "pw", nil))
	acct[0] = byte(radius.CodeAccountingRequest)
	short := signed(t, accessRequest(t, testSecret, "alice", "pw", nil))[:30]
	tests := []struct {
		name, reason string
		b            []byte
	}{
		{"no Message-Authenticator", DropNoMessageAuth, unsigned},
		{"wrong secret", DropBadMessageAuth, signed(t, accessRequest(t, "wrong-secret", "alice", "pw", nil))},
		{"forged attribute", DropBadMessageAuth, forged},
		{"larger than 4096 bytes", DropTooBig, big},
		{"not an Access-Request", DropNotRequest, acct},
		{"truncated", DropMalformed, short},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNAS(t, s)
			before := dropped(s, tt.reason)
			n.send(t, tt.b)
			if resp, _ := n.read(t, tt.b, testSecret, 500*time.Millisecond); resp != nil {
				t.Fatalf("answered %v", resp.Code)
			}
			if got := dropped(s, tt.reason); got != before+1 {
				t.Errorf("dropped{reason=%s} = %v, want %v", tt.reason, got, before+1)
			}
		})
	}
	if n := len(svc.Caller.Calls()); n != 0 {
		t.Errorf("%d calls from dropped packets", n)
	}
}

// TestUnknownClient: a NAS not in clients is dropped and counted.
func TestUnknownClient(t *testing.T) {
	svc := verifytest.NewService(t)
	cfg := testConfig()
	cfg.Clients = []Client{{Address: "192.0.2.0/24", Secret: testSecret}}
	s := startServer(t, cfg, Options{Verifier: svc})
	n := newNAS(t, s)
	b := signed(t, accessRequest(t, testSecret, "alice", "pw", nil))
	n.send(t, b)
	if resp, _ := n.read(t, b, testSecret, 500*time.Millisecond); resp != nil {
		t.Fatalf("answered %v", resp.Code)
	}
	if d := dropped(s, DropUnknownClient); d != 1 {
		t.Errorf("dropped{unknown_client} = %v", d)
	}
}

// TestBurstWithinLimits: 200 logins at once for one person are all
// answered; the send limits (the API's) let a few calls through and
// refuse the rest with the limit's message.
func TestBurstWithinLimits(t *testing.T) {
	svc := verifytest.NewService(t, verifytest.WithPolicies(ratelimit.Policy{
		Name: "number_call", Scope: ratelimit.ScopeNumber, Channel: verify.ChannelCall, Limit: 3, Window: 10 * time.Minute,
	}))
	cfg := testConfig()
	cfg.AnswerTimeout = 200 * time.Millisecond
	s := startServer(t, cfg, Options{Verifier: svc})
	const logins = 200
	codes := make(chan *radius.Packet, logins)
	var wg sync.WaitGroup
	for range logins {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req := accessRequest(t, testSecret, "alice", "pw", nil)
			c := &radius.Client{Retry: time.Second, MaxPacketErrors: 10}
			resp, err := c.Exchange(ctx, withMessageAuth(t, req), s.Addr().String())
			if err != nil {
				t.Errorf("exchange: %v", err)
				return
			}
			codes <- resp
		})
	}
	wg.Wait()
	close(codes)
	limited, answered := 0, 0
	for r := range codes {
		answered++
		if r.Code != radius.CodeAccessReject {
			t.Errorf("answer %v, want Access-Reject (nobody presses #)", r.Code)
		}
		if strings.HasPrefix(rfc2865.ReplyMessage_GetString(r), verify.MessageCallLimit) {
			limited++
		}
	}
	if answered != logins {
		t.Fatalf("%d of %d logins answered", answered, logins)
	}
	if calls := len(svc.Caller.Calls()); calls > 3 || calls < 1 {
		t.Errorf("%d calls placed, want 1 to 3 (the limit)", calls)
	}
	if limited < logins-3 {
		t.Errorf("%d answers carry the limit's message, want at least %d", limited, logins-3)
	}
	if got := decided(s, radius.CodeAccessReject, "limited"); int(got) != limited {
		t.Errorf("decisions{limited} = %v, want %d", got, limited)
	}
}

// withMessageAuth sets p's Message-Authenticator so that layeh's client,
// which encodes an Access-Request as it is, sends it signed.
func withMessageAuth(t *testing.T, p *radius.Packet) *radius.Packet {
	t.Helper()
	b := signed(t, p)
	q, err := radius.Parse(b, p.Secret)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestStatusServer: a signed Status-Server (RFC 5997) is answered with
// Access-Accept and starts nothing; unsigned, it is dropped.
func TestStatusServer(t *testing.T) {
	svc := verifytest.NewService(t)
	s := startServer(t, testConfig(), Options{Verifier: svc})
	p := radius.New(radius.CodeStatusServer, []byte(testSecret))
	resp := exchange(t, s, p, 5*time.Second)
	if resp.Code != radius.CodeAccessAccept {
		t.Fatalf("Status-Server answered %v", resp.Code)
	}
	n := newNAS(t, s)
	unsigned, _ := radius.New(radius.CodeStatusServer, []byte(testSecret)).Encode()
	n.send(t, unsigned)
	if r, _ := n.read(t, unsigned, testSecret, 500*time.Millisecond); r != nil {
		t.Fatalf("unsigned Status-Server answered %v", r.Code)
	}
	if dropped(s, DropNoMessageAuth) != 1 || len(svc.Caller.Calls())+len(svc.Sender.Messages()) != 0 {
		t.Error("unsigned Status-Server not counted, or something was sent")
	}
}

// TestProxyStateCopied: every answer (Accept, Reject, Challenge and
// Status-Server's Accept) carries the request's Proxy-States unchanged
// and in order (RFC 2865 §5.33), and is still signed over the whole
// packet (exchange checks both authenticators).
func TestProxyStateCopied(t *testing.T) {
	states := [][]byte{[]byte("proxy-one"), {0x00, 0xff, 0x02}}
	withProxyState := func(p *radius.Packet) *radius.Packet {
		for _, st := range states {
			if err := rfc2865.ProxyState_Add(p, st); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	tests := []struct {
		name   string
		second string
		req    func() *radius.Packet
		want   radius.Code
	}{
		{"accept", "call", func() *radius.Packet { return accessRequest(t, testSecret, "alice", "pw", nil) }, radius.CodeAccessAccept},
		{"reject", "call", func() *radius.Packet { return accessRequest(t, testSecret, "alice", "wrong", nil) }, radius.CodeAccessReject},
		{"challenge", "sms", func() *radius.Packet { return accessRequest(t, testSecret, "alice", "pw", nil) }, radius.CodeAccessChallenge},
		{"status-server", "call", func() *radius.Packet { return radius.New(radius.CodeStatusServer, []byte(testSecret)) }, radius.CodeAccessAccept},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := verifytest.NewService(t)
			cfg := testConfig()
			cfg.SecondFactor = tt.second
			s := startServer(t, cfg, Options{Verifier: svc, Primary: &recordingChecker{password: "pw"}})
			approveCalls(t, svc)
			resp := exchange(t, s, withProxyState(tt.req()), 15*time.Second)
			if resp.Code != tt.want {
				t.Fatalf("answer %v, want %v", resp.Code, tt.want)
			}
			got, err := rfc2865.ProxyState_Gets(resp)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(states) {
				t.Fatalf("Proxy-States %q, want %q", got, states)
			}
			for i := range states {
				if !bytes.Equal(got[i], states[i]) {
					t.Errorf("Proxy-State %d is %q, want %q", i, got[i], states[i])
				}
			}
		})
	}
}

// TestPasswordEndingInDigits: a real password ending in "," and digits
// logs in (it is not taken for password and code), with at most two
// primary checks; behind primary none, digits with nothing pending to
// check go on to the call.
func TestPasswordEndingInDigits(t *testing.T) {
	tests := []struct {
		name    string
		primary PasswordChecker // nil: primary none
		wantPC  []string
	}{
		{"checked password", &recordingChecker{password: "secret,1234"}, []string{"secret", "secret,1234"}},
		{"primary none", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := verifytest.NewService(t)
			s := startServer(t, testConfig(), Options{Verifier: svc, Primary: tt.primary})
			approveCalls(t, svc)
			resp := exchange(t, s, accessRequest(t, testSecret, "alice", "secret,1234", nil), 15*time.Second)
			if resp.Code != radius.CodeAccessAccept || len(svc.Caller.Calls()) != 1 {
				t.Fatalf("answer %v %q after %d calls, want Access-Accept after one", resp.Code,
					rfc2865.ReplyMessage_GetString(resp), len(svc.Caller.Calls()))
			}
			if pc, ok := tt.primary.(*recordingChecker); ok {
				if got := pc.seen(); !slices.Equal(got, tt.wantPC) {
					t.Errorf("primary saw %q, want %q", got, tt.wantPC)
				}
			}
		})
	}
}
