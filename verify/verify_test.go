package verify_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/verify"
)

// TestNewCodeUniform draws many codes and runs a chi-square test on the
// digits at every position: rejection sampling must leave no digit likelier
// than another. The random source is a seeded ChaCha8, so the test is
// deterministic; it tests the mapping from bytes to digits, not the entropy.
func TestNewCodeUniform(t *testing.T) {
	const (
		n      = 20000
		length = 6
		// chi-square critical value for 9 degrees of freedom at p = 0.001.
		critical = 27.877
	)
	src := mrand.NewChaCha8([32]byte{1, 2, 3})
	var counts [length][10]int
	for range n {
		code, err := verify.NewCode(src, length)
		if err != nil {
			t.Fatal(err)
		}
		if len(code) != length || strings.Trim(code, "0123456789") != "" {
			t.Fatalf("code %q is not %d digits", code, length)
		}
		for i, c := range code {
			counts[i][c-'0']++
		}
	}
	for pos, digits := range counts {
		expected := float64(n) / 10
		chi := 0.0
		for _, c := range digits {
			d := float64(c) - expected
			chi += d * d / expected
		}
		if chi > critical {
			t.Errorf("position %d: chi-square %.1f > %.1f; counts %v", pos, chi, critical, digits)
		}
	}
}

func TestNewCodeLengths(t *testing.T) {
	for n := 0; n <= 12; n++ {
		code, err := verify.NewCode(rand.Reader, n)
		ok := n >= verify.MinCodeLength && n <= verify.MaxCodeLength
		switch {
		case ok && (err != nil || len(code) != n):
			t.Errorf("NewCode(%d) = %q, %v", n, code, err)
		case !ok && err == nil:
			t.Errorf("NewCode(%d) = %q, want an error", n, code)
		}
	}
	if _, err := verify.NewCode(iotest.ErrReader(errors.New("no entropy")), 6); err == nil {
		t.Error("NewCode with a failing source succeeded")
	}
	cfg := verifytest.NewService(t).Config
	for _, l := range []int{3, 11} {
		cfg.CodeLength = l
		if _, err := verify.NewService(cfg); err == nil {
			t.Errorf("NewService with code length %d succeeded", l)
		}
	}
}

func TestNewID(t *testing.T) {
	id, err := verify.NewID(strings.NewReader(strings.Repeat("\xab", 16)))
	if err != nil || id != "VE"+strings.Repeat("ab", 16) {
		t.Fatalf("NewID = %q, %v; want VE and 16 bytes in hex", id, err)
	}
	if _, err := verify.NewID(strings.NewReader("short")); err == nil {
		t.Fatal("NewID with 5 random bytes succeeded")
	}
	seen := map[string]bool{}
	for range 1000 {
		id, err := verify.NewID(rand.Reader)
		if err != nil || len(id) != 34 || seen[id] {
			t.Fatalf("NewID = %q, %v (repeat: %v)", id, err, seen[id])
		}
		seen[id] = true
	}
}

func TestHasher(t *testing.T) {
	if _, err := verify.NewHasher([]byte("15 bytes secret")); err == nil {
		t.Fatal("NewHasher accepted a 15-byte key")
	}
	h1, _ := verify.NewHasher([]byte("0123456789abcdef"))
	h2, _ := verify.NewHasher([]byte("0123456789abcdeF"))
	base := h1.Hash("acme", "123456")
	if base != h1.Hash("acme", "123456") {
		t.Fatal("Hash is not deterministic")
	}
	if strings.Contains(base, "123456") || len(base) != 43 {
		t.Fatalf("Hash = %q: want 32 bytes base64url, no code in it", base)
	}
	for name, other := range map[string]string{
		"other code":     h1.Hash("acme", "123457"),
		"other tenant":   h1.Hash("globex", "123456"),
		"other key":      h2.Hash("acme", "123456"),
		"shifted border": h1.Hash("acme1", "23456"),
	} {
		if other == base {
			t.Errorf("%s hashes the same", name)
		}
	}
}

// TestHasherValue pins Hash to HMAC-SHA256(key, tenant 0x00 code) in
// base64url, the value every stored verification carries, including from
// HMACs the Hasher reuses, one after another and concurrently.
func TestHasherValue(t *testing.T) {
	key := []byte("0123456789abcdef0123")
	h, err := verify.NewHasher(key)
	if err != nil {
		t.Fatal(err)
	}
	want := func(tenant, code string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(tenant + "\x00" + code))
		return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	long := strings.Repeat("t", 200) // longer than the Hasher's stack buffer
	cases := [][2]string{{"acme", "123456"}, {"", "0000"}, {long, "9876543210"}, {"acme", "123456"}}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				for _, c := range cases {
					if got, w := h.Hash(c[0], c[1]), want(c[0], c[1]); got != w {
						t.Errorf("Hash(%.10q, %q) = %s, want %s", c[0], c[1], got, w)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestMatchHash(t *testing.T) {
	cases := []struct {
		hashes []string
		h      string
		want   bool
	}{
		{[]string{"a1", "b2", "c3"}, "b2", true},
		{[]string{"a1", "b2", "c3"}, "c3", true},
		{[]string{"a1", "b2"}, "b", false},
		{[]string{"a1", "b2"}, "b22", false},
		{nil, "a1", false},
		{[]string{""}, "", true},
	}
	for _, c := range cases {
		if got := verify.MatchHash(c.hashes, c.h); got != c.want {
			t.Errorf("MatchHash(%q, %q) = %v", c.hashes, c.h, got)
		}
	}
}

func TestMaskNumber(t *testing.T) {
	cases := map[string]string{
		"+4915123456789": "+49151*****789",
		"+12015550123":   "+12015***123",
		"+123456789":     "+12345*789",
		"+12345678":      "******678",
		"+12":            "***",
		"":               "",
	}
	for in, want := range cases {
		if got := verify.MaskNumber(in); got != want {
			t.Errorf("MaskNumber(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLimitErrorMessages(t *testing.T) {
	cases := []struct {
		ch    verify.Channel
		after time.Duration
		want  string
	}{
		{verify.ChannelSMS, 10 * time.Minute, "You've reached our limit on text verification codes. Please try again in 10 minutes."},
		{verify.ChannelSMS, 7*time.Minute + time.Second, "You've reached our limit on text verification codes. Please try again in 8 minutes."},
		{verify.ChannelCall, 90 * time.Second, "You've reached our limit on verification calls. Please try again in 1 minute."},
		{verify.ChannelCall, 59 * time.Second, "You've reached our limit on verification calls. Please try again in 59 seconds."},
		{verify.ChannelSMS, 300 * time.Millisecond, "You've reached our limit on text verification codes. Please try again in 1 second."},
		{verify.ChannelSMS, 90 * time.Minute, "You've reached our limit on text verification codes. Please try again in 1 hour."},
		{verify.ChannelSMS, 24 * time.Hour, "You've reached our limit on text verification codes. Please try again in 24 hours."},
		{"", time.Hour, "You've reached our limit on verification attempts. Please try again in 1 hour."},
		// Aggregate caps are no one person's doing: other words, same shape.
		{"sms aggregate", 40 * time.Second, "We can't send text verification codes right now. This is not because of anything you did. Please try again in 40 seconds."},
		{"call aggregate", 12 * time.Hour, "We can't place verification calls right now. This is not because of anything you did. Please try again in 12 hours."},
	}
	for _, c := range cases {
		le := &verify.LimitError{Channel: c.ch, RetryAfter: c.after}
		if ch, ok := strings.CutSuffix(string(c.ch), " aggregate"); ok {
			le.Channel, le.Aggregate = verify.Channel(ch), true
		}
		err := error(le)
		if err.Error() != c.want {
			t.Errorf("%s after %s: %q, want %q", c.ch, c.after, err.Error(), c.want)
		}
		if !errors.Is(err, verify.ErrRateLimited) || verify.ErrorCode(err) != verify.CodeRateLimited {
			t.Errorf("LimitError is not ErrRateLimited")
		}
	}
}

func TestErrorCode(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{verify.Invalid(verify.ErrInvalidRequest, "x"), verify.CodeInvalidRequest},
		{verify.Invalid(verify.ErrInvalidNumber, "x"), verify.CodeInvalidNumber},
		{verify.Invalid(verify.ErrUnsupportedNumber, "x"), verify.CodeUnsupportedNumber},
		{verify.Invalid(verify.ErrCountryNotAllowed, "x"), verify.CodeCountryNotAllowed},
		{fmt.Errorf("get: %w", verify.ErrNotFound), verify.CodeNotFound},
		{&verify.NotPendingError{Status: verify.StatusApproved}, verify.CodeNotPending},
		{verify.ErrUnavailable, verify.CodeUnavailable},
		{errors.New("redis: connection refused"), verify.CodeUnavailable},
	}
	for _, c := range cases {
		if got := verify.ErrorCode(c.err); got != c.want {
			t.Errorf("ErrorCode(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}

const number = "+4915123456789"

func startCall(t *testing.T, s *verifytest.Service, channel verify.Channel, mode verify.CallMode) *verify.Verification {
	t.Helper()
	v, err := s.Start(context.Background(), verify.StartRequest{Tenant: "acme", To: number, Channel: channel, CallMode: mode})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return v
}

// approved, fraud and ended give ev the type and Outcome a call provider
// reports, as ivr decides them: # approves, 0# denies, and an approve-mode
// call that ends otherwise fails with how it ended as the reason.
func approved(ev verify.Event) verify.Event {
	ev.Type, ev.Outcome = verify.EventCallApproved, &verify.Outcome{Status: verify.StatusApproved}
	return ev
}

func fraud(ev verify.Event) verify.Event {
	ev.Type, ev.Outcome = verify.EventFraudReported, &verify.Outcome{Status: verify.StatusDenied, Reason: "fraud_reported"}
	return ev
}

func ended(ev verify.Event) verify.Event {
	ev.Outcome = &verify.Outcome{Status: verify.StatusFailed, Reason: string(ev.Type)}
	return ev
}

func TestReport(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name       string
		channel    verify.Channel
		mode       verify.CallMode
		event      verify.EventType
		wantErr    error
		wantStatus verify.Status
		wantReason string
	}{
		{"call approved", verify.ChannelCall, verify.CallModeApprove, verify.EventCallApproved, nil, verify.StatusApproved, ""},
		{"fraud reported", verify.ChannelCall, verify.CallModeApprove, verify.EventFraudReported, nil, verify.StatusDenied, "fraud_reported"},
		{"approve call not answered", verify.ChannelCall, verify.CallModeApprove, verify.EventNoAnswer, nil, verify.StatusFailed, "no_answer"},
		{"approve call busy", verify.ChannelCall, verify.CallModeApprove, verify.EventBusy, nil, verify.StatusFailed, "busy"},
		{"approve call hung up", verify.ChannelCall, verify.CallModeApprove, verify.EventCompleted, nil, verify.StatusFailed, "completed"},
		{"approve call not confirmed", verify.ChannelCall, verify.CallModeApprove, verify.EventFailed, nil, verify.StatusFailed, "not_confirmed"},
		{"code call not answered stays pending", verify.ChannelCall, verify.CallModeCode, verify.EventNoAnswer, nil, verify.StatusPending, ""},
		{"sms undelivered stays pending", verify.ChannelSMS, "", verify.EventUndelivered, nil, verify.StatusPending, ""},
		{"ringing stays pending", verify.ChannelCall, verify.CallModeApprove, verify.EventRinging, nil, verify.StatusPending, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := verifytest.NewService(t)
			v := startCall(t, s, c.channel, c.mode)
			ev := verify.Event{Type: c.event, Channel: c.channel, Provider: "test"}
			if c.wantStatus != verify.StatusPending {
				// The outcome the call's script decided, which the Service records.
				ev.Outcome = &verify.Outcome{Status: c.wantStatus, Reason: c.wantReason}
			}
			err := s.Report(ctx, v.ID, ev)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("Report = %v, want %v", err, c.wantErr)
			}
			got, _ := s.Get(ctx, "acme", v.ID)
			if got.Status != c.wantStatus || got.Reason != c.wantReason {
				t.Fatalf("after %s: %s (%q), want %s (%q)", c.event, got.Status, got.Reason, c.wantStatus, c.wantReason)
			}
			if last := got.Events[len(got.Events)-1]; last.Type != c.event {
				t.Fatalf("last event %s, want %s", last.Type, c.event)
			}
		})
	}
}

func TestReportFraudBlocksNumber(t *testing.T) {
	ctx := context.Background()
	s := verifytest.NewService(t, verifytest.WithConfig(func(c *verify.Config) { c.FraudBlock = time.Hour }))
	v := startCall(t, s, verify.ChannelCall, verify.CallModeApprove)
	if err := s.Report(ctx, v.ID, fraud(verify.Event{})); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []verify.Channel{verify.ChannelCall, verify.ChannelSMS} {
		_, err := s.Start(ctx, verify.StartRequest{Tenant: "acme", To: number, Channel: ch})
		var le *verify.LimitError
		if !errors.As(err, &le) || le.RetryAfter != time.Hour {
			t.Fatalf("%s start after fraud = %v, want a LimitError for 1h", ch, err)
		}
	}
	s.Clock.Add(time.Hour)
	if _, err := s.Start(ctx, verify.StartRequest{Tenant: "acme", To: number}); err != nil {
		t.Fatalf("start after the block = %v", err)
	}
	if n := len(s.Caller.Calls()); n != 1 {
		t.Fatalf("%d calls placed, want 1", n)
	}
}

func TestReportAfterEnd(t *testing.T) {
	ctx := context.Background()
	s := verifytest.NewService(t)
	v := startCall(t, s, verify.ChannelCall, verify.CallModeApprove)
	if _, err := s.Cancel(ctx, "acme", v.ID); err != nil {
		t.Fatal(err)
	}
	err := s.Report(ctx, v.ID, approved(verify.Event{}))
	var np *verify.NotPendingError
	if !errors.As(err, &np) || np.Status != verify.StatusCanceled {
		t.Fatalf("approve after cancel = %v, want NotPendingError canceled", err)
	}
	got, _ := s.Get(ctx, "acme", v.ID)
	if got.Status != verify.StatusCanceled || got.Events[len(got.Events)-1].Type != verify.EventCallApproved {
		t.Fatalf("after a late approval: %s, events %v", got.Status, got.Events)
	}
	// Provider retries carry a key and are recorded once.
	for range 2 {
		if err := s.Report(ctx, v.ID, verify.Event{Type: verify.EventDelivered, Key: "SM1:delivered"}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ = s.Get(ctx, "acme", v.ID)
	n := 0
	for _, e := range got.Events {
		if e.Type == verify.EventDelivered {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("a retried report was recorded %d times", n)
	}
	if err := s.Report(ctx, "VEnone", verify.Event{Type: verify.EventDelivered}); !errors.Is(err, verify.ErrNotFound) {
		t.Fatalf("report on an unknown id = %v", err)
	}
}

// TestDrainRefusesStartsOnly: a draining Service starts no verification
// or relayed message (ErrDraining, an ErrUnavailable), and still checks
// codes and records the events of the verifications it has.
func TestDrainRefusesStartsOnly(t *testing.T) {
	s := verifytest.NewService(t)
	v := startCall(t, s, verify.ChannelCall, verify.CallModeApprove)
	s.Drain()
	if !s.Draining() {
		t.Fatal("Draining() is false after Drain")
	}
	ctx := context.Background()
	_, err := s.Start(ctx, verify.StartRequest{Tenant: "acme", To: "+4915123456780", Channel: verify.ChannelSMS})
	if !errors.Is(err, verify.ErrDraining) || !errors.Is(err, verify.ErrUnavailable) {
		t.Errorf("Start while draining: %v, want ErrDraining wrapping ErrUnavailable", err)
	}
	if _, err := s.Relay(ctx, verify.MessageRequest{Tenant: "acme", To: "+4915123456780", Body: "Your code is 123456"}); !errors.Is(err, verify.ErrDraining) {
		t.Errorf("Relay while draining: %v, want ErrDraining", err)
	}
	if err := s.Report(ctx, v.ID, approved(verify.Event{Type: verify.EventKeyPressed, Channel: verify.ChannelCall, Provider: "sip", ProviderRef: "c1", Attempt: 1, Key: "c1/k"})); err != nil {
		t.Fatalf("Report while draining: %v", err)
	}
	got, err := s.Get(ctx, "acme", v.ID)
	if err != nil || got.Status != verify.StatusApproved {
		t.Fatalf("after the approval while draining: %v %v, want approved", got, err)
	}
}
