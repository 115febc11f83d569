package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/api"
	"github.com/verigate/verigate/callback"
	"github.com/verigate/verigate/config"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/pumping"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/sms"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/twilio"
	"github.com/verigate/verigate/verify"
)

// gateway is everything `serve` runs, wired from the configuration.
type gateway struct {
	handler http.Handler
	service *verify.Service

	// background work the gateway owns (callback workers, SIP, keep-alives),
	// stopped by Close.
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closers []func() error
}

// goBackground runs f until the gateway closes.
func (g *gateway) goBackground(ctx context.Context, f func(ctx context.Context)) {
	g.wg.Go(func() { f(ctx) })
}

// Close stops the background work, then closes what the gateway opened,
// last opened first.
func (g *gateway) Close() error {
	g.cancel()
	g.wg.Wait()
	var errs []error
	for i := len(g.closers) - 1; i >= 0; i-- {
		errs = append(errs, g.closers[i]())
	}
	return errors.Join(errs...)
}

// liveHeap adds go_gc_heap_live_bytes to the Go collector's default series:
// the heap the last garbage collection found live. go_memstats_heap_*
// count garbage not yet collected too, which under serve's GOGC of 400
// swings up to five times the live heap, so only this one tells a leak
// from garbage (the soak test, test/soak, reads it).
var liveHeap = collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)}

// buildGateway wires the store, limiter, providers, service and REST API.
// stdout receives the console SMS provider's lines.
func buildGateway(ctx context.Context, cfg config.Config, dev bool, stdout io.Writer, log *slog.Logger) (_ *gateway, err error) {
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g := &gateway{cancel: cancel}
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	hasher, err := verify.NewHasher([]byte(cfg.Secret))
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	keys, err := api.ParseAPIKeys(cfg.APIKeys)
	if err != nil {
		return nil, fmt.Errorf("VERIGATE_API_KEYS: %w", err)
	}
	catalogue, err := prompts.Load(cfg.Prompts.Options(cfg.SMS.AppName, cfg.Verify.CodeLength))
	if err != nil {
		return nil, fmt.Errorf("prompts: %w", err)
	}

	ready := map[string]api.ReadyCheck{}
	memLimiter, err := ratelimit.NewMemory(cfg.Limits.Policies, nil)
	if err != nil {
		return nil, err
	}
	var (
		st   verify.Store         = store.NewMemory()
		lim  verify.Limiter       = memLimiter
		idem api.IdempotencyStore = store.NewIdempotencyMemory(nil)
	)
	var rc redis.UniversalClient
	// changes tells waiting requests of status changes; the memory store
	// tells them itself.
	var changes verify.Changes
	// The SMS-pumping watch's counts and blocks: in Redis when the state is
	// there, so that every gateway judges the same prefixes.
	var pumpStore pumping.Store = pumping.NewMemory()
	if cfg.Redis.URL != "" {
		// State, limits and idempotency records in Redis, shared by every
		// gateway on it. The client connects lazily and reconnects by
		// itself; /readyz reports whether Redis answers.
		rc, err = store.OpenRedis(cfg.Redis.URL)
		if err != nil {
			return nil, fmt.Errorf("VERIGATE_REDIS_URL: %w", err)
		}
		g.closers = append(g.closers, rc.Close)
		cluster, cmds := store.IsCluster(rc), rc
		if cfg.Redis.AutoPipeline {
			if cmds, err = store.AutoPipeline(rc); err != nil {
				return nil, err
			}
			g.closers = append(g.closers, cmds.Close) // before rc: flushes what is queued
		}
		redisLimiter, err := ratelimit.NewRedis(cmds, cfg.Limits.Policies, ratelimit.RedisOptions{PerPolicy: cluster})
		if err != nil {
			return nil, err
		}
		// The store consumes the limits inside its start script: one round trip per start.
		st = store.NewRedis(cmds, store.RedisOptions{Cluster: cluster, Limits: redisLimiter})
		lim, idem = redisLimiter, store.NewIdempotencyRedis(cmds)
		pumpStore = pumping.NewRedis(cmds, "")
		// The client of the health check runs nothing else, so its pool
		// reflects Redis alone and not the failures of other callers.
		ready["redis"] = store.RedisHealth(rc)
		// One subscription per gateway hears the changes made through every
		// gateway on this Redis (the client without auto-pipelining).
		feed := store.NewRedisChanges(rc, "", log)
		g.goBackground(bg, feed.Run)
		changes = feed
		log.Info("state and limits in Redis")
	}

	// The SMS-pumping watch; routing reads its blocks.
	var pumps *pumping.Watch
	var blocks route.PrefixBlocks
	if pc := cfg.Limits.SMSPumping; !pc.Off {
		if pc.Maturity == 0 {
			pc.Maturity = cfg.Verify.Lifetime
		}
		if pumps, err = pumping.New(pc, pumpStore, pumping.Options{Logger: log}); err != nil {
			return nil, err
		}
		g.goBackground(bg, pumps.Run)
		blocks = pumps
	}

	engine, err := route.Open(cfg.Route, route.OpenOptions{Redis: rc, Blocks: blocks, Logger: log})
	if err != nil {
		return nil, err
	}
	g.closers = append(g.closers, engine.Close)
	watch := route.NewSMSWatch(cfg.Route.Fallback, st, log, nil)
	g.closers = append(g.closers, watch.Close)

	// svc is set below; the voice providers (SIP and Twilio) report into it.
	var svc *verify.Service
	reporter := sip.ReporterFunc(func(ctx context.Context, id string, ev verify.Event) error { return svc.Report(ctx, id, ev) })

	senders := map[string]verify.Sender{}
	callers := map[string]verify.Caller{}
	smsProvider, callProvider := cfg.SMS.Provider, ""
	tw := cfg.Twilio
	if tw.Configured() {
		if tw.PublicURL == "" {
			tw.PublicURL = cfg.PublicURL
		}
		tw.Secret = cfg.Secret
		if err := tw.Validate(); err != nil {
			return nil, err
		}
		prov, err := twilio.New(tw, twilio.WithLogger(log))
		if err != nil {
			return nil, err
		}
		g.closers = append(g.closers, func() error { prov.Close(); return nil })
		senders[twilio.ProviderName], callers[twilio.ProviderName] = prov, prov
		if cfg.Route.Fallback.SMSTimeout > 0 {
			// Twilio reports deliveries, so an SMS with no report in time
			// can fall back to a call.
			senders[twilio.ProviderName] = watch.Wrap(prov)
		}
		if smsProvider == "" {
			smsProvider = twilio.ProviderName
		}
		callProvider = twilio.ProviderName
	}
	switch smsProvider {
	case "console":
		senders["console"] = sms.NewConsole(stdout)
	case "":
		return nil, errors.New("no SMS provider configured: configure Twilio (VERIGATE_TWILIO_*) or set sms.provider: console (prints codes; development only), or run with --dev")
	case twilio.ProviderName:
		if !tw.Configured() {
			return nil, errors.New("sms.provider is twilio but Twilio is not configured (VERIGATE_TWILIO_ACCOUNT_SID and the rest)")
		}
	}

	sipCfg := cfg.SIP
	if len(sipCfg.Trunks) == 0 && dev && !tw.Configured() {
		// The embedded default: calls go to a test phone on loopback that
		// answers and presses '#'. Twilio, when configured, wins over it.
		phone, err := sip.NewLoopbackPhone(log)
		if err != nil {
			return nil, fmt.Errorf("loopback test phone: %w", err)
		}
		g.closers = append(g.closers, phone.Close)
		sipCfg = phone.LoopbackConfig(sipCfg)
	}
	if len(sipCfg.Trunks) > 0 {
		caller, err := sip.NewCaller(sipCfg, sip.Options{
			Reporter: reporter,
			Audio:    sip.PromptAudio{Catalogue: catalogue},
			Logger:   log,
		})
		if err != nil {
			return nil, fmt.Errorf("sip: %w", err)
		}
		g.closers = append(g.closers, caller.Close)
		callers[sip.Provider] = caller
		if err := watchTrunks(bg, g, caller, sipCfg, ready, log); err != nil {
			return nil, err
		}
		// With a trunk configured, calls go there unless routing says otherwise.
		callProvider = sip.Provider
	}

	if pumps != nil {
		// Every SMS a provider accepts is counted; SMS to a blocked prefix
		// are refused even where routing did not see the block.
		for name, sender := range senders {
			senders[name] = pumps.Wrap(sender)
		}
	}

	var notifier verify.Notifier
	if cfg.Callbacks.Secret != "" {
		n, err := callback.New(cfg.Callbacks, nil, log)
		if err != nil {
			return nil, err
		}
		g.goBackground(bg, func(ctx context.Context) { n.Run(ctx, 4) })
		notifier = n
	}

	svc, err = verify.NewService(verify.Config{
		Store: st, Limiter: lim, Hasher: hasher, Notifier: notifier,
		Parser: route.NewClassifier(route.ClassifierOptions{
			DefaultRegion: cfg.Verify.DefaultRegion, Carrier: cfg.Route.Carrier, CacheSize: cfg.Route.CacheSize,
		}),
		Router:    engine,
		Observer:  observer(engine.Observer(), pumps),
		Formatter: catalogue,
		Senders:   senders, DefaultSender: smsProvider,
		Callers: callers, DefaultCaller: callProvider,
		CodeLength: cfg.Verify.CodeLength, Lifetime: cfg.Verify.Lifetime, MaxAttempts: cfg.Verify.MaxAttempts,
		CheckLock: verify.CheckLock{
			Max: cfg.Limits.FailedChecks, Window: cfg.Limits.FailedCheckWindow,
			LongMax: cfg.Limits.FailedChecksLong, LongWindow: cfg.Limits.FailedCheckWindowLong,
		},
		FraudBlock: cfg.Verify.FraudBlock,
		Changes:    changes,
		Logger:     log,
	})
	if err != nil {
		return nil, err
	}
	g.service = svc
	watch.Start(svc)

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(liveHeap)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if pumps != nil {
		if err := pumps.Register(reg); err != nil {
			return nil, err
		}
	}
	e, err := api.New(api.Config{
		Service: svc, APIKeys: keys, Idempotency: idem, Ready: ready,
		Registry: reg, BodyLimit: cfg.HTTP.BodyLimit, Logger: log,
		Waits: api.WaitConfig{Max: cfg.HTTP.MaxWait, Gateway: cfg.HTTP.MaxWaiters, Tenant: cfg.HTTP.MaxWaitersPerTenant},
	})
	if err != nil {
		return nil, err
	}
	if tw.Configured() {
		wh, err := twilio.NewWebhooks(tw, reporter, twilio.WithTexts(catalogue), twilio.WithLogger(log))
		if err != nil {
			return nil, err
		}
		// Twilio authenticates with its signature, not a bearer key.
		wh.Register(e.Group(twilio.PathPrefix))
	}
	g.handler = e
	return g, nil
}

// observer is the Service's Observer: routing's delivery history hears of
// delivery outcomes, the SMS-pumping watch (when on) of approvals.
func observer(events verify.EventObserver, pumps *pumping.Watch) verify.EventObserver {
	if pumps == nil {
		return events // not a nil *Watch in an interface
	}
	return verify.ObserveApprovals(events, pumps)
}
