package sms

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/verigate/verigate/verify"
)

// DefaultCheckEvery is how often a DeliveryWatch looks for SMS past their
// timeout when WatchConfig.CheckEvery is 0.
const DefaultCheckEvery = 5 * time.Second

// VerificationGetter reads a verification by id; verify.Store is one
// (tenant "" means any tenant).
type VerificationGetter interface {
	Get(ctx context.Context, tenant, id string) (*verify.Verification, error)
}

// WatchConfig assembles a DeliveryWatch.
type WatchConfig struct {
	// Timeout: an SMS with no delivery report this long after it was sent
	// is reported undelivered. 0 watches nothing.
	Timeout time.Duration
	// CheckEvery is how often the timeouts are checked; DefaultCheckEvery if 0.
	CheckEvery time.Duration
	// Store is where verifications are read back (required when Timeout is set).
	Store  VerificationGetter
	Logger *slog.Logger     // slog.Default() if nil
	Now    func() time.Time // time.Now if nil
}

// DeliveryWatch turns "no delivery report within WatchConfig.Timeout" into
// an EventUndelivered, which makes verify.Service.Report fall back to a
// call when the route has that fallback (unless a resend has superseded
// that SMS: the event carries its attempt). It is a Sender wrapper: it
// learns of SMS through the Sender it wraps (Wrap), and checks on a ticker
// it owns: Start it once the Service exists, Close it on shutdown. Watched
// messages live in this process only: a gateway that restarts forgets them
// (their verifications then wait for a provider report).
type DeliveryWatch struct {
	timeout time.Duration
	every   time.Duration
	store   VerificationGetter
	log     *slog.Logger
	now     func() time.Time

	mu      sync.Mutex
	pending []watched
	rep     verify.Reporter
	stop    chan struct{}
	done    chan struct{}
}

type watched struct {
	id, ref string
	attempt int // verify.Message.Attempt
	sentAt  time.Time
}

// NewDeliveryWatch returns a watch configured by c.
func NewDeliveryWatch(c WatchConfig) *DeliveryWatch {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.CheckEvery <= 0 {
		c.CheckEvery = DefaultCheckEvery
	}
	return &DeliveryWatch{timeout: c.Timeout, every: c.CheckEvery, store: c.Store, log: c.Logger, now: c.Now}
}

// Wrap returns a Sender that sends through next and watches each SMS it
// sent for a delivery report.
func (w *DeliveryWatch) Wrap(next verify.Sender) verify.Sender {
	if w.timeout <= 0 {
		return next
	}
	return watchedSender{next: next, w: w}
}

type watchedSender struct {
	next verify.Sender
	w    *DeliveryWatch
}

func (s watchedSender) Send(ctx context.Context, m verify.Message) (string, error) {
	ref, err := s.next.Send(ctx, m)
	if err == nil {
		s.w.mu.Lock()
		s.w.pending = append(s.w.pending, watched{id: m.VerificationID, ref: ref, attempt: m.Attempt, sentAt: s.w.now()})
		s.w.mu.Unlock()
	}
	return ref, err
}

// Start begins checking every WatchConfig.CheckEvery, reporting to r.
// It does nothing when there is no timeout or it already runs.
func (w *DeliveryWatch) Start(r verify.Reporter) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timeout <= 0 || w.stop != nil {
		return
	}
	w.rep = r
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go w.run(w.stop, w.done)
}

func (w *DeliveryWatch) run(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), w.every)
			w.Check(ctx)
			cancel()
		}
	}
}

// Close stops the ticker and waits for a check under way.
func (w *DeliveryWatch) Close() error {
	w.mu.Lock()
	stop, done := w.stop, w.done
	w.stop = nil
	w.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	return nil
}

// Check reports every watched SMS past its timeout that has no delivery
// report as undelivered. The ticker calls it; tests call it directly.
func (w *DeliveryWatch) Check(ctx context.Context) {
	now := w.now()
	w.mu.Lock()
	var due []watched
	kept := w.pending[:0]
	for _, p := range w.pending {
		if now.Sub(p.sentAt) >= w.timeout {
			due = append(due, p)
		} else {
			kept = append(kept, p)
		}
	}
	w.pending = kept
	rep := w.rep
	w.mu.Unlock()
	if rep == nil {
		return
	}
	for _, p := range due {
		v, err := w.store.Get(ctx, "", p.id)
		if err != nil {
			w.log.Warn("sms watch: read verification", "verification", p.id, "err", err)
			continue
		}
		if v.Status != verify.StatusPending || v.Channel != verify.ChannelSMS || settled(v, p) {
			continue
		}
		ev := verify.Event{
			Type: verify.EventUndelivered, At: now, Channel: verify.ChannelSMS, ProviderRef: p.ref, Attempt: p.attempt,
			Detail: fmt.Sprintf("no delivery report within %s", w.timeout),
			// The key's prefix is from when the watch lived in package route:
			// kept, so a report made before an upgrade is not made twice.
			Key: "route:sms-timeout:" + p.id + ":" + p.ref + ":" + strconv.Itoa(p.attempt),
		}
		if err := rep.Report(ctx, p.id, ev); err != nil {
			w.log.Warn("sms watch: report undelivered", "verification", p.id, "err", err)
		}
	}
}

// Watching reports how many SMS await a delivery report.
func (w *DeliveryWatch) Watching() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// settled reports whether v has a delivery outcome for the watched SMS:
// matched by provider reference, or by time when the provider gave none;
// an outcome of another attempt is another message's.
func settled(v *verify.Verification, p watched) bool {
	for _, ev := range v.Events {
		switch ev.Type {
		case verify.EventDelivered, verify.EventUndelivered, verify.EventFailed, verify.EventSendFailed:
		default:
			continue
		}
		if p.attempt > 0 && ev.Attempt > 0 && ev.Attempt != p.attempt {
			continue
		}
		if p.ref != "" && ev.ProviderRef == p.ref {
			return true
		}
		if p.ref == "" && !ev.At.Before(p.sentAt) {
			return true
		}
	}
	return false
}
