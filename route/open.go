package route

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/verify"
)

// OpenOptions are the shared pieces Open wires into an Engine.
type OpenOptions struct {
	// Redis, if set, caches lookups in Redis (RedisLookupCache); otherwise
	// in memory.
	Redis redis.UniversalClient
	// HTTPClient makes lookup requests; the lookup's own
	// (httpclient.NewClient) if nil. The gateway passes one it closes.
	HTTPClient *http.Client
	// History is the delivery history; if nil, a RedisHistory with Redis
	// (every gateway on it shares what any of them heard), else a new
	// MemoryHistory.
	History DeliveryHistory
	// NoHistory leaves the history out (a one-shot tool such as
	// `route explain` has none: it is fed by the serving gateways).
	NoHistory bool
	// Blocks are the destinations blocked for a while: the SMS-pumping
	// watch. None if nil.
	Blocks PrefixBlocks
	Logger *slog.Logger
	Now    func() time.Time
	// NoSMS: the gateway has no SMS provider (Deps.NoSMS).
	NoSMS bool
}

// Open builds the Engine cfg describes: it opens the GeoIP database, makes
// the lookup provider with its cache, and a delivery history. Close the
// Engine to release the database. Feed the history by setting
// verify.Config.Observer to Engine.Observer().
func Open(cfg Config, opts OpenOptions) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	deps := Deps{History: opts.History, Blocks: opts.Blocks, Logger: opts.Logger, Now: opts.Now, NoSMS: opts.NoSMS}
	if deps.History == nil && !opts.NoHistory {
		if opts.Redis != nil && cfg.History.window() > 0 {
			deps.History = NewRedisHistory(opts.Redis, cfg.History.window(), opts.Logger)
		} else {
			deps.History = NewMemoryHistory(cfg.CacheSize)
		}
	}
	var closers []func() error
	if cfg.GeoIPDB != "" {
		g, err := OpenGeoIP(cfg.GeoIPDB)
		if err != nil {
			return nil, fmt.Errorf("route.geoip_db: %w: %w", errNoGeoIP, err)
		}
		deps.GeoIP = g
		closers = append(closers, g.Close)
	}
	var look NumberLookup
	var err error
	switch cfg.Lookup.Provider {
	case "http":
		look, err = NewHTTPLookup(cfg.Lookup, opts.HTTPClient)
	case "twilio":
		look, err = NewTwilioLookup(cfg.Lookup, opts.HTTPClient)
	}
	if err != nil {
		return nil, fmt.Errorf("route.lookup: %w", err)
	}
	if look != nil {
		var cache LookupCache = NewMemoryLookupCache(cfg.CacheSize, opts.Now)
		if opts.Redis != nil {
			cache = NewRedisLookupCache(opts.Redis)
		}
		deps.Lookup = CachedLookup{Next: look, Cache: cache, TTL: cfg.Lookup.TTL}
	}
	e, err := NewEngine(cfg, deps)
	if err != nil {
		return nil, err
	}
	e.closeFn = func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	return e, nil
}

// Observer returns what feeds the Engine's delivery history from the
// Service's reports (set it as verify.Config.Observer), or nil when the
// history is not fed that way.
func (e *Engine) Observer() verify.EventObserver {
	if o, ok := e.deps.History.(verify.EventObserver); ok && o != nil {
		return o
	}
	return nil
}
