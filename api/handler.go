package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/verigate/verigate/internal/flatjson"
	"github.com/verigate/verigate/verify"
)

// Routes, as Echo names them; the OpenAPI document writes :id as {id}.
const (
	RouteStart         = "/v1/verifications"
	RouteCheck         = "/v1/verifications/:id/check"
	RouteCheckByNumber = "/v1/verifications/check"
	RouteGet           = "/v1/verifications/:id"
	RouteCancel        = "/v1/verifications/:id/cancel"
	RouteHealth        = "/healthz"
	RouteReady         = "/readyz"
	RouteMetrics       = "/metrics"
	RouteOpenAPI       = "/v1/openapi.json"
)

// readyTimeout bounds each readiness check.
const readyTimeout = 2 * time.Second

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the API.
func OpenAPI() []byte { return slices.Clone(openAPI) }

type handler struct {
	svc      Service
	keys     keyring
	idem     IdempotencyStore
	ready    map[string]ReadyCheck
	registry *prometheus.Registry
	log      *slog.Logger
	limit    int64
	now      func() time.Time
	metrics  *metrics
	waiter   Waiter // nil: the service cannot wait
	waitCfg  WaitConfig
	slots    *waitSlots
}

func (h *handler) register(e *echo.Echo) {
	e.POST(RouteStart, h.authed(h.start))
	e.POST(RouteCheckByNumber, h.authed(h.checkByNumber))
	e.POST(RouteCheck, h.authed(h.check))
	e.GET(RouteGet, h.authed(h.get))
	e.GET(RouteEvents, h.authed(h.events))
	e.POST(RouteCancel, h.authed(h.cancel))
	e.POST(RouteMessages, h.authed(h.relayMessage))
	e.GET(RouteMessageGet, h.authed(h.getMessage))
	// The IdPs' relays authenticate as each IdP can (relayTenant).
	e.POST(RouteRelay, h.relayIdP)
	e.GET(RouteHealth, h.health)
	e.GET(RouteReady, h.readyz)
	e.GET(RouteMetrics, echo.WrapHandler(promhttp.HandlerFor(h.registry, promhttp.HandlerOpts{})))
	e.GET(RouteOpenAPI, func(c echo.Context) error { return c.JSONBlob(http.StatusOK, openAPI) })
}

// startRequest is the body of POST /v1/verifications.
type startRequest struct {
	To          string          `json:"to"`
	Channel     verify.Channel  `json:"channel,omitempty"`
	Locale      string          `json:"locale,omitempty"`
	UserID      string          `json:"user_id,omitempty"`
	CallMode    verify.CallMode `json:"call_mode,omitempty"`
	ClientIP    string          `json:"client_ip,omitempty"`
	Roaming     *bool           `json:"roaming,omitempty"`
	CallbackURL string          `json:"callback_url,omitempty"`
}

// SetMember implements flatjson.Setter.
func (r *startRequest) SetMember(m flatjson.Member) bool {
	if m.Kind == flatjson.Bool {
		if m.Key != "roaming" {
			return false
		}
		r.Roaming = &m.Bool
		return true
	}
	if m.Kind != flatjson.String {
		return false
	}
	switch m.Key {
	case "to":
		r.To = m.Str
	case "channel":
		r.Channel = verify.Channel(m.Str)
	case "locale":
		r.Locale = m.Str
	case "user_id":
		r.UserID = m.Str
	case "call_mode":
		r.CallMode = verify.CallMode(m.Str)
	case "client_ip":
		r.ClientIP = m.Str
	case "callback_url":
		r.CallbackURL = m.Str
	default:
		return false
	}
	return true
}

// validate checks what verify.Service does not: user_id, which only v1
// takes (locale, client_ip and callback_url are the Service's, which every
// front end shares).
func (r *startRequest) validate() error {
	if len(r.UserID) > 256 {
		return invalidRequest("user_id is longer than 256 characters")
	}
	return nil
}

// start answers 201 with a new verification, or 200 with the pending one
// it resent (same id, one more send).
func (h *handler) start(c echo.Context, tenant string) error {
	key, err := idemKey(c)
	if err != nil {
		return err
	}
	var req startRequest
	if err := h.decode(c, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	do := func() (int, []byte, error) {
		v, err := h.svc.Start(c.Request().Context(), verify.StartRequest{
			Tenant: tenant, To: req.To, Channel: req.Channel, CallMode: req.CallMode, Locale: req.Locale,
			UserID: req.UserID, ClientIP: req.ClientIP, Roaming: req.Roaming, CallbackURL: req.CallbackURL,
		})
		if err != nil {
			h.metrics.started.WithLabelValues("none", verify.ErrorCode(err)).Inc()
			return 0, nil, err
		}
		status, outcome := http.StatusCreated, "created"
		if v.Sends > 1 {
			status, outcome = http.StatusOK, "resent"
		}
		h.metrics.started.WithLabelValues(string(v.Channel), outcome).Inc()
		return status, appendView(make([]byte, 0, 1024), v), nil
	}
	if key != "" {
		return h.idempotent(c, tenant, key, &req, do)
	}
	status, body, err := do()
	if err != nil {
		return err
	}
	return c.JSONBlob(status, body)
}

// checkRequest is the body of POST /v1/verifications/{id}/check.
type checkRequest struct {
	Code string `json:"code"`
}

// checkByNumberRequest is the body of POST /v1/verifications/check.
type checkByNumberRequest struct {
	To   string `json:"to"`
	Code string `json:"code"`
}

// SetMember implements flatjson.Setter.
func (r *checkRequest) SetMember(m flatjson.Member) bool {
	if m.Kind != flatjson.String || m.Key != "code" {
		return false
	}
	r.Code = m.Str
	return true
}

// SetMember implements flatjson.Setter.
func (r *checkByNumberRequest) SetMember(m flatjson.Member) bool {
	if m.Kind != flatjson.String {
		return false
	}
	switch m.Key {
	case "to":
		r.To = m.Str
	case "code":
		r.Code = m.Str
	default:
		return false
	}
	return true
}

func (h *handler) check(c echo.Context, tenant string) error {
	var req checkRequest
	if err := h.decode(c, &req); err != nil {
		return err
	}
	v, err := h.svc.Check(c.Request().Context(), tenant, c.Param("id"), req.Code)
	return h.checked(c, v, err)
}

func (h *handler) checkByNumber(c echo.Context, tenant string) error {
	var req checkByNumberRequest
	if err := h.decode(c, &req); err != nil {
		return err
	}
	v, err := h.svc.CheckByNumber(c.Request().Context(), tenant, req.To, req.Code)
	return h.checked(c, v, err)
}

func (h *handler) checked(c echo.Context, v *verify.Verification, err error) error {
	if err != nil {
		h.metrics.checked.WithLabelValues(verify.ErrorCode(err)).Inc()
		return err
	}
	h.metrics.checked.WithLabelValues(string(v.Status)).Inc()
	return c.JSONBlob(http.StatusOK, appendCheck(make([]byte, 0, 96), v))
}

func (h *handler) get(c echo.Context, tenant string) error {
	if q := c.QueryParams(); len(q) > 0 {
		if _, ok := q["wait"]; ok {
			wait, err := parseWait(q.Get("wait"), h.waitCfg.Max)
			if err == nil && q.Get("wait") == "" {
				err = invalidRequest("wait is empty: give a duration such as 30s")
			}
			if err != nil {
				return err
			}
			if wait > 0 {
				return h.getWait(c, tenant, wait)
			}
		}
	}
	v, err := h.svc.Get(c.Request().Context(), tenant, c.Param("id"))
	if err != nil {
		return err
	}
	if v.Kind != verify.KindVerification {
		return verify.ErrNotFound // a relayed message is read at /v1/messages
	}
	return c.JSONBlob(http.StatusOK, appendView(make([]byte, 0, 1024), v))
}

func (h *handler) cancel(c echo.Context, tenant string) error {
	v, err := h.svc.Cancel(c.Request().Context(), tenant, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, appendView(make([]byte, 0, 1024), v))
}

func (h *handler) json(c echo.Context, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.JSONBlob(status, b)
}

func (h *handler) health(c echo.Context) error {
	return c.JSONBlob(http.StatusOK, []byte(`{"status":"ok"}`))
}

// readyView answers /readyz: each check "ok" or "failed" (the cause goes
// to the log, not to whoever can reach the port).
type readyView struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func (h *handler) readyz(c echo.Context) error {
	view := readyView{Status: "ready", Checks: make(map[string]string, len(h.ready))}
	status := http.StatusOK
	for name, check := range h.ready {
		ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
		err := check(ctx)
		cancel()
		if err != nil {
			h.log.Warn("not ready", "check", name, "err", err)
			view.Checks[name], view.Status, status = "failed", "not_ready", http.StatusServiceUnavailable
			continue
		}
		view.Checks[name] = "ok"
	}
	return h.json(c, status, view)
}
