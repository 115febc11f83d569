// Package api is Verigate's REST API v1 on Echo: the verification
// endpoints, bearer API keys per tenant, one error mapping for every
// failure, Idempotency-Key replay, health, readiness, Prometheus metrics and
// the OpenAPI document that describes all of it (openapi.json, served at
// GET /v1/openapi.json and checked against the handlers by the tests).
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verigate/verigate/verify"
)

// DefaultBodyLimit bounds request bodies when Config.BodyLimit is 0. A
// start request is a few hundred bytes; 64 KiB is generous and still cheap.
const DefaultBodyLimit = 64 << 10

// IdempotencyTTL is how long the first response to an Idempotency-Key is
// replayed.
const IdempotencyTTL = 24 * time.Hour

// Service is what the API needs of verify.Service: *verify.Service
// implements it, and tests may put a fake in its place.
type Service interface {
	Start(ctx context.Context, req verify.StartRequest) (*verify.Verification, error)
	Check(ctx context.Context, tenant, id, code string) (*verify.Verification, error)
	CheckByNumber(ctx context.Context, tenant, to, code string) (*verify.Verification, error)
	Get(ctx context.Context, tenant, id string) (*verify.Verification, error)
	Cancel(ctx context.Context, tenant, id string) (*verify.Verification, error)
	Relay(ctx context.Context, req verify.MessageRequest) (*verify.Verification, error)
}

var _ Service = (*verify.Service)(nil)

// ReadyCheck reports whether one dependency (Redis, a SIP trunk) can serve.
// It should return promptly; /readyz gives each check a few seconds.
type ReadyCheck = func(ctx context.Context) error

// Config assembles the API. Service, APIKeys and Idempotency are required.
type Config struct {
	Service Service
	// APIKeys maps each bearer key to its tenant (see ParseAPIKeys).
	APIKeys map[string]string
	// Idempotency remembers responses by Idempotency-Key:
	// store.IdempotencyMemory in one process, store.IdempotencyRedis when
	// several gateways serve one API.
	Idempotency IdempotencyStore
	// Ready are the readiness checks /readyz runs, by name.
	Ready map[string]ReadyCheck
	// Registry receives the API's metrics and is served at /metrics; a new
	// registry if nil. Register process and Go collectors on it yourself.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// BodyLimit is the most bytes a request body may have; DefaultBodyLimit if 0.
	BodyLimit int64
	// Now is the clock (time.Now if nil); it times idempotency records.
	Now func() time.Time
	// Waits bounds the long-polls and event streams; see WaitConfig.
	Waits WaitConfig
}

// New builds the whole Echo instance: routes, middleware and error handler.
// Serve it as an http.Handler (http.Server{Handler: e}) or with e.Start.
func New(cfg Config) (*echo.Echo, error) {
	if cfg.Service == nil {
		return nil, errors.New("api: no verification service")
	}
	if len(cfg.APIKeys) == 0 {
		return nil, errors.New("api: no API keys")
	}
	if cfg.Idempotency == nil {
		return nil, errors.New("api: no idempotency store")
	}
	if cfg.BodyLimit < 0 {
		return nil, errors.New("api: negative body limit")
	}
	if cfg.BodyLimit == 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if err := cfg.Waits.fill(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	keys, err := newKeyring(cfg.APIKeys)
	if err != nil {
		return nil, err
	}
	h := &handler{
		svc: cfg.Service, keys: keys, idem: cfg.Idempotency,
		ready: cfg.Ready, registry: cfg.Registry, log: cfg.Logger,
		limit: cfg.BodyLimit, now: cfg.Now, metrics: m,
		waitCfg: cfg.Waits, slots: &waitSlots{cfg: cfg.Waits, tenants: map[string]int{}},
	}
	h.waiter, _ = cfg.Service.(Waiter)
	waiting := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "verigate_http_waiting_requests", Help: "Long-polls and event streams open on this gateway.",
	}, h.slots.open)
	if err := cfg.Registry.Register(waiting); err != nil {
		return nil, fmt.Errorf("api: register metrics: %w", err)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = h.handleError
	e.Use(h.observe, h.recoverPanics)
	h.register(e)
	return e, nil
}
