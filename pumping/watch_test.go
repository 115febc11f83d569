package pumping_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/pumpingtest"
	"github.com/verigate/verigate/pumping"
	"github.com/verigate/verigate/verify"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		edit func(*pumping.Config)
		want string // "" when valid
	}{
		{func(*pumping.Config) {}, ""},
		{func(c *pumping.Config) { *c = pumping.Config{} }, ""}, // zero: the defaults
		{func(c *pumping.Config) { c.Window = 5 * time.Minute }, "x.window"},
		{func(c *pumping.Config) { c.Maturity = time.Hour }, "x.maturity"},
		{func(c *pumping.Config) { c.Maturity = -time.Second }, "x.maturity"},
		{func(c *pumping.Config) { c.MinSends = -1 }, "x.min_sends"},
		{func(c *pumping.Config) { c.MinRatio = 1 }, "x.min_ratio"},
		{func(c *pumping.Config) { c.Block = -time.Hour }, "x.block"},
		{func(c *pumping.Config) { c.PrefixDigits = 13 }, "x.prefix_digits"},
		{func(c *pumping.Config) { c.FlushEvery = 2 * time.Minute }, "x.flush_every"},
	} {
		c := pumping.DefaultConfig()
		tc.edit(&c)
		err := c.Validate("x")
		if (err == nil) != (tc.want == "") || (err != nil && !strings.HasPrefix(err.Error(), tc.want+":")) {
			t.Errorf("%+v: %v, want %q", c, err, tc.want)
		}
	}
}

// sender accepts every SMS but those to numbers in fail.
type sender struct{ fail string }

func (s sender) Send(_ context.Context, m verify.Message) (string, error) {
	if strings.HasPrefix(m.To, s.fail) {
		return "", errors.New("provider refused")
	}
	return "ref", nil
}

// TestWrap: the wrapped Sender counts what the provider accepted, nothing
// else, and refuses SMS to a blocked prefix.
func TestWrap(t *testing.T) {
	now := pumpingtest.T0
	clock := func() time.Time { return now }
	w, err := pumping.New(pumpingtest.Config(), pumping.NewMemory(), pumping.Options{Now: clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s := w.Wrap(sender{fail: "+269331"})
	ctx := context.Background()
	for i := range 25 {
		if _, err := s.Send(ctx, verify.Message{To: fmt.Sprintf("+269321%06d", i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Send(ctx, verify.Message{To: fmt.Sprintf("+269331%06d", i)}); err == nil {
			t.Fatal("the provider's refusal was lost")
		}
	}
	now = now.Add(20 * time.Minute)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.Blocked("+269321000099", verify.ChannelSMS); !ok {
		t.Error("25 accepted SMS, none approved: not blocked")
	}
	if _, ok := w.Blocked("+269331000099", verify.ChannelSMS); ok {
		t.Error("SMS the provider refused were counted")
	}
	if _, err := s.Send(ctx, verify.Message{To: "+269321000099"}); !errors.Is(err, pumping.ErrBlocked) {
		t.Errorf("SMS to the blocked prefix: %v, want ErrBlocked", err)
	}
}

// TestApprovedCountsSMSOnly: approvals of call verifications, and
// verifications not approved, do not count for a prefix's SMS.
func TestApprovedCountsSMSOnly(t *testing.T) {
	now := pumpingtest.T0
	w, err := pumping.New(pumpingtest.Config(), pumping.NewMemory(), pumping.Options{Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 20 {
		to := fmt.Sprintf("+33612%06d", i)
		w.Sent(to)
		w.Approved(ctx, &verify.Verification{To: to, Channel: verify.ChannelCall, Status: verify.StatusApproved, CreatedAt: now})
		w.Approved(ctx, &verify.Verification{To: to, Channel: verify.ChannelSMS, Status: verify.StatusExpired, CreatedAt: now})
	}
	now = now.Add(20 * time.Minute)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.Blocked("+33612999999", verify.ChannelSMS); !ok {
		t.Error("20 SMS whose verifications ended by call or not at all: not blocked")
	}
}

// flaky is a Store whose Add fails while down.
type flaky struct {
	pumping.Store
	down bool
}

func (f *flaky) Add(ctx context.Context, b pumping.Batch) (map[string]pumping.Tally, map[string]time.Time, error) {
	if f.down {
		return nil, nil, errors.New("store down")
	}
	return f.Store.Add(ctx, b)
}

// TestFlushKeepsCountsWhileTheStoreIsDown: counts of a failed flush go
// with the next one.
func TestFlushKeepsCountsWhileTheStoreIsDown(t *testing.T) {
	now := pumpingtest.T0
	st := &flaky{Store: pumping.NewMemory(), down: true}
	w, err := pumping.New(pumpingtest.Config(), st, pumping.Options{Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 20 {
		w.Sent(fmt.Sprintf("+26932%07d", i))
	}
	now = now.Add(time.Minute)
	if err := w.Flush(ctx); err == nil {
		t.Fatal("a flush to a store that is down succeeded")
	}
	st.down = false
	now = now.Add(15 * time.Minute)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.Blocked("+269320999999", verify.ChannelSMS); !ok {
		t.Error("the counts of the failed flush were lost")
	}
}
