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
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/api"
	"github.com/verigate/verigate/api/twiliocompat"
	"github.com/verigate/verigate/callback"
	"github.com/verigate/verigate/config"
	"github.com/verigate/verigate/directory"
	"github.com/verigate/verigate/entra"
	"github.com/verigate/verigate/entra/hosted"
	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/metrics"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/pumping"
	"github.com/verigate/verigate/radius"
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
	// registered are the metrics' collectors besides the API's own.
	registered []prometheus.Collector
	// radius is the RADIUS front end; nil while radius.listen is empty.
	radius *radius.Server
	// drain ends the waiting requests (long-polls, event streams): the
	// server calls it when it begins to shut down.
	drain func()
	// sip and callbacks are what Drain waits for: the calls in progress
	// and the callbacks queued in memory; nil when not configured.
	sip       *sip.Caller
	callbacks *callback.Notifier
	// choice is which providers serve by default, for serve to print.
	choice providerChoice

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

// buildGateway wires the gateway in three steps: its state (store,
// limiter, idempotency records, Redis, the SMS-pumping watch), its
// providers (SMS senders, SIP trunks, Twilio), then the verify.Service and
// the REST API over them. stdout receives the console SMS provider's lines.
// hooks, at most one, are the demo's (serve passes none).
func buildGateway(ctx context.Context, cfg config.Config, dev bool, stdout io.Writer, log *slog.Logger, hooks ...gatewayHooks) (_ *gateway, err error) {
	var hk gatewayHooks
	if len(hooks) > 1 {
		return nil, errors.New("buildGateway: more than one gatewayHooks")
	} else if len(hooks) == 1 {
		hk = hooks[0]
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	draining := make(chan struct{})
	g := &gateway{cancel: cancel, drain: sync.OnceFunc(func() { close(draining) })}
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
	// Not ready once draining: the load balancer stops sending requests.
	ready := map[string]api.ReadyCheck{"drain": g.readyDrain}
	st, err := g.buildState(bg, cfg, ready, log)
	if err != nil {
		return nil, err
	}
	var blocks route.PrefixBlocks
	if st.pumps != nil {
		blocks = st.pumps
	}
	engine, err := openRouteEngine(cfg, route.OpenOptions{Redis: st.redis, Blocks: blocks, Logger: log, HTTPClient: g.outboundClient()})
	if err != nil {
		return nil, err
	}
	g.closers = append(g.closers, engine.Close)
	prov, err := g.buildProviders(bg, cfg, dev, stdout, hk, catalogue, st, ready, log)
	if err != nil {
		return nil, err
	}
	g.choice = prov.choice

	var notifier verify.Notifier
	if cfg.Callbacks.Secret != "" {
		var opts []callback.Option
		if st.redis != nil {
			// Queued in Redis: callbacks survive a restart, and every
			// gateway on it delivers them.
			opts = append(opts, callback.WithQueue(callback.NewRedisQueue(st.redis, callback.RedisQueueOptions{Max: cfg.Callbacks.WithDefaults().QueueSize})))
		}
		// The Twilio-compatible Messages API's status callbacks, in
		// Twilio's format and signed with the tenant's API key.
		opts = append(opts, callback.WithFormat(twiliocompat.CallbackFormat, twiliocompat.NewStatusCallbacks(keys)))
		n, err := callback.New(cfg.Callbacks, nil, log, opts...)
		if err != nil {
			return nil, err
		}
		g.goBackground(bg, func(ctx context.Context) { n.Run(ctx, 4) })
		notifier, st.callbacks, g.callbacks = n, n, n
	}
	svc, err := verify.NewService(verify.Config{
		Store: st.store, Limiter: st.limiter, Hasher: hasher, Notifier: notifier,
		Parser: route.NewClassifier(route.ClassifierOptions{
			DefaultRegion: cfg.Verify.DefaultRegion, Carrier: cfg.Route.Carrier, CacheSize: cfg.Route.CacheSize,
		}),
		Router:    engine,
		Observer:  observer(engine.Observer(), st.pumps),
		Lifecycle: st.lifecycle,
		Formatter: catalogue,
		Senders:   prov.senders, DefaultSender: prov.choice.sms,
		Callers: prov.callers, DefaultCaller: prov.choice.call,
		CodeLength: cfg.Verify.CodeLength, Lifetime: cfg.Verify.Lifetime, MaxAttempts: cfg.Verify.MaxAttempts,
		CheckLock: verify.CheckLock{
			Max: cfg.Limits.FailedChecks, Window: cfg.Limits.FailedCheckWindow,
			LongMax: cfg.Limits.FailedChecksLong, LongWindow: cfg.Limits.FailedCheckWindowLong,
		},
		FraudBlock: cfg.Verify.FraudBlock,
		Changes:    st.changes,
		Logger:     log,
	})
	if err != nil {
		return nil, err
	}
	g.service = svc
	// Verifications nobody reads after their lifetime are marked expired
	// (callback, metrics, waiters) by a sweep every few seconds; on Redis
	// each expiry is claimed by one gateway.
	g.goBackground(bg, svc.RunExpiry)
	// The providers built before the Service report to it from now on.
	if prov.sip != nil {
		prov.sip.ReportTo(svc)
		g.sip = prov.sip
	}
	prov.watch.Start(svc)

	// The front ends that call a person by name find the number in one
	// directory.
	var dir directory.Directory
	if cfg.RADIUS.Enabled() || cfg.Entra.Enabled() {
		if dir, err = g.openDirectory(cfg, log); err != nil {
			return nil, err
		}
	}
	if cfg.RADIUS.Enabled() {
		if g.radius, err = g.buildRADIUS(bg, cfg, svc, dir, log); err != nil {
			return nil, err
		}
		st.collectors = append(st.collectors, g.radius)
	}
	e, err := buildAPI(cfg, keys, svc, st, prov, catalogue, ready, draining, log)
	if err != nil {
		return nil, err
	}
	if cfg.Entra.Enabled() {
		if err := buildEntra(bg, e, cfg, svc, dir, st, catalogue, g.outboundClient(), log); err != nil {
			return nil, err
		}
	}
	g.handler, g.registered = e, st.registered
	return g, nil
}

// openRouteEngine opens the routing engine with what the configuration
// decides besides its route: section (a gateway without an SMS provider,
// sms.provider: none, refuses SMS and routes auto to calls). serve routes
// with it and route explain explains with it, so the two decide alike;
// opts carries what only serve has (Redis, the SMS-pumping blocks).
func openRouteEngine(cfg config.Config, opts route.OpenOptions) (*route.Engine, error) {
	opts.NoSMS = cfg.SMS.Provider == config.SMSProviderNone
	return route.Open(cfg.Route, opts)
}

// openDirectory opens the user directory; the gateway closes it.
func (g *gateway) openDirectory(cfg config.Config, log *slog.Logger) (directory.Chain, error) {
	dir, err := directory.New(cfg.Directory, directory.Options{
		Parser:     route.NewClassifier(route.ClassifierOptions{DefaultRegion: cfg.Verify.DefaultRegion, CacheSize: -1}),
		HTTPClient: g.outboundClient(),
		Logger:     log,
	})
	if err != nil {
		return nil, err
	}
	g.closers = append(g.closers, dir.Close)
	return dir, nil
}

// buildRADIUS binds the RADIUS server, which then answers until the
// gateway closes.
func (g *gateway) buildRADIUS(bg context.Context, cfg config.Config, svc *verify.Service, dir directory.Directory, log *slog.Logger) (*radius.Server, error) {
	srv, err := radius.Listen(cfg.RADIUS, radius.Options{Verifier: svc, Directory: dir, Logger: log})
	if err != nil {
		return nil, err
	}
	g.closers = append(g.closers, srv.Close)
	g.goBackground(bg, func(ctx context.Context) {
		if err := srv.Serve(ctx); err != nil {
			log.Error("radius server ended", "err", err)
		}
	})
	return srv, nil
}

// buildEntra adds the Entra ID external authentication method to e: the
// OpenID Connect provider (discovery, keys, authorize) and the hosted page.
// Keys, presented hints and flows live in Redis when the state does, so
// that every gateway signs alike and any of them can serve the page.
func buildEntra(ctx context.Context, e *echo.Echo, cfg config.Config, svc *verify.Service, dir directory.Directory, st *state, catalogue *prompts.Catalogue,
	client *http.Client, log *slog.Logger) error {
	log = log.With("front_end", "entra")
	prov, err := entra.New(ctx, cfg.Entra, cfg.PublicURL, entra.Options{HTTPClient: client, Redis: st.redis, Secret: []byte(cfg.Secret), Logger: log})
	if err != nil {
		return err
	}
	var flows hosted.FlowStore
	if st.redis != nil {
		flows = hosted.NewRedisStore(st.redis, "")
	}
	page, err := hosted.New(hosted.Options{
		Config: cfg.Entra, Authorizer: prov, Directory: dir, Verifier: svc, Texts: catalogue,
		Store: flows, PublicURL: cfg.PublicURL, Logger: log,
	})
	if err != nil {
		return err
	}
	prov.Register(e)
	page.Register(e)
	return nil
}

// gatewayHooks tell `verigate demo` what the development providers do, so
// that it shows them without reading the log.
type gatewayHooks struct {
	// sms is handed each message the console SMS provider sends.
	sms func(verify.Message)
	// phone is told of each step of a call the loopback test phone takes.
	phone func(siptest.PhoneEvent)
}

// state is where the gateway keeps what it knows: verifications, limits,
// idempotency records, the SMS-pumping watch and the queued callbacks, in
// memory or in Redis.
type state struct {
	store     verify.Store
	limiter   verify.Limiter
	idem      api.IdempotencyStore
	redis     redis.UniversalClient // nil without Redis
	pumps     *pumping.Watch        // nil when the SMS-pumping watch is off
	callbacks *callback.Notifier    // nil when callbacks are off
	// changes tells waiting requests of status changes made through every
	// gateway on Redis; nil in memory, whose store tells them itself.
	changes verify.Changes
	// collectors are the front ends' metrics, served on /metrics.
	collectors []prometheus.Collector
	// lifecycle counts the verifications' sends, reports and ends.
	lifecycle *metrics.Verifications
	// registered are the collectors buildAPI registered besides the
	// API's own (a test describes them).
	registered []prometheus.Collector
}

// buildState opens the gateway's state: in memory, or in Redis when
// cfg.Redis.URL is set (adding its readiness check to ready).
func (g *gateway) buildState(bg context.Context, cfg config.Config, ready map[string]api.ReadyCheck, log *slog.Logger) (*state, error) {
	memLimiter, err := ratelimit.NewMemory(cfg.Limits.Policies, nil)
	if err != nil {
		return nil, err
	}
	// Starts consume the limits first (store.Limited), as the Redis store does in its start script.
	st := &state{store: store.Limited{Memory: store.NewMemory(), Limits: memLimiter}, limiter: memLimiter, idem: store.NewIdempotencyMemory(nil)}
	st.lifecycle = metrics.NewVerifications()
	st.collectors = append(st.collectors, st.lifecycle)
	// The SMS-pumping watch's counts and blocks: in Redis when the state is
	// there, so that every gateway judges the same prefixes.
	var pumpStore pumping.Store = pumping.NewMemory()
	if cfg.Redis.URL != "" {
		// State, limits and idempotency records in Redis, shared by every
		// gateway on it. The client connects lazily and reconnects by
		// itself; /readyz reports whether Redis answers.
		rc, err := store.OpenRedis(cfg.Redis.URL)
		if err != nil {
			return nil, fmt.Errorf("VERIGATE_REDIS_URL: %w", err)
		}
		g.closers = append(g.closers, rc.Close)
		// Every command's latency and failure, the health check's included.
		hook := metrics.NewRedisHook()
		rc.AddHook(hook)
		st.collectors = append(st.collectors, hook)
		cluster, cmds := store.IsCluster(rc), rc
		if cfg.Redis.AutoPipeline {
			// The pipeliner gets a client of its own without the hook
			// (go-redis would run a hooked pipelined command's hook on a
			// goroutine of its own, a sixth of the gateway's CPU per
			// verification) and is timed by a wrapper instead.
			pc, err := store.OpenRedis(cfg.Redis.URL)
			if err != nil {
				return nil, fmt.Errorf("VERIGATE_REDIS_URL: %w", err)
			}
			g.closers = append(g.closers, pc.Close)
			ap, err := store.AutoPipeline(pc)
			if err != nil {
				return nil, err
			}
			g.closers = append(g.closers, ap.Close) // before pc: flushes what is queued
			cmds = hook.Wrap(ap)
		}
		redisLimiter, err := ratelimit.NewRedis(cmds, cfg.Limits.Policies, ratelimit.RedisOptions{PerPolicy: cluster})
		if err != nil {
			return nil, err
		}
		// The store consumes the limits inside its start script: one round trip per start.
		st.store = store.NewRedis(cmds, store.RedisOptions{Cluster: cluster, Limits: redisLimiter})
		st.limiter, st.idem, st.redis = redisLimiter, store.NewIdempotencyRedis(cmds), rc
		pumpStore = pumping.NewRedis(cmds, "")
		// The client of the health check runs nothing else, so its pool
		// reflects Redis alone and not the failures of other callers.
		ready["redis"] = store.RedisHealth(rc)
		// One subscription per gateway hears the changes made through every
		// gateway on this Redis (the client without auto-pipelining).
		feed := store.NewRedisChanges(rc, "", log)
		g.goBackground(bg, feed.Run)
		st.changes = feed
		log.Info("state and limits in Redis")
	}
	// The SMS-pumping watch; routing reads its blocks.
	if pc := cfg.Limits.SMSPumping; !pc.Off {
		if pc.Maturity == 0 {
			pc.Maturity = cfg.Verify.Lifetime
		}
		if st.pumps, err = pumping.New(pc, pumpStore, pumping.Options{Logger: log}); err != nil {
			return nil, err
		}
		g.goBackground(bg, st.pumps.Run)
	}
	return st, nil
}

// providerChoice is which providers serve the verifications whose route
// names none.
type providerChoice struct {
	sms  string // the default SMS provider
	call string // the default call provider; "" when calls are not configured
	// loopback: calls go to the embedded test phone on loopback (serve --dev).
	loopback bool
}

// chooseProviders is the provider-precedence rule. SMS: sms.provider when
// set, else Twilio when configured; neither is an error (the console
// provider is for development only and must be asked for). sms.provider
// none sends no SMS (sms is then ""): the gateway must have a call provider. Calls: configured SIP
// trunks win over Twilio; with neither, --dev calls the loopback test
// phone, which Twilio, when configured, wins over.
func chooseProviders(smsProvider string, twilioConfigured bool, trunks int, dev bool) (providerChoice, error) {
	c := providerChoice{sms: smsProvider}
	if twilioConfigured {
		if c.sms == "" {
			c.sms = twilio.ProviderName
		}
		c.call = twilio.ProviderName
	}
	switch c.sms {
	case "":
		return providerChoice{}, errors.New("no SMS provider configured: configure Twilio (VERIGATE_TWILIO_*) or set sms.provider: console (prints codes; development only), or run with --dev")
	case twilio.ProviderName:
		if !twilioConfigured {
			return providerChoice{}, errors.New("sms.provider is twilio but Twilio is not configured (VERIGATE_TWILIO_ACCOUNT_SID and the rest)")
		}
	case config.SMSProviderNone:
		c.sms = ""
	}
	c.loopback = trunks == 0 && dev && !twilioConfigured
	if trunks > 0 || c.loopback {
		// With a trunk configured, calls go there unless routing says otherwise.
		c.call = sip.Provider
	}
	if smsProvider == config.SMSProviderNone && c.call == "" {
		return providerChoice{}, errors.New("sms.provider is none but no call provider is configured: add a SIP trunk (sip.trunks) or Twilio, or the gateway could send nothing")
	}
	return c, nil
}

// providers are the gateway's SMS senders and callers, by provider name.
type providers struct {
	choice  providerChoice
	senders map[string]verify.Sender
	callers map[string]verify.Caller
	sip     *sip.Caller        // nil without trunks
	watch   *sms.DeliveryWatch // reports SMS with no delivery report in time
	twilio  twilio.Config      // as completed from the gateway's configuration
}

// buildProviders builds the SMS and call providers the configuration names.
func (g *gateway) buildProviders(bg context.Context, cfg config.Config, dev bool, stdout io.Writer, hooks gatewayHooks, catalogue *prompts.Catalogue,
	st *state, ready map[string]api.ReadyCheck, log *slog.Logger) (*providers, error) {
	p := &providers{senders: map[string]verify.Sender{}, callers: map[string]verify.Caller{}, twilio: cfg.Twilio}
	choice, err := chooseProviders(cfg.SMS.Provider, p.twilio.Configured(), len(cfg.SIP.Trunks), dev)
	if err != nil {
		return nil, err
	}
	p.choice = choice
	p.watch = sms.NewDeliveryWatch(sms.WatchConfig{
		Timeout: cfg.Route.Fallback.SMSTimeout, CheckEvery: cfg.Route.Fallback.CheckEvery, Store: st.store, Logger: log,
	})
	g.closers = append(g.closers, p.watch.Close)

	if tw := &p.twilio; tw.Configured() {
		if tw.PublicURL == "" {
			tw.PublicURL = cfg.PublicURL
		}
		tw.Secret = cfg.Secret
		if err := tw.Validate(); err != nil {
			return nil, err
		}
		prov, err := twilio.New(*tw, twilio.WithLogger(log), twilio.WithTransport(g.outbound()))
		if err != nil {
			return nil, err
		}
		g.closers = append(g.closers, func() error { prov.Close(); return nil })
		// Twilio reports deliveries, so an SMS with no report in time can
		// fall back to a call (Wrap passes prov through when the timeout is off).
		p.senders[twilio.ProviderName], p.callers[twilio.ProviderName] = p.watch.Wrap(prov), prov
	}
	if choice.sms == "console" {
		console := sms.NewConsole(stdout)
		console.OnSend = hooks.sms
		p.senders["console"] = console
	}

	sipCfg := cfg.SIP
	if choice.loopback {
		// The embedded default: calls go to a test phone on loopback that
		// answers and presses '#'.
		phone, err := siptest.NewLoopbackPhone(log, func(c *siptest.PhoneConfig) { c.OnEvent = hooks.phone })
		if err != nil {
			return nil, fmt.Errorf("loopback test phone: %w", err)
		}
		g.closers = append(g.closers, phone.Close)
		sipCfg = phone.LoopbackConfig(sipCfg)
	}
	if len(sipCfg.Trunks) > 0 {
		caller, err := sip.NewCaller(sipCfg, sip.Options{
			Audio:  sip.PromptAudio{Catalogue: catalogue},
			Logger: log,
		})
		if err != nil {
			return nil, fmt.Errorf("sip: %w", err)
		}
		g.closers = append(g.closers, caller.Close)
		p.callers[sip.Provider], p.sip = caller, caller
		st.collectors = append(st.collectors, caller)
		if err := watchTrunks(bg, g, caller, sipCfg, ready, st, log); err != nil {
			return nil, err
		}
	}

	if st.pumps != nil {
		// Every SMS a provider accepts is counted; SMS to a blocked prefix
		// are refused even where routing did not see the block.
		for name, sender := range p.senders {
			p.senders[name] = st.pumps.Wrap(sender)
		}
	}
	return p, nil
}

// buildAPI builds the REST API over svc, with Twilio's webhooks when
// Twilio is configured.
func buildAPI(cfg config.Config, keys map[string]string, svc *verify.Service, st *state, prov *providers, catalogue *prompts.Catalogue,
	ready map[string]api.ReadyCheck, draining <-chan struct{}, log *slog.Logger) (*echo.Echo, error) {
	registry := prometheus.NewRegistry()
	reg := recordingRegisterer{Registry: registry, collectors: &st.registered}
	reg.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(liveHeap)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		metrics.BuildInfo(version),
		readyGauge(ready, draining),
	)
	if st.pumps != nil {
		if err := st.pumps.Register(reg); err != nil {
			return nil, err
		}
	}
	if st.callbacks != nil {
		if err := st.callbacks.Register(reg); err != nil {
			return nil, err
		}
	}
	for _, c := range st.collectors {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	e, err := api.New(api.Config{
		Service: svc, APIKeys: keys, Idempotency: st.idem, Ready: ready,
		Registry: registry, BodyLimit: cfg.HTTP.BodyLimit, Logger: log,
		Waits: api.WaitConfig{Max: cfg.HTTP.MaxWait, Gateway: cfg.HTTP.MaxWaiters, Tenant: cfg.HTTP.MaxWaitersPerTenant, Draining: draining},
	})
	if err != nil {
		return nil, err
	}
	// The Twilio-compatible APIs, on the same server as /v1: the Messages
	// API for every tenant, the Verify API when twilio_verify lists one.
	tv, err := twiliocompat.New(cfg.TwilioVerify, twiliocompat.Options{
		Verifier: svc, APIKeys: keys, CodeLength: cfg.Verify.CodeLength,
		AppNames: catalogue, PublicURL: cfg.PublicURL, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	tv.RegisterMessages(e)
	if cfg.TwilioVerify.Enabled() {
		tv.Register(e)
	}
	if prov.twilio.Configured() {
		wh, err := twilio.NewWebhooks(prov.twilio, svc, twilio.WithTexts(catalogue), twilio.WithLogger(log))
		if err != nil {
			return nil, err
		}
		if err := reg.Register(wh); err != nil {
			return nil, err
		}
		// Twilio authenticates with its signature, not a bearer key.
		wh.Register(e.Group(twilio.PathPrefix))
	}
	return e, nil
}

// recordingRegisterer registers on its Registry and keeps what it
// registered, so that a test can hold the dashboard's and the alerts'
// queries to every series the gateway may serve, also those no event has
// created yet.
type recordingRegisterer struct {
	*prometheus.Registry
	collectors *[]prometheus.Collector
}

func (r recordingRegisterer) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	*r.collectors = append(*r.collectors, c)
	return nil
}

func (r recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// readyGauge is verigate_ready: 1 while every readiness check passes and
// the gateway is not draining, as /readyz answers, so that an alert sees
// what the orchestrator's probe sees. The checks are read only (buildAPI
// comes after the last is added) and each scrape runs them once.
func readyGauge(ready map[string]api.ReadyCheck, draining <-chan struct{}) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "verigate_ready",
		Help: "1 while the gateway is ready (every /readyz check passes and it is not draining), else 0.",
	}, func() float64 {
		select {
		case <-draining:
			return 0
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, check := range ready {
			if check(ctx) != nil {
				return 0
			}
		}
		return 1
	})
}

// observer is the Service's Observer: routing's delivery history hears of
// delivery outcomes, the SMS-pumping watch (when on) of approvals.
func observer(events verify.EventObserver, pumps *pumping.Watch) verify.EventObserver {
	if pumps == nil {
		return events // not a nil *Watch in an interface
	}
	return verify.ObserveApprovals(events, pumps)
}
