package metrics_test

import (
	"context"
	"errors"
	"testing"

	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/metrics"
	"github.com/verigate/verigate/verify"
)

// Each path of the lifecycle moves its own series, with bounded labels:
// the approval methods, denial, expiry, send failure, resend, limit hits
// and provider delivery reports.
func TestLifecycleSeries(t *testing.T) {
	m := metrics.NewVerifications()
	s := verifytest.NewService(t, verifytest.WithConfig(func(c *verify.Config) { c.Lifecycle = m }))
	ctx := context.Background()
	p := verifytest.Provider
	start := func(to string, ch verify.Channel, mode verify.CallMode) *verify.Verification {
		t.Helper()
		v, err := s.Start(ctx, verify.StartRequest{Tenant: "t", To: to, Channel: ch, CallMode: mode})
		if err != nil {
			t.Fatalf("start %s: %v", ch, err)
		}
		return v
	}

	// SMS approved by its code, after a resend and a provider's report.
	v := start("+4915123456701", verify.ChannelSMS, "")
	start("+4915123456701", verify.ChannelSMS, "")
	if err := s.Report(ctx, v.ID, verify.Event{Type: verify.EventDelivered, Channel: verify.ChannelSMS, Provider: p}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(ctx, "t", v.ID, s.Sender.LastCode(t, "+4915123456701")); err != nil {
		t.Fatal(err)
	}
	// A call approved by #, one denied (fraud), one by the code it read out.
	v = start("+4915123456702", verify.ChannelCall, verify.CallModeApprove)
	if err := s.Report(ctx, v.ID, verify.Event{Type: verify.EventKeyPressed, Channel: verify.ChannelCall, Provider: p,
		Outcome: &verify.Outcome{Status: verify.StatusApproved}}); err != nil {
		t.Fatal(err)
	}
	v = start("+4915123456703", verify.ChannelCall, verify.CallModeApprove)
	if err := s.Report(ctx, v.ID, verify.Event{Type: verify.EventKeyPressed, Channel: verify.ChannelCall, Provider: p,
		Outcome: &verify.Outcome{Status: verify.StatusDenied, Reason: "fraud_reported"}}); err != nil {
		t.Fatal(err)
	}
	v = start("+4915123456704", verify.ChannelCall, verify.CallModeCode)
	calls := s.Caller.Calls()
	if _, err := s.Check(ctx, "t", v.ID, calls[len(calls)-1].Code); err != nil {
		t.Fatal(err)
	}
	// Expired: a check after the lifetime finds it.
	v = start("+4915123456705", verify.ChannelSMS, "")
	s.Clock.Add(verify.DefaultLifetime + 1)
	if _, err := s.Check(ctx, "t", v.ID, "123456"); err != nil && !errors.Is(err, verify.ErrNotPending) {
		t.Fatal(err)
	}
	// A send the provider refused.
	s.Sender.Fail(errors.New("provider down"))
	if _, err := s.Start(ctx, verify.StartRequest{Tenant: "t", To: "+4915123456706", Channel: verify.ChannelSMS}); err == nil {
		t.Fatal("a failed send started")
	}
	s.Sender.Fail(nil)
	// Limit: the sixth SMS to one number in ten minutes.
	var limited *verify.LimitError
	for range 10 {
		if _, err := s.Start(ctx, verify.StartRequest{Tenant: "t", To: "+4915123456707", Channel: verify.ChannelSMS}); errors.As(err, &limited) {
			break
		}
	}
	if limited == nil {
		t.Fatal("no limit hit")
	}

	want := map[string]float64{
		`verigate_verification_sends_total{channel="sms",country="DE",provider="` + p + `",send="first"}`:             4,
		`verigate_verification_sends_total{channel="sms",country="DE",provider="` + p + `",send="resend"}`:            5,
		`verigate_verification_sends_total{channel="call",country="DE",provider="` + p + `",send="first"}`:            3,
		`verigate_verifications_approved_total{channel="sms",country="DE",method="sms_code",provider="` + p + `"}`:    1,
		`verigate_verifications_approved_total{channel="call",country="DE",method="voice_key",provider="` + p + `"}`:  1,
		`verigate_verifications_approved_total{channel="call",country="DE",method="voice_code",provider="` + p + `"}`: 1,
		`verigate_verifications_ended_total{channel="call",country="DE",provider="` + p + `",status="denied"}`:        1,
		`verigate_verifications_ended_total{channel="sms",country="DE",provider="` + p + `",status="expired"}`:        1,
		`verigate_verifications_ended_total{channel="sms",country="DE",provider="` + p + `",status="failed"}`:         1,
		`verigate_delivery_reports_total{channel="sms",country="DE",provider="` + p + `",status="delivered"}`:         1,
		`verigate_limit_hits_total{channel="sms",policy="` + limited.Policy + `"}`:                                    1,
	}
	got := series(t, m)
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %v, want %v", k, got[k], w)
		}
	}
	if t.Failed() {
		t.Logf("series: %v", got)
	}
}

// A verification nobody reads after its lifetime is counted as expired by
// the sweep, once, and its callback is queued.
func TestExpirySweepCounts(t *testing.T) {
	m := metrics.NewVerifications()
	s := verifytest.NewService(t, verifytest.WithConfig(func(c *verify.Config) { c.Lifecycle = m }))
	ctx := context.Background()
	v, err := s.Start(ctx, verify.StartRequest{Tenant: "t", To: "+4915123456709", Channel: verify.ChannelSMS, CallbackURL: "https://idp.example/cb"})
	if err != nil {
		t.Fatal(err)
	}
	key := `verigate_verifications_ended_total{channel="sms",country="DE",provider="` + verifytest.Provider + `",status="expired"}`
	if n, _, err := s.ExpireDue(ctx); err != nil || n != 0 {
		t.Fatalf("sweep within the lifetime: %d expired, %v", n, err)
	}
	s.Clock.Add(verify.DefaultLifetime)
	for range 2 {
		if _, _, err := s.ExpireDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := series(t, m)[key]; got != 1 {
		t.Errorf("%s = %v after two sweeps, want 1", key, got)
	}
	notices := s.Notifier.Notices()
	if len(notices) != 1 || notices[0].ID != v.ID || notices[0].Status != verify.StatusExpired {
		t.Errorf("notices = %+v, want one: %s expired", notices, v.ID)
	}
}
