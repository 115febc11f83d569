package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/verigate/verigate/config"
	"github.com/verigate/verigate/sip"
)

// serveFlags are the flags of `verigate serve`.
type serveFlags struct {
	configPath string
	dev        bool
	httpAddr   string
}

func parseServeFlags(args []string, stderr io.Writer) (serveFlags, error) {
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.configPath, "config", "", "YAML configuration file")
	fs.BoolVar(&f.dev, "dev", false, "development mode: in-memory state, console SMS, loopback test phone, generated secret and API key")
	fs.StringVar(&f.httpAddr, "http", "", "REST API listen address (overrides VERIGATE_HTTP_ADDR; default 127.0.0.1:8080)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	return f, nil
}

// loadServeConfig reads the configuration and fills in what --dev provides:
// a generated secret and development API key where none is set, the
// console SMS provider, callbacks allowed to private networks. Explicit
// settings always win.
func loadServeConfig(f serveFlags, lookup func(string) (string, bool), random io.Reader) (config.Config, string, error) {
	cfg, err := config.Load(f.configPath, lookup)
	var yerr *config.YAMLError
	if errors.As(err, &yerr) {
		// Nothing else can be judged of a file that did not decode.
		return cfg, "", err
	}
	// Every setting at fault is reported at once: the configuration's,
	// the missing secrets, the provider choice.
	errs := []error{err}
	if f.httpAddr != "" {
		cfg.HTTP.Addr = f.httpAddr
	}
	var devKey string
	if f.dev {
		if cfg.Secret == "" {
			if cfg.Secret, err = randomHex(random, 32); err != nil {
				return cfg, "", err
			}
		}
		if cfg.APIKeys == "" {
			key, err := randomHex(random, 16)
			if err != nil {
				return cfg, "", err
			}
			devKey = "dev_" + key
			cfg.APIKeys = "dev:" + devKey
		}
		if cfg.SMS.Provider == "" && !cfg.Twilio.Configured() {
			cfg.SMS.Provider = "console"
		}
		if cfg.Callbacks.AllowPrivateNetworks == nil {
			// A development IdP runs on this machine or the local network.
			allow := true
			cfg.Callbacks.AllowPrivateNetworks = &allow
		}
	}
	if cfg.Secret == "" {
		errs = append(errs, errors.New("VERIGATE_SECRET is not set: give the server key for code HMACs (at least 16 characters) in VERIGATE_SECRET or VERIGATE_SECRET_FILE, or run with --dev"))
	}
	if cfg.APIKeys == "" {
		errs = append(errs, errors.New("VERIGATE_API_KEYS is not set: give the tenants' keys as \"tenant1:key1,tenant2:key2\", or run with --dev"))
	}
	errs = append(errs, checkProviders(cfg, f.dev))
	return cfg, devKey, errors.Join(errs...)
}

// checkProviders reports what buildGateway's provider choice would refuse,
// so that it joins the configuration's errors instead of coming one run
// later.
func checkProviders(cfg config.Config, dev bool) error {
	var errs []error
	switch cfg.SMS.Provider {
	case "", "console", "twilio", config.SMSProviderNone: // others: config.Validate says so
		if _, err := chooseProviders(cfg.SMS.Provider, cfg.Twilio.Configured(), len(cfg.SIP.Trunks), dev); err != nil {
			errs = append(errs, err)
		}
	}
	if tw := cfg.Twilio; tw.Configured() {
		if tw.PublicURL == "" {
			tw.PublicURL = cfg.PublicURL
		}
		if tw.Secret = cfg.Secret; tw.Secret == "" {
			tw.Secret = "placeholder-checked-above" // its absence is reported already
		}
		if err := tw.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func randomHex(random io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(random, b); err != nil {
		return "", fmt.Errorf("generate random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// errReported is an error serve has already written to its log, in the
// configured format: main exits non-zero without printing it again.
var errReported = errors.New("reported")

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	cfg, err := serve(ctx, f, stdout, stderr)
	if err != nil && cfg.Log.Format == "json" {
		// A log collector reading JSON lines reads the reason too.
		newLogger(cfg.Log, stderr).Error("verigate: fatal", "err", err.Error())
		return fmt.Errorf("%w: %w", errReported, err)
	}
	return err
}

// serve is runServe after the flags; it returns the configuration as far
// as it was read, for the format of its error.
func serve(ctx context.Context, f serveFlags, stdout, stderr io.Writer) (config.Config, error) {
	cfg, devKey, err := loadServeConfig(f, os.LookupEnv, rand.Reader)
	if err != nil {
		if cfg.Log.Format != "json" && cfg.Log.Format != "text" {
			cfg.Log.Format = "text"
		}
		return cfg, err
	}
	return cfg, serveConfigured(ctx, cfg, devKey, f, stdout, stderr)
}

func serveConfigured(ctx context.Context, cfg config.Config, devKey string, f serveFlags, stdout, stderr io.Writer) error {
	log := newLogger(cfg.Log, stderr)
	for _, name := range config.UnknownEnv(os.Environ()) {
		attrs := []any{"name", name}
		if s := config.SuggestEnv(name); s != "" {
			attrs = append(attrs, "did_you_mean", s)
		}
		log.Warn("unknown VERIGATE_ variable ignored", attrs...)
	}
	// sipgo's package-wide lines in the gateway's format, bounded.
	sip.SetStackLogger(log)
	tuneGC(os.LookupEnv)
	gw, err := buildGateway(ctx, cfg, f.dev, stdout, log)
	if err != nil {
		return err
	}
	defer gw.Close()
	var adminAddr net.Addr
	if cfg.Admin.Addr != "" {
		bound, stopAdmin, err := startAdmin(cfg.Admin.Addr, gw.handler, log)
		if err != nil {
			return err
		}
		defer stopAdmin()
		adminAddr = bound
	}

	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP.Addr, err)
	}
	if devKey != "" {
		fmt.Fprintf(stdout, "development API key (tenant dev): %s\n", devKey)
	}
	listening{http: ln.Addr(), admin: adminAddr, gw: gw, cfg: cfg}.print(stdout)
	if gw.radius != nil {
		log.Info("radius listening", "addr", gw.radius.Addr().String(), "tenant", cfg.RADIUS.WithDefaults().Tenant)
	}
	log.Info("verigate serving", "addr", ln.Addr().String(), "dev", f.dev, "version", version)
	httpCtx, drained := drainFirst(ctx, gw, cfg.DrainTimeout, log)
	err = serveHTTP(httpCtx, ln, gw.handler, gw.drain, log)
	drained()
	return err
}

// drainFirst returns the context the HTTP server serves under: it ends once
// ctx has ended (SIGTERM, SIGINT) and the gateway has drained, so that the
// API keeps answering checks and webhooks while calls finish. drained
// stops the drain's goroutine if the server ended by itself, and waits for it.
func drainFirst(ctx context.Context, gw *gateway, timeout time.Duration, log *slog.Logger) (_ context.Context, drained func()) {
	httpCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	served, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer stop()
		select {
		case <-ctx.Done():
			gw.Drain(timeout, log)
		case <-served:
		}
	}()
	return httpCtx, func() { close(served); <-done }
}

// defaultGCPercent is serve's garbage-collector target (GOGC) when the
// GOGC environment variable sets none. The gateway keeps little live heap
// and allocates per request, so at Go's default of 100 it collects very
// often under load; at 400, measured under the HTTP benchmark
// (docs/BENCHMARKS.md), it served 4–5 % more requests per second, the
// heap growing to about five times what is live instead of twice (peak RSS
// 62 → 112–118 MB there). GOMEMLIMIT still caps it where set.
const defaultGCPercent = 400

// tuneGC sets the collector's target to defaultGCPercent unless GOGC is
// set in the environment, which then stays in force.
func tuneGC(lookup func(string) (string, bool)) {
	if _, set := lookup("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
}

// shutdownGrace is how long requests in flight get to finish on shutdown,
// after the drain (the API served throughout it): with the drain timeout
// and Kubernetes' preStop hook it stays within terminationGracePeriodSeconds.
const shutdownGrace = 4 * time.Second

// serveHTTP serves h on ln until ctx ends, then shuts down gracefully:
// requests in flight get up to shutdownGrace to finish. drain, if not nil,
// is called as shutdown begins, to end the requests that would otherwise
// wait on (long-polls and event streams): Shutdown cancels no request.
// Those still running after the grace are cut.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, drain func(), log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if drain != nil {
		srv.RegisterOnShutdown(drain)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		<-errc
		cerr := srv.Close()
		if errors.Is(err, context.DeadlineExceeded) && cerr == nil {
			// What the grace is for: connections still busy (or opened and
			// not yet used: net/http waits 5 s before it takes those for
			// idle) are cut, and the gateway has stopped as it should.
			log.Warn("shutdown: connections still open after the grace were closed", "grace", shutdownGrace)
			return nil
		}
		return errors.Join(fmt.Errorf("http shutdown: %w", err), cerr)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	return nil
}
