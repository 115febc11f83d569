package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/verify"
)

// RouteEvents streams a verification's changes as Server-Sent Events.
const RouteEvents = "/v1/verifications/:id/events"

// Defaults for the WaitConfig fields left zero.
const (
	DefaultMaxWait       = 60 * time.Second
	DefaultWaiters       = 1000
	DefaultTenantWaiters = 100
	DefaultHeartbeat     = 15 * time.Second
)

// waitRetryAfter is the Retry-After, in seconds, of a request refused
// because too many wait already: a long-poll lasts a minute at most, and
// most end within seconds, when the person answers.
const waitRetryAfter = 5

// waitWriteGrace is how long past a wait its answer may take to be read
// and written, and how long each write to an event stream may take: the
// server's WriteTimeout would otherwise cut a wait longer than it.
const waitWriteGrace = 15 * time.Second

// WaitConfig bounds the requests that wait for a verification to change:
// GET /v1/verifications/{id}?wait= and the event streams.
type WaitConfig struct {
	// Max is the longest a long-poll waits; a longer wait= is cut to it.
	// DefaultMaxWait if 0.
	Max time.Duration
	// Gateway is the most long-polls and streams open at once on this
	// gateway (503 beyond it); DefaultWaiters if 0.
	Gateway int
	// Tenant is the most open at once for one tenant (429 beyond it);
	// DefaultTenantWaiters if 0.
	Tenant int
	// Heartbeat is how often an idle event stream sends a comment, so that
	// proxies keep it open; DefaultHeartbeat if 0.
	Heartbeat time.Duration
	// Draining, once closed, ends the waits: a long-poll answers the
	// verification as it stands and an event stream ends. The server closes
	// it when it begins to shut down, since http.Server.Shutdown waits for
	// requests in flight and cancels none. Nil: never.
	Draining <-chan struct{}
}

func (w *WaitConfig) fill() error {
	if w.Max < 0 || w.Gateway < 0 || w.Tenant < 0 || w.Heartbeat < 0 {
		return errors.New("api: negative wait bound")
	}
	if w.Max == 0 {
		w.Max = DefaultMaxWait
	}
	if w.Gateway == 0 {
		w.Gateway = DefaultWaiters
	}
	if w.Tenant == 0 {
		w.Tenant = DefaultTenantWaiters
	}
	if w.Heartbeat == 0 {
		w.Heartbeat = DefaultHeartbeat
	}
	return nil
}

// Waiter is what the waiting endpoints need of verify.Service, which
// implements it. A Config.Service without it answers them unavailable.
type Waiter interface {
	Wait(ctx context.Context, tenant, id string, d time.Duration) (*verify.Verification, error)
	Follow(ctx context.Context, tenant, id string, fn func(*verify.Verification) error) error
}

var _ Waiter = (*verify.Service)(nil)

// waitSlots counts the open long-polls and streams, on the gateway and per
// tenant.
type waitSlots struct {
	cfg     WaitConfig
	mu      sync.Mutex
	total   int
	tenants map[string]int
}

// open is how many slots are taken, for the metrics.
func (s *waitSlots) open() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return float64(s.total)
}

// acquire takes a slot for tenant, or says why there is none.
func (s *waitSlots) acquire(tenant string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total >= s.cfg.Gateway {
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: verify.CodeUnavailable, RetryAfter: waitRetryAfter,
			Message: "this gateway has as many waiting requests open as it allows; retry in a few seconds, or read the verification without wait"}
	}
	if s.tenants[tenant] >= s.cfg.Tenant {
		return nil, &Error{Status: http.StatusTooManyRequests, Code: verify.CodeRateLimited, RetryAfter: waitRetryAfter,
			Message: fmt.Sprintf("this tenant has %d waiting requests open, as many as it may; close one or retry in a few seconds", s.cfg.Tenant)}
	}
	s.total++
	s.tenants[tenant]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.total--
			if s.tenants[tenant]--; s.tenants[tenant] == 0 {
				delete(s.tenants, tenant)
			}
		})
	}, nil
}

// parseWait reads the wait query parameter: a Go duration ("30s", "1m")
// or whole seconds ("30"); absent is 0. A wait longer than limit is cut
// to it.
func parseWait(s string, limit time.Duration) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	var d time.Duration
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		d = time.Duration(n) * time.Second
	} else if d, err = time.ParseDuration(s); err != nil || d < 0 {
		return 0, invalidRequest("wait %q is not a duration such as 30s (or whole seconds, such as 30)", s)
	}
	return min(d, limit), nil
}

// untilDrain is ctx, also cancelled once the server drains (see
// WaitConfig.Draining); cancel releases it.
func (h *handler) untilDrain(ctx context.Context) (_ context.Context, cancel context.CancelFunc) {
	ctx, cancel = context.WithCancel(ctx)
	if h.waitCfg.Draining != nil {
		go func() {
			select {
			case <-h.waitCfg.Draining:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}

// draining says whether the server has begun to shut down.
func (h *handler) draining() bool {
	select {
	case <-h.waitCfg.Draining:
		return true
	default:
		return false
	}
}

// holdOpen lets the response to c be written until deadline, past the
// server's WriteTimeout, and keeps the server's ReadTimeout from ending the
// request (its expiry cancels the request's context) before read, or ever
// when read is zero. A response writer that cannot set deadlines (a test
// recorder) has none to extend.
func holdOpen(c echo.Context, deadline, read time.Time) {
	rc := http.NewResponseController(c.Response())
	_ = rc.SetWriteDeadline(deadline)
	_ = rc.SetReadDeadline(read)
}

// getWait answers GET /v1/verifications/{id}?wait=: the verification as
// soon as it is no longer pending, or as it stands when the wait ends.
func (h *handler) getWait(c echo.Context, tenant string, wait time.Duration) error {
	if h.waiter == nil {
		return fmt.Errorf("api: the service cannot wait: %w", verify.ErrUnavailable)
	}
	release, err := h.slots.acquire(tenant)
	if err != nil {
		return err
	}
	defer release()
	until := time.Now().Add(wait + waitWriteGrace)
	holdOpen(c, until, until)
	ctx, cancel := h.untilDrain(c.Request().Context())
	defer cancel()
	v, err := h.waiter.Wait(ctx, tenant, c.Param("id"), wait)
	if err != nil && h.draining() && c.Request().Context().Err() == nil {
		// The server is shutting down: the verification as it stands.
		v, err = h.waiter.Wait(c.Request().Context(), tenant, c.Param("id"), 0)
	}
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, appendView(make([]byte, 0, 1024), v))
}

// errSeenAll ends a stream whose client has already seen the final state.
var errSeenAll = errors.New("the client has seen the final state")

// events answers GET /v1/verifications/{id}/events: a Server-Sent Events
// stream with one "verification" event per change (id: its Seq,
// data: the verification as GET shows it), a comment every Heartbeat
// while nothing changes, ending after the final status. Last-Event-ID
// skips the states the client has seen; a client that has seen the final
// one gets 204, which tells an EventSource to stop reconnecting.
func (h *handler) events(c echo.Context, tenant string) error {
	if h.waiter == nil {
		return fmt.Errorf("api: the service cannot wait: %w", verify.ErrUnavailable)
	}
	seen := -1
	if last := strings.TrimSpace(c.Request().Header.Get("Last-Event-ID")); last != "" {
		n, err := strconv.Atoi(last)
		if err != nil || n < 0 {
			return invalidRequest("Last-Event-ID %q is not an id this stream sent", last)
		}
		seen = n
	}
	release, err := h.slots.acquire(tenant)
	if err != nil {
		return err
	}
	defer release()

	ctx, cancel := h.untilDrain(c.Request().Context())
	var beats sync.WaitGroup
	defer beats.Wait()
	defer cancel()
	w := c.Response()
	var mu sync.Mutex // the heartbeat writes too
	write := func(b []byte) error {
		mu.Lock()
		defer mu.Unlock()
		// A stream has no end known in advance: no read deadline (a client
		// that goes away still ends it), and each write gets its own.
		holdOpen(c, time.Now().Add(waitWriteGrace), time.Time{})
		if _, err := w.Write(b); err != nil {
			return err
		}
		w.Flush()
		return nil
	}
	started := false
	err = h.waiter.Follow(ctx, tenant, c.Param("id"), func(v *verify.Verification) error {
		seq := v.Seq()
		if !started {
			if v.Status.Final() && seq <= seen {
				return errSeenAll
			}
			hd := w.Header()
			hd.Set(echo.HeaderContentType, "text/event-stream")
			hd.Set("Cache-Control", "no-store")
			hd.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
			w.WriteHeader(http.StatusOK)
			started = true
			if err := write([]byte(": verification " + v.ID + "\n\n")); err != nil {
				return err
			}
			beats.Go(func() { h.heartbeat(ctx, write) })
		}
		if seq <= seen {
			return nil
		}
		b := make([]byte, 0, 1024)
		b = append(b, "id: "...)
		b = strconv.AppendInt(b, int64(seq), 10)
		b = append(b, "\nevent: verification\ndata: "...)
		b = appendView(b, v)
		b = append(b, "\n\n"...)
		return write(b)
	})
	switch {
	case errors.Is(err, errSeenAll):
		return c.NoContent(http.StatusNoContent)
	case !started && h.draining() && c.Request().Context().Err() == nil:
		return &Error{Status: http.StatusServiceUnavailable, Code: verify.CodeUnavailable, RetryAfter: waitRetryAfter,
			Message: "this gateway is shutting down; retry in a few seconds"}
	case !started:
		return err
	case h.draining() && c.Request().Context().Err() == nil:
		// The server is shutting down: the stream ends, and an EventSource
		// reconnects, with Last-Event-ID, to another gateway or this one
		// restarted.
	case errors.Is(err, verify.ErrUnavailable):
		// The stream has begun: the status is sent, so the stream just ends.
		h.log.Warn("event stream ended early", "route", RouteEvents, "err", err)
	case err != nil && c.Request().Context().Err() == nil:
		h.log.Debug("event stream ended early", "route", RouteEvents, "err", err) // the client went away
	}
	return nil
}

// heartbeat writes a comment every Heartbeat until ctx ends.
func (h *handler) heartbeat(ctx context.Context, write func([]byte) error) {
	t := time.NewTicker(h.waitCfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if write([]byte(": keep-alive\n\n")) != nil {
				return
			}
		}
	}
}
