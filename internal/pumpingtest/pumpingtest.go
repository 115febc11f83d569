// Package pumpingtest is the contract test suite of the SMS-pumping watch,
// run the same way against each pumping.Store (Memory, Redis): watches of
// one or more gateways on one store, on an injected clock.
package pumpingtest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verigate/verigate/pumping"
	"github.com/verigate/verigate/verify"
)

// NewStore returns a store with no counts and no blocks.
type NewStore func(t *testing.T) pumping.Store

// T0 is where every clock starts: on a whole minute, so slots are easy to reason about.
var T0 = time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC)

// clock is a fake clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) set(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = T0.Add(d) }

// gateway is one gateway's watch, its log and its metrics.
type gateway struct {
	w   *pumping.Watch
	log *bytes.Buffer
	reg *prometheus.Registry
}

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

type fixture struct {
	t     *testing.T
	ctx   context.Context
	clock *clock
	store pumping.Store
	seq   int
}

// Config is the watch's configuration in every test: the defaults, with
// the verification lifetime's 10 minutes as maturity.
func Config() pumping.Config {
	c := pumping.DefaultConfig()
	c.Maturity = 10 * time.Minute
	return c
}

func (f *fixture) gateway() gateway {
	f.t.Helper()
	buf := &syncBuffer{}
	w, err := pumping.New(Config(), f.store, pumping.Options{Now: f.clock.Now, Logger: slog.New(slog.NewTextHandler(buf, nil))})
	if err != nil {
		f.t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := w.Register(reg); err != nil {
		f.t.Fatal(err)
	}
	return gateway{w: w, log: &buf.Buffer, reg: reg}
}

// number returns a new number in prefix (verify.NumberPrefix of it is prefix).
func (f *fixture) number(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s%06d", prefix, f.seq)
}

// approve tells g of n approved SMS verifications to prefix begun at +began.
func (f *fixture) approve(g gateway, prefix string, began time.Duration, n int) {
	for range n {
		g.w.Approved(f.ctx, &verify.Verification{To: f.number(prefix), Channel: verify.ChannelSMS, Status: verify.StatusApproved, CreatedAt: T0.Add(began)})
	}
}

// send counts n SMS into prefix at +at; approved of them are approved
// (the approval counted when the check happens, at +at plus a minute).
func (f *fixture) send(g gateway, prefix string, at time.Duration, n, approved int) {
	f.t.Helper()
	f.clock.set(at)
	vs := make([]*verify.Verification, 0, approved)
	for i := range n {
		to := f.number(prefix)
		g.w.Sent(to)
		if i < approved {
			vs = append(vs, &verify.Verification{To: to, Channel: verify.ChannelSMS, Status: verify.StatusApproved, CreatedAt: f.clock.Now()})
		}
	}
	f.clock.set(at + time.Minute)
	for _, v := range vs {
		g.w.Approved(f.ctx, v)
	}
}

func (f *fixture) flush(g gateway, at time.Duration) {
	f.t.Helper()
	f.clock.set(at)
	if err := g.w.Flush(f.ctx); err != nil {
		f.t.Fatalf("flush at +%v: %v", at, err)
	}
}

// blocked fails unless SMS to prefix are blocked at +at as want says (and,
// when blocked, until +until).
func (f *fixture) blocked(g gateway, what, prefix string, at time.Duration, want bool, until time.Duration) {
	f.t.Helper()
	f.clock.set(at)
	got, ok := g.w.Blocked(f.number(prefix), verify.ChannelSMS)
	if ok != want || (want && !got.Equal(T0.Add(until))) {
		f.t.Errorf("%s: SMS to %s at +%v blocked %v until %v; want blocked %v until %v", what, prefix, at, ok, got, want, T0.Add(until))
	}
	if _, callBlocked := g.w.Blocked(f.number(prefix), verify.ChannelCall); callBlocked {
		f.t.Errorf("%s: calls to %s blocked, want only SMS", what, prefix)
	}
}

// metric returns the sum of the values of the series of name in g's
// registry (0 when it has none).
func metric(t *testing.T, g gateway, name string) float64 {
	t.Helper()
	mfs, err := g.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// blocks returns how many blocks g counted.
func blocks(t *testing.T, g gateway) int {
	t.Helper()
	return int(metric(t, g, "verigate_sms_pumping_blocks_total"))
}

// Run runs the whole contract against the stores newStore makes.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		run  func(f *fixture)
	}{
		{"PumpingBlocks", testPumpingBlocks},
		{"HealthyRatioDoesNotBlock", testHealthy},
		{"FreshSendsAreNotJudged", testFresh},
		{"TooFewSends", testTooFew},
		{"OutOfWindow", testOutOfWindow},
		{"ExpiryAndRepetition", testExpiryAndRepetition},
		{"AcrossGateways", testAcrossGateways},
		{"BlockOnce", testBlockOnce},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := &clock{t: T0}
			tc.run(&fixture{t: t, ctx: ctx, clock: c, store: newStore(t)})
		})
	}
}

// testPumpingBlocks: 30 SMS into +269321 and none approved. Judged once
// they have matured (10 minutes), without any new traffic: the prefix is
// blocked for SMS for 12 h, with a metric and a warning that names the
// prefix and no number; calls and other prefixes go on.
func testPumpingBlocks(f *fixture) {
	g := f.gateway()
	f.send(g, "+269321", 0, 30, 0)
	f.flush(g, 2*time.Minute)
	f.blocked(g, "before the SMS matured", "+269321", 2*time.Minute, false, 0)
	f.flush(g, 12*time.Minute)
	f.blocked(g, "after", "+269321", 12*time.Minute, true, 12*time.Minute+12*time.Hour)
	f.blocked(g, "another prefix", "+269331", 12*time.Minute, false, 0)
	if n := blocks(f.t, g); n != 1 {
		f.t.Errorf("%d blocks counted, want 1", n)
	}
	log := g.log.String()
	if !strings.Contains(log, "level=WARN") || !strings.Contains(log, "prefix=+26932") || !strings.Contains(log, "sent=30 approved=0") {
		f.t.Errorf("log %q, want a warning naming the prefix and its counts", log)
	}
	if strings.Contains(log, "+26932000") {
		f.t.Errorf("log %q names a number", log)
	}
	if n := metric(f.t, g, "verigate_sms_pumping_blocked_prefixes"); n != 1 {
		f.t.Errorf("verigate_sms_pumping_blocked_prefixes %v, want 1", n)
	}
}

// testHealthy: a busy prefix approving 80 %, and one approving exactly the
// threshold, are not blocked.
func testHealthy(f *fixture) {
	g := f.gateway()
	for m := range 10 {
		f.send(g, "+49151", time.Duration(m)*time.Minute, 50, 40)
		f.flush(g, time.Duration(m)*time.Minute+30*time.Second)
	}
	f.send(g, "+49160", 0, 30, 6) // 0.2 is not under 0.2
	f.flush(g, 30*time.Minute)
	f.blocked(g, "80 % approved", "+49151", 30*time.Minute, false, 0)
	f.blocked(g, "20 % approved", "+49160", 30*time.Minute, false, 0)
	if n := blocks(f.t, g); n != 0 {
		f.t.Errorf("%d blocks counted, want none", n)
	}
}

// testFresh: Monday 9:00, a thousand codes in five minutes and none typed
// yet: nothing is judged before the codes have had their lifetime.
func testFresh(f *fixture) {
	g := f.gateway()
	for m := range 5 {
		f.clock.set(time.Duration(m) * time.Minute)
		for range 200 {
			g.w.Sent(f.number("+49170"))
		}
		f.flush(g, time.Duration(m)*time.Minute+30*time.Second)
	}
	f.blocked(g, "fresh sends", "+49170", 5*time.Minute, false, 0)
}

// testTooFew: 19 matured SMS and no approval is too little to judge.
func testTooFew(f *fixture) {
	g := f.gateway()
	f.send(g, "+373690", 0, 19, 0)
	f.flush(g, 30*time.Minute)
	f.blocked(g, "19 sends", "+373690", 30*time.Minute, false, 0)
	f.send(g, "+373690", 30*time.Minute, 1, 0)
	f.flush(g, 45*time.Minute)
	f.blocked(g, "20 sends", "+373690", 45*time.Minute, true, 45*time.Minute+12*time.Hour)
}

// testOutOfWindow: counts older than the window no longer count.
func testOutOfWindow(f *fixture) {
	g := f.gateway()
	f.send(g, "+225010", 0, 30, 0)
	f.flush(g, 2*time.Minute) // stored, not yet matured
	f.flush(g, 2*time.Hour)   // matured, but out of the window
	f.blocked(g, "old sends", "+225010", 2*time.Hour, false, 0)
}

// testExpiryAndRepetition: the block ends after 12 h; pumping that goes
// on is blocked again (on new evidence: the counts before the first block
// were cleared), and healthy traffic afterwards is not.
func testExpiryAndRepetition(f *fixture) {
	g := f.gateway()
	f.send(g, "+998901", 0, 25, 1)
	f.flush(g, 15*time.Minute)
	first := 15*time.Minute + 12*time.Hour
	f.blocked(g, "first block", "+998901", 15*time.Minute, true, first)
	f.blocked(g, "a minute before its end", "+998901", first-time.Minute, true, first)
	f.flush(g, first)
	f.blocked(g, "at its end", "+998901", first, false, 0)

	// Pumping goes on: 19 new SMS are not enough, the 20th is.
	f.send(g, "+998901", first, 19, 0)
	f.flush(g, first+15*time.Minute)
	f.blocked(g, "19 new sends", "+998901", first+15*time.Minute, false, 0)
	f.send(g, "+998901", first+15*time.Minute, 1, 0)
	f.flush(g, first+30*time.Minute)
	second := first + 30*time.Minute + 12*time.Hour
	f.blocked(g, "blocked again", "+998901", first+30*time.Minute, true, second)
	if n := blocks(f.t, g); n != 2 {
		f.t.Errorf("%d blocks counted, want 2", n)
	}

	// After the second block the people are genuine.
	f.flush(g, second)
	f.send(g, "+998901", second, 40, 35)
	f.flush(g, second+30*time.Minute)
	f.blocked(g, "healthy after the second block", "+998901", second+30*time.Minute, false, 0)
}

// testAcrossGateways: two gateways on one store add up to a verdict
// neither would reach alone; one blocks, the other learns of the block on
// its next flush; an approval counted on one gateway for an SMS sent by
// the other counts for the prefix.
func testAcrossGateways(f *fixture) {
	a, b := f.gateway(), f.gateway()
	f.send(a, "+233501", 0, 12, 0)
	f.send(b, "+233501", 0, 12, 0)
	f.send(a, "+233511", 0, 15, 0)
	f.send(b, "+233511", 0, 10, 10)
	f.approve(b, "+233511", 0, 5) // b's check of codes a sent
	f.flush(a, 2*time.Minute)
	f.flush(b, 2*time.Minute)
	f.flush(a, 12*time.Minute)
	f.blocked(a, "24 sends over two gateways", "+233501", 12*time.Minute, true, 12*time.Minute+12*time.Hour)
	f.blocked(b, "before b's flush", "+233501", 12*time.Minute, false, 0)
	f.flush(b, 12*time.Minute+5*time.Second)
	f.blocked(b, "after b's flush", "+233501", 12*time.Minute+5*time.Second, true, 12*time.Minute+12*time.Hour)
	f.blocked(a, "15 of 25 approved", "+233511", 13*time.Minute, false, 0)
	if na, nb := blocks(f.t, a), blocks(f.t, b); na+nb != 1 {
		f.t.Errorf("blocks counted: %d + %d, want 1 in all", na, nb)
	}
}

// testBlockOnce: of two gateways judging a prefix at once, one blocks it
// (and counts and logs the block); a block can be set again once it ended.
func testBlockOnce(f *fixture) {
	now := T0
	for i, want := range []bool{true, false} {
		got, err := f.store.Block(f.ctx, "+269321", now.Add(time.Hour), now)
		if err != nil || got != want {
			f.t.Fatalf("block %d: %v, %v; want %v", i+1, got, err, want)
		}
	}
	_, blocks, err := f.store.Add(f.ctx, pumping.Batch{Now: now.Add(time.Minute), Keep: time.Hour})
	if err != nil || len(blocks) != 1 || !blocks["+269321"].Equal(now.Add(time.Hour)) {
		f.t.Fatalf("blocks %v, %v; want +269321 until %v", blocks, err, now.Add(time.Hour))
	}
	if got, err := f.store.Block(f.ctx, "+269321", now.Add(3*time.Hour), now.Add(time.Hour)); err != nil || !got {
		f.t.Fatalf("block after the end: %v, %v; want blocked", got, err)
	}
	if _, blocks, err = f.store.Add(f.ctx, pumping.Batch{Now: now.Add(3 * time.Hour), Keep: time.Hour}); err != nil || len(blocks) != 0 {
		f.t.Fatalf("blocks %v, %v after every block ended; want none", blocks, err)
	}
}
