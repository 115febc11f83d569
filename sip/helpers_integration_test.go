package sip_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

// reporter records the events a Caller reports, like verify.Service would.
type reporter struct {
	mu     sync.Mutex
	events map[string][]verify.Event
	change chan struct{}
}

func newReporter() *reporter {
	return &reporter{events: map[string][]verify.Event{}, change: make(chan struct{}, 1)}
}

func (r *reporter) Report(_ context.Context, id string, ev verify.Event) error {
	r.mu.Lock()
	r.events[id] = append(r.events[id], ev)
	r.mu.Unlock()
	select {
	case r.change <- struct{}{}:
	default:
	}
	return nil
}

// types returns the event types reported for id, in order.
func (r *reporter) types(id string) []verify.EventType {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ts []verify.EventType
	for _, ev := range r.events[id] {
		ts = append(ts, ev.Type)
	}
	return ts
}

func (r *reporter) all(id string) []verify.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]verify.Event(nil), r.events[id]...)
}

// waitFor waits until id has an event of type t, and fails the test after d.
func (r *reporter) waitFor(t *testing.T, id string, want verify.EventType, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		for _, got := range r.types(id) {
			if got == want {
				return
			}
		}
		select {
		case <-r.change:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no %s event for %s within %s; events: %v", want, id, d, r.types(id))
		}
	}
}

// tones speaks each prompt as a distinct tone, so a recording shows which
// prompts were played in which order.
type tones struct{ dur time.Duration }

// toneFreq gives each prompt its own frequency.
func toneFreq(id prompts.ID) float64 {
	h := 0
	for _, c := range id {
		h = h*31 + int(c)
	}
	return 300 + float64(h%30)*60
}

func (t tones) Audio(_ string, id prompts.ID, c audio.Codec) ([]byte, error) {
	n := int(t.dur.Seconds() * 8000)
	pcm := make([]int16, n)
	f := toneFreq(id)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*f*float64(i)/8000))
	}
	return c.Encode(nil, pcm), nil
}

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	if os.Getenv("VERIGATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// portBlock hands each test its own RTP port ranges, so parallel packages
// and tests never share one. The blocks stay within 21000-29999: below the
// kernel's ephemeral ports (32768-60999), where a socket bound to port 0
// could take a port that an ended call's peer still sends RTP to, and clear
// of the other fixed ranges of the tests. They are handed out round: a run
// (with -count=N) needs more than the 45 blocks, and a block comes round
// again only long after the test that had it ended.
var portBlock = struct {
	sync.Mutex
	next int
}{next: rtpBlocksFirst}

const rtpBlocksFirst, rtpBlocksEnd, rtpBlockSize = 21000, 30000, 200

func rtpRange(t *testing.T) string {
	t.Helper()
	portBlock.Lock()
	defer portBlock.Unlock()
	lo := portBlock.next
	if portBlock.next += rtpBlockSize; portBlock.next+rtpBlockSize > rtpBlocksEnd {
		portBlock.next = rtpBlocksFirst
	}
	return fmt.Sprintf("%d-%d", lo, lo+rtpBlockSize-1)
}

// newCaller starts a gateway Caller on loopback with one trunk to addr.
func newCaller(t *testing.T, rep sip.Reporter, trunk sip.Trunk, o sip.Options) *sip.Caller {
	t.Helper()
	cfg := sip.Config{Listen: "127.0.0.1:0", RTPPorts: rtpRange(t), DefaultTrunk: trunk.Name, Trunks: []sip.Trunk{trunk}}
	o.Reporter = rep
	if o.Audio == nil {
		o.Audio = tones{dur: 400 * time.Millisecond}
	}
	if o.Logger == nil {
		o.Logger = testLogger(t).With("side", "gateway")
	}
	if o.KeyTimeout == 0 {
		o.KeyTimeout = 2 * time.Second
	}
	c, err := sip.NewCaller(cfg, o)
	if err != nil {
		t.Fatalf("NewCaller: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newPhone starts a test phone on loopback; its finished calls arrive on the channel.
func newPhone(t *testing.T, cfg sip.PhoneConfig) (*sip.Phone, <-chan sip.PhoneCall) {
	t.Helper()
	ended := make(chan sip.PhoneCall, 4)
	cfg.Listen = "127.0.0.1:0"
	cfg.RTPPorts = rtpRange(t)
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t).With("side", "phone")
	}
	cfg.OnCallEnd = func(pc sip.PhoneCall) { ended <- pc }
	p, err := sip.NewPhone(cfg)
	if err != nil {
		t.Fatalf("NewPhone: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p, ended
}

func waitCall(t *testing.T, ended <-chan sip.PhoneCall, d time.Duration) sip.PhoneCall {
	t.Helper()
	select {
	case pc := <-ended:
		return pc
	case <-time.After(d):
		t.Fatalf("the phone's call did not end within %s", d)
	}
	return sip.PhoneCall{}
}

func hasInOrder(got []verify.EventType, want ...verify.EventType) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// waitIdle waits until caller has no active call and holds no RTP port:
// a call's goroutine removes itself just after reporting its last event,
// so a test that saw that event waits for the condition, bounded by d.
func waitIdle(t *testing.T, caller *sip.Caller, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for caller.ActiveCalls() != 0 || caller.RTPPortsInUse() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls still active, %d rtp ports held %s after the call ended", caller.ActiveCalls(), caller.RTPPortsInUse(), d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
