package pumping

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verigate/verigate/verify"
)

// Tally is what a prefix received: SMS sent and verifications approved.
type Tally struct {
	Sent, Approved int64
}

// Count is a prefix's tally in one slot (time divided by the slot length).
type Count struct {
	Prefix string
	Slot   int64
	Tally
}

// Batch is one flush of a gateway's counts.
type Batch struct {
	// Counts are added to the Store.
	Counts []Count
	// Judge are more prefixes to sum, besides those in Counts.
	Judge []string
	// From and To are the slots summed, inclusive; counts in slots before
	// From are dropped.
	From, To int64
	// Keep is how long a prefix's counts live after its last count.
	Keep time.Duration
	// Now is the time blocks are in force at.
	Now time.Time
}

// Store keeps the counts and the blocks where every gateway sees them.
type Store interface {
	// Add adds b.Counts, then returns, for every prefix in b.Counts and
	// b.Judge, its tally over the slots b.From to b.To, and every block in
	// force at b.Now with its end.
	Add(ctx context.Context, b Batch) (sums map[string]Tally, blocks map[string]time.Time, err error)
	// Block blocks prefix until until, unless a block of it is in force at
	// now, and clears its counts (a new block needs new evidence). It
	// reports whether it blocked.
	Block(ctx context.Context, prefix string, until, now time.Time) (bool, error)
}

// Watch is the SMS-pumping watch of one gateway: it counts the SMS its
// Sender wrapper passes and the approvals the Service tells it of
// (verify.ApprovalObserver), adds them to the Store in batches (Run, or
// Flush), judges, and answers route.PrefixBlocks from the blocks it last
// read. Safe for concurrent use.
type Watch struct {
	cfg   Config
	store Store
	log   *slog.Logger
	now   func() time.Time
	slot  time.Duration

	blocksTotal *prometheus.CounterVec
	blocked     prometheus.GaugeFunc

	flushMu sync.Mutex // one flush at a time

	mu     sync.Mutex
	counts map[countKey]Tally
	seen   map[string]int64     // prefix → newest slot it had a count in
	judged map[string]int64     // prefix → the last To it was judged up to
	blocks map[string]time.Time // prefix → block end, as last read
}

type countKey struct {
	prefix string
	slot   int64
}

// Options are the optional parts of a Watch.
type Options struct {
	Logger *slog.Logger
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// New returns a Watch on store. cfg's zero fields take their defaults.
func New(cfg Config, store Store, opt Options) (*Watch, error) {
	if err := cfg.Validate("sms_pumping"); err != nil {
		return nil, fmt.Errorf("pumping: %w", err)
	}
	cfg = cfg.withDefaults()
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	w := &Watch{
		cfg: cfg, store: store, log: opt.Logger, now: opt.Now, slot: slotOf(cfg.Window),
		counts: map[countKey]Tally{}, seen: map[string]int64{}, judged: map[string]int64{}, blocks: map[string]time.Time{},
		blocksTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verigate_sms_pumping_blocks_total",
			Help: "Destination prefixes blocked for SMS as suspected SMS pumping, by country calling code (counted by the gateway that blocked).",
		}, []string{"country_code"}),
	}
	w.blocked = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "verigate_sms_pumping_blocked_prefixes",
		Help: "Destination prefixes blocked for SMS as suspected SMS pumping now.",
	}, func() float64 { return float64(len(w.current())) })
	return w, nil
}

// Register adds the watch's metrics to reg.
func (w *Watch) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{w.blocksTotal, w.blocked} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("pumping: register metrics: %w", err)
		}
	}
	return nil
}

func (w *Watch) slotAt(t time.Time) int64 {
	return t.UnixNano() / int64(w.slot)
}

func (w *Watch) add(number string, at time.Time, t Tally) {
	prefix := verify.NumberPrefix(number, w.cfg.PrefixDigits)
	if prefix == "" {
		return
	}
	k := countKey{prefix, w.slotAt(at)}
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.counts[k]
	c.Sent += t.Sent
	c.Approved += t.Approved
	w.counts[k] = c
	if k.slot > w.seen[prefix] {
		w.seen[prefix] = k.slot
	}
}

// Sent counts an SMS handed to the provider for the E.164 number.
func (w *Watch) Sent(number string) { w.add(number, w.now(), Tally{Sent: 1}) }

// Approved implements verify.ApprovalObserver: an approved SMS
// verification counts in the slot it began in, with the SMS that started it.
func (w *Watch) Approved(_ context.Context, v *verify.Verification) {
	if v.Channel == verify.ChannelSMS && v.Status == verify.StatusApproved {
		w.add(v.To, v.CreatedAt, Tally{Approved: 1})
	}
}

// Blocked implements route.PrefixBlocks: SMS to a blocked prefix, and
// calls too when Config.BlockCalls is set.
func (w *Watch) Blocked(number string, ch verify.Channel) (time.Time, bool) {
	if ch == verify.ChannelCall && !w.cfg.BlockCalls {
		return time.Time{}, false
	}
	prefix := verify.NumberPrefix(number, w.cfg.PrefixDigits)
	w.mu.Lock()
	until, ok := w.blocks[prefix]
	w.mu.Unlock()
	if !ok || !w.now().Before(until) {
		return time.Time{}, false
	}
	return until, true
}

// current returns the blocks in force now.
func (w *Watch) current() map[string]time.Time {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]time.Time, len(w.blocks))
	for p, until := range w.blocks {
		if now.Before(until) {
			out[p] = until
		}
	}
	return out
}

// ErrBlocked is returned by a wrapped Sender for an SMS to a blocked prefix.
var ErrBlocked = errors.New("sms to this prefix is blocked as suspected sms pumping")

// Wrap returns a Sender that counts every verification SMS next accepts
// (not relayed messages, whose approvals it cannot see), and refuses
// SMS to a blocked prefix: routing refuses them first, but a fallback SMS
// does not pass through routing, and a block may come between routing and
// sending.
func (w *Watch) Wrap(next verify.Sender) verify.Sender {
	return &sender{next: next, w: w}
}

type sender struct {
	next verify.Sender
	w    *Watch
}

func (s *sender) Send(ctx context.Context, m verify.Message) (string, error) {
	if until, ok := s.w.Blocked(m.To, verify.ChannelSMS); ok {
		return "", fmt.Errorf("%w until %s", ErrBlocked, until.UTC().Format(time.RFC3339))
	}
	ref, err := s.next.Send(ctx, m)
	if err == nil && !m.Relayed {
		// A relayed message's code is checked by the client, so no
		// approval ever answers it here: counted, it would look like
		// pumping. Blocks still apply to it, above.
		s.w.Sent(m.To)
	}
	return ref, err
}

// Run flushes every Config.FlushEvery until ctx ends, then once more.
func (w *Watch) Run(ctx context.Context) {
	t := time.NewTicker(w.cfg.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// The last counts of this gateway; bounded, the process is leaving.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if err := w.Flush(fctx); err != nil {
				w.log.Warn("sms pumping watch: last flush failed", "err", err)
			}
			cancel()
			return
		case <-t.C:
			// A flush waits for the store no longer than a few seconds:
			// through an outage the counts wait for the next one instead.
			fctx, cancel := context.WithTimeout(ctx, max(w.cfg.FlushEvery, 2*time.Second))
			if err := w.Flush(fctx); err != nil && ctx.Err() == nil {
				w.log.Warn("sms pumping watch: flush failed; counts kept for the next", "err", err)
			}
			cancel()
		}
	}
}

// Flush adds the counts gathered since the last flush to the Store, judges
// every prefix with counts in the window (those with new counts, and the
// others once per slot as their SMS mature), blocks the ones that look
// pumped, and reads the blocks back. On error the counts are kept for the
// next flush.
func (w *Watch) Flush(ctx context.Context) error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	now := w.now()
	from := w.slotAt(now.Add(-w.cfg.Window)) + 1 // whole slots inside the window
	to := w.slotAt(now.Add(-w.cfg.Maturity)) - 1 // whole slots whose SMS have matured

	w.mu.Lock()
	counts := w.counts
	w.counts = map[countKey]Tally{}
	b := Batch{From: from, To: to, Keep: w.cfg.Window + 2*w.slot, Now: now}
	inBatch := map[string]bool{}
	for k, t := range counts {
		b.Counts = append(b.Counts, Count{Prefix: k.prefix, Slot: k.slot, Tally: t})
		inBatch[k.prefix] = true
	}
	for p, last := range w.seen {
		switch {
		case last < from:
			delete(w.seen, p) // nothing of it left in the window
			delete(w.judged, p)
		case !inBatch[p] && w.judged[p] < to:
			b.Judge = append(b.Judge, p)
		}
	}
	w.mu.Unlock()

	sums, blocks, err := w.store.Add(ctx, b)
	if err != nil {
		// Kept for the next flush, but not beyond the window: a long
		// outage of the store must not grow them without bound.
		w.mu.Lock()
		for k, t := range counts {
			if k.slot < from {
				continue
			}
			c := w.counts[k]
			c.Sent += t.Sent
			c.Approved += t.Approved
			w.counts[k] = c
		}
		w.mu.Unlock()
		return fmt.Errorf("pumping: flush: %w", err)
	}
	if blocks == nil {
		blocks = map[string]time.Time{}
	}
	w.mu.Lock()
	for p := range sums {
		w.judged[p] = to
	}
	w.mu.Unlock()

	var errs []error
	for p, t := range sums {
		if _, in := blocks[p]; in || t.Sent < int64(w.cfg.MinSends) || float64(t.Approved) >= w.cfg.MinRatio*float64(t.Sent) {
			continue
		}
		until := now.Add(w.cfg.Block)
		blocked, err := w.store.Block(ctx, p, until, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("pumping: block %s: %w", p, err))
			continue
		}
		if !blocked {
			continue // another gateway was first; its block arrives with the next read
		}
		blocks[p] = until
		cc := p[1 : 1+verify.CallingCodeLen(p)]
		w.blocksTotal.WithLabelValues(cc).Inc()
		// A prefix names a block of numbers, not a person: it is logged
		// whole, so the operator knows what was blocked.
		w.log.Warn("sms pumping suspected: prefix blocked for sms", "prefix", p, "sent", t.Sent, "approved", t.Approved,
			"ratio", strconv.FormatFloat(float64(t.Approved)/float64(t.Sent), 'f', 2, 64), "until", until.UTC().Format(time.RFC3339))
	}
	w.mu.Lock()
	w.blocks = maps.Clone(blocks)
	w.mu.Unlock()
	return errors.Join(errs...)
}
