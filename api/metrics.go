package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verigate/verigate/verify"
)

// metrics are the API's Prometheus series.
type metrics struct {
	requests *prometheus.CounterVec   // by route, method, status
	duration *prometheus.HistogramVec // by route
	started  *prometheus.CounterVec   // by channel, outcome (created, resent or an error code)
	checked  *prometheus.CounterVec   // by outcome (the status after the check, or an error code)
	relayed  *prometheus.CounterVec   // messages relayed, by channel, outcome (created or an error code)
	replays  prometheus.Counter

	// Resolved series by label values: WithLabelValues hashes the labels
	// and allocates on every call; a read-locked map lookup does neither.
	mu             sync.RWMutex
	requestSeries  map[requestLabels]prometheus.Counter
	durationSeries map[string]prometheus.Observer
}

type requestLabels struct {
	route, method string
	status        int
}

func (m *metrics) request(route, method string, status int) prometheus.Counter {
	k := requestLabels{route, method, status}
	m.mu.RLock()
	c, ok := m.requestSeries[k]
	m.mu.RUnlock()
	if ok {
		return c
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok = m.requestSeries[k]; !ok {
		c = m.requests.WithLabelValues(route, method, strconv.Itoa(status))
		m.requestSeries[k] = c
	}
	return c
}

func (m *metrics) latency(route string) prometheus.Observer {
	m.mu.RLock()
	o, ok := m.durationSeries[route]
	m.mu.RUnlock()
	if ok {
		return o
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok = m.durationSeries[route]; !ok {
		o = m.duration.WithLabelValues(route)
		m.durationSeries[route] = o
	}
	return o
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verigate_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "verigate_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verigate_verifications_started_total", Help: "Start requests by channel and outcome (created, resent, or the error code).",
		}, []string{"channel", "outcome"}),
		checked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verigate_verification_checks_total", Help: "Code checks by outcome (the status after the check, or the error code).",
		}, []string{"outcome"}),
		relayed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verigate_messages_relayed_total", Help: "Relay requests (POST /v1/messages, the IdP relays) by channel and outcome (created, or the error code).",
		}, []string{"channel", "outcome"}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verigate_idempotent_replays_total", Help: "Responses replayed for a repeated Idempotency-Key.",
		}),
		requestSeries:  make(map[requestLabels]prometheus.Counter),
		durationSeries: make(map[string]prometheus.Observer),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.started, m.checked, m.relayed, m.replays} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api: register metrics: %w", err)
		}
	}
	return m, nil
}

// observe counts and times every request, and logs it at debug level.
func (h *handler) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		begin := time.Now()
		err := next(c)
		route := c.Path()
		if errors.Is(err, echo.ErrNotFound) || route == "" {
			route = "unmatched" // keeps scanners from minting a series per path
		}
		status := c.Response().Status
		if err != nil {
			status = describe(err).status
		}
		h.metrics.request(route, methodLabel(c.Request().Method), status).Inc()
		// A long-poll or a stream lasts as long as the person takes to
		// answer: it would drown the latency of the requests that do not wait.
		if route != RouteEvents && (route != RouteGet || c.QueryParam("wait") == "") {
			h.metrics.latency(route).Observe(time.Since(begin).Seconds())
		}
		if h.log.Enabled(c.Request().Context(), slog.LevelDebug) {
			h.log.Debug("request", "method", c.Request().Method, "route", route, "status", status)
		}
		return err
	}
}

// methodLabel bounds the method label to the methods HTTP defines, so that
// made-up methods do not each mint a series.
func methodLabel(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE":
		return m
	}
	return "other"
}

// recoverPanics turns a panic in a handler into a logged 503, so one bad
// request neither kills the connection silently nor leaks a stack trace.
func (h *handler) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				h.log.Error("handler panic", "method", c.Request().Method, "route", c.Path(), "panic", r, "stack", string(debug.Stack()))
				err = fmt.Errorf("panic: %v: %w", r, verify.ErrUnavailable)
			}
		}()
		return next(c)
	}
}
