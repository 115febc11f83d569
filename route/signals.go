package route

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/verigate/verigate/verify"
)

// CountryLocator finds the country of an IP address (GeoIP).
type CountryLocator interface {
	// Country returns the ISO 3166-1 alpha-2 country of ip, or "" when the
	// database does not know it.
	Country(ip netip.Addr) (string, error)
}

// LookupResult is what a number lookup (HLR, Twilio Lookup) knows about a
// number. Nil and empty fields are unknown.
type LookupResult struct {
	// Roaming is whether the subscriber is now on a network outside the
	// number's home country.
	Roaming *bool `json:"roaming,omitempty"`
	// Ported is whether the number moved to another carrier.
	Ported *bool `json:"ported,omitempty"`
	// Network is the carrier or network serving the number.
	Network string `json:"network,omitempty"`
	// Country is where the serving network is (ISO 3166-1 alpha-2), when
	// the provider says so; a country other than the number's is roaming.
	Country string `json:"country,omitempty"`
	// LineType is one of the Line* constants when the provider knows better
	// than the number's digits (Twilio settles fixed_line_or_mobile).
	LineType string `json:"line_type,omitempty"`
	// Source names the provider that answered, e.g. "twilio".
	Source string `json:"source,omitempty"`
}

// NumberLookup asks a provider about a number.
type NumberLookup interface {
	// Lookup returns what the provider knows about the E.164 number.
	Lookup(ctx context.Context, e164 string) (LookupResult, error)
}

// LookupCache keeps lookup results for a while: lookups cost money and
// time, and a number's carrier and roaming state change slowly.
type LookupCache interface {
	// Get returns the cached result for e164; ok false when there is none.
	Get(ctx context.Context, e164 string) (r LookupResult, ok bool, err error)
	// Set caches r for e164 during ttl.
	Set(ctx context.Context, e164 string, r LookupResult, ttl time.Duration) error
}

// DeliveryHistory remembers numbers whose SMS went undelivered.
type DeliveryHistory interface {
	// LastUndelivered returns when an SMS to e164 last went undelivered;
	// ok false if never (or forgotten).
	LastUndelivered(ctx context.Context, e164 string) (at time.Time, ok bool, err error)
}

// CachedLookup puts a LookupCache in front of a NumberLookup.
type CachedLookup struct {
	Next  NumberLookup
	Cache LookupCache
	TTL   time.Duration
}

var _ NumberLookup = CachedLookup{}

// Lookup implements NumberLookup: the cached result, or a fresh one that is
// then cached. A failing cache is passed over, not fatal.
func (c CachedLookup) Lookup(ctx context.Context, e164 string) (LookupResult, error) {
	if r, ok, err := c.Cache.Get(ctx, e164); err == nil && ok {
		return r, nil
	}
	r, err := c.Next.Lookup(ctx, e164)
	if err != nil {
		return r, err
	}
	ttl := c.TTL
	if ttl <= 0 {
		ttl = DefaultLookupTTL
	}
	_ = c.Cache.Set(ctx, e164, r, ttl) // best effort: the next request looks up again
	return r, nil
}

// MemoryLookupCache is an in-process LookupCache bounded to a number of
// entries (least recently used go first).
type MemoryLookupCache struct {
	now   func() time.Time
	cache *lru[string, memoryLookup]
}

type memoryLookup struct {
	r       LookupResult
	expires time.Time
}

var _ LookupCache = (*MemoryLookupCache)(nil)

// NewMemoryLookupCache returns a cache of at most size results; now is the
// clock (time.Now if nil).
func NewMemoryLookupCache(size int, now func() time.Time) *MemoryLookupCache {
	if now == nil {
		now = time.Now
	}
	if size <= 0 {
		size = DefaultCacheSize
	}
	return &MemoryLookupCache{now: now, cache: newLRU[string, memoryLookup](size)}
}

// Get implements LookupCache.
func (m *MemoryLookupCache) Get(_ context.Context, e164 string) (LookupResult, bool, error) {
	e, ok := m.cache.get(e164)
	if !ok || !m.now().Before(e.expires) {
		return LookupResult{}, false, nil
	}
	return e.r, true, nil
}

// Set implements LookupCache.
func (m *MemoryLookupCache) Set(_ context.Context, e164 string, r LookupResult, ttl time.Duration) error {
	m.cache.put(e164, memoryLookup{r: r, expires: m.now().Add(ttl)})
	return nil
}

// MemoryHistory is an in-process DeliveryHistory. It is fed with the
// events providers report: give it to verify.Config.Observer (the Service
// then calls Observe for every delivery event it records), or call Observe
// yourself. It remembers at most a bounded number of numbers.
type MemoryHistory struct {
	mu   sync.Mutex
	last *lru[string, time.Time]
}

var (
	_ DeliveryHistory      = (*MemoryHistory)(nil)
	_ verify.EventObserver = (*MemoryHistory)(nil)
)

// NewMemoryHistory returns a history of at most size numbers.
func NewMemoryHistory(size int) *MemoryHistory {
	if size <= 0 {
		size = DefaultCacheSize
	}
	return &MemoryHistory{last: newLRU[string, time.Time](size)}
}

// Observe implements verify.EventObserver: an undelivered (or failed) SMS
// is remembered against the number; a delivered one clears it.
func (h *MemoryHistory) Observe(_ context.Context, v *verify.Verification, ev verify.Event) {
	if v == nil || v.To == "" || smsChannel(v, ev) != verify.ChannelSMS {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch ev.Type {
	case verify.EventUndelivered, verify.EventFailed:
		if prev, ok := h.last.get(v.To); !ok || ev.At.After(prev) {
			h.last.put(v.To, ev.At)
		}
	case verify.EventDelivered:
		h.last.put(v.To, time.Time{})
	}
}

// smsChannel is the channel ev was about: the event's own, else the
// verification's.
func smsChannel(v *verify.Verification, ev verify.Event) verify.Channel {
	if ev.Channel != "" {
		return ev.Channel
	}
	return v.Channel
}

// LastUndelivered implements DeliveryHistory.
func (h *MemoryHistory) LastUndelivered(_ context.Context, e164 string) (time.Time, bool, error) {
	at, ok := h.last.get(e164)
	if !ok || at.IsZero() {
		return time.Time{}, false, nil
	}
	return at, true, nil
}
