// Package logbound holds a slog.Handler that bounds what a stranger can make
// the gateway log: it shortens long messages and values (noting their
// length), caps the bytes of one record, and lets through at most a few
// records of each message per interval, reporting how many it held back on
// the next record of that message that passes. The SIP stack's logging goes
// through it, because every datagram a stranger sends to the SIP port can
// make the stack log a line.
package logbound

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Defaults for Options.
const (
	DefaultMaxValue = 256
	DefaultBurst    = 10
	DefaultInterval = time.Minute
	// DefaultMaxKinds bounds the messages tracked at once; records of
	// messages beyond it share one budget.
	DefaultMaxKinds = 512
)

// Attribute keys the handler adds.
const (
	// SuppressedKey counts the records of the same message held back
	// since the last one that passed.
	SuppressedKey = "log_suppressed"
	// DroppedAttrsKey counts the attributes left out of a record that
	// reached its byte budget.
	DroppedAttrsKey = "log_attrs_dropped"
)

// Options shape a Handler. Zero values take the defaults.
type Options struct {
	// MaxValue is the most bytes of a message, key or string value kept;
	// longer ones are cut at a character boundary and end in
	// "… [N bytes]", N being the original length. DefaultMaxValue if 0.
	MaxValue int
	// MaxRecord is the most bytes of attribute keys and values one record
	// carries; the attributes past it are dropped and counted under
	// DroppedAttrsKey. 4×MaxValue if 0.
	MaxRecord int
	// Burst records of one message (and level) pass per Interval; the
	// rest are counted and reported under SuppressedKey on the next one
	// that passes. DefaultBurst and DefaultInterval if 0.
	Burst    int
	Interval time.Duration
	// LimitFrom is the lowest level that is rate-limited; records below it
	// are only shortened. The zero value is slog.LevelInfo, so debug
	// output, which an operator turns on for a while, stays complete.
	LimitFrom slog.Level
	// Level, when set, gives the level a record is logged at from its
	// message and level; use it to lower the level of noise a stranger can
	// cause. It must not raise a level: Enabled is asked with the original one.
	Level func(msg string, level slog.Level) slog.Level
	// MaxKinds bounds the messages whose counts are kept; DefaultMaxKinds if 0.
	MaxKinds int
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// Handler bounds the records it passes to the handler it wraps. Handlers
// made from it by WithAttrs and WithGroup share its counts.
type Handler struct {
	next  slog.Handler
	opt   Options
	state *limiter
}

var _ slog.Handler = (*Handler)(nil)

// New wraps next.
func New(next slog.Handler, o Options) *Handler {
	if o.MaxValue <= 0 {
		o.MaxValue = DefaultMaxValue
	}
	if o.MaxRecord <= 0 {
		o.MaxRecord = 4 * o.MaxValue
	}
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.MaxKinds <= 0 {
		o.MaxKinds = DefaultMaxKinds
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{next: next, opt: o, state: &limiter{kinds: map[kindKey]*window{}}}
}

// Enabled reports whether the wrapped handler takes records at level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle passes r on shortened, at the level Options.Level gives, unless
// its message has used up its records for the interval.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	level := r.Level
	if h.opt.Level != nil {
		level = h.opt.Level(r.Message, level)
	}
	if level != r.Level && !h.next.Enabled(ctx, level) {
		return nil
	}
	msg := h.truncate(r.Message)
	suppressed := 0
	if level >= h.opt.LimitFrom {
		ok, n := h.state.allow(kindKey{msg, level}, h.opt.Now(), h.opt)
		if !ok {
			return nil
		}
		suppressed = n
	}
	out := slog.NewRecord(r.Time, level, msg, r.PC)
	b := budget{left: h.opt.MaxRecord}
	r.Attrs(func(a slog.Attr) bool {
		if a, ok := h.bound(a, &b); ok {
			out.AddAttrs(a)
		}
		return true
	})
	if b.dropped > 0 {
		out.AddAttrs(slog.Int(DroppedAttrsKey, b.dropped))
	}
	if suppressed > 0 {
		out.AddAttrs(slog.Int(SuppressedKey, suppressed))
	}
	return h.next.Handle(ctx, out)
}

// WithAttrs returns a Handler whose records carry as, shortened.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	b := budget{left: h.opt.MaxRecord}
	kept := make([]slog.Attr, 0, len(as))
	for _, a := range as {
		if a, ok := h.bound(a, &b); ok {
			kept = append(kept, a)
		}
	}
	return &Handler{next: h.next.WithAttrs(kept), opt: h.opt, state: h.state}
}

// WithGroup returns a Handler that qualifies the keys that follow by name.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(h.truncate(name)), opt: h.opt, state: h.state}
}

// budget is what is left of one record's bytes.
type budget struct {
	left, dropped int
}

// bound shortens a's key and value and charges them to b; it reports
// false, counting a as dropped, once b is spent.
func (h *Handler) bound(a slog.Attr, b *budget) (slog.Attr, bool) {
	if b.left <= 0 {
		b.dropped++
		return a, false
	}
	a.Key = h.truncate(a.Key)
	b.left -= len(a.Key)
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(h.truncate(v.String()))
		b.left -= len(a.Value.String())
	case slog.KindGroup:
		var kept []slog.Attr
		for _, g := range v.Group() {
			if g, ok := h.bound(g, b); ok {
				kept = append(kept, g)
			}
		}
		a.Value = slog.GroupValue(kept...)
	case slog.KindAny:
		// Errors and Stringers are text the peer may have chosen (a parse
		// error quotes the line it failed on); any other value is printed
		// as the text handler would, so that it is bounded too.
		var s string
		switch x := v.Any().(type) {
		case error:
			s = x.Error()
		case fmt.Stringer:
			s = x.String()
		case []byte:
			s = string(x)
		default:
			s = fmt.Sprintf("%+v", x)
		}
		a.Value = slog.StringValue(h.truncate(s))
		b.left -= len(a.Value.String())
	default:
		a.Value = v
		b.left -= 16 // numbers, times and durations print in a few bytes
	}
	return a, true
}

// truncate cuts s to MaxValue bytes at a character boundary and notes
// the original length.
func (h *Handler) truncate(s string) string {
	if len(s) <= h.opt.MaxValue {
		return s
	}
	cut := h.opt.MaxValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "… [" + strconv.Itoa(len(s)) + " bytes]"
}

// kindKey is what records are counted by: the (shortened) message and the
// level it is logged at.
type kindKey struct {
	msg   string
	level slog.Level
}

// overflow is the kind that records share once MaxKinds messages are tracked.
var overflow = kindKey{msg: "\x00other"}

// window counts one kind's records in the current interval.
type window struct {
	start      time.Time
	n          int
	suppressed int
}

type limiter struct {
	mu    sync.Mutex
	kinds map[kindKey]*window
}

// allow reports whether a record of kind k may pass at now and, if so, how
// many of its kind were held back since the last one that passed.
func (l *limiter) allow(k kindKey, now time.Time, o Options) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.kinds[k]
	if w == nil {
		if len(l.kinds) >= o.MaxKinds {
			l.sweep(now, o.Interval)
		}
		if len(l.kinds) >= o.MaxKinds {
			k = overflow
			w = l.kinds[k]
		}
		if w == nil {
			w = &window{start: now}
			l.kinds[k] = w
		}
	}
	if now.Sub(w.start) >= o.Interval || now.Before(w.start) {
		w.start, w.n = now, 0
	}
	if w.n >= o.Burst {
		w.suppressed++
		return false, 0
	}
	w.n++
	n := w.suppressed
	w.suppressed = 0
	return true, n
}

// sweep forgets the kinds whose interval is over and that hold back
// nothing (their next record would pass anyway).
func (l *limiter) sweep(now time.Time, interval time.Duration) {
	for k, w := range l.kinds {
		if w.suppressed == 0 && now.Sub(w.start) >= interval {
			delete(l.kinds, k)
		}
	}
}
