package hosted

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/directory"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/verify"
)

//go:embed assets
var assets embed.FS

var (
	tmplOnce sync.Once
	tmpl     *template.Template
	tmplErr  error
)

func parseTemplates() error {
	tmplOnce.Do(func() {
		tmpl, tmplErr = template.ParseFS(assets, "assets/*.html")
		if tmplErr != nil {
			tmplErr = fmt.Errorf("hosted: templates: %w", tmplErr)
		}
	})
	return tmplErr
}

// Button is one form button of the page.
type button struct {
	Action, Label, ID string
	Disabled          bool
}

// view is what page.html shows.
type view struct {
	Lang, Title, Lead       string
	Status, StatusText      string
	Notice, NoticeLang      string
	ShowCode                bool
	CodeLabel, SubmitCode   string
	Resend, Switch          *button
	CooldownText            string
	Cooldown                int
	NotMe, Cancel, Continue string
	CSRF, Action            string
	Events, Poll            string
	Refresh                 bool
	CSS, JS                 string
}

// errorView is what error.html shows.
type errorView struct {
	Lang, Title, Body, CSS string
}

// render writes the page of f, with notice (or f's State.Notice) shown.
func (h *Handler) render(c echo.Context, f *Flow, notice string, status int) error {
	loc := f.Locale
	t := func(id prompts.ID) string { return h.texts.Text(loc, id) }
	vw := view{
		Lang: loc, Title: t(prompts.PageTitle), NotMe: t(prompts.PageNotMe), Cancel: t(prompts.PageCancel),
		Continue: t(prompts.PageContinue), CSRF: f.CSRF, Action: FlowsPath + "/" + f.ID,
		Events: FlowsPath + "/" + f.ID + "/events", Poll: FlowsPath + "/" + f.ID + "/status",
		CSS: AssetsPath + "/page.css", JS: AssetsPath + "/page.js",
		CodeLabel: t(prompts.PageCodeLabel), SubmitCode: t(prompts.PageSubmitCode),
	}
	vw.Notice, vw.NoticeLang = notice, ""
	if notice == "" {
		vw.Notice, vw.NoticeLang = f.State.Notice, f.State.NoticeLang
	}
	if vw.NoticeLang == loc || strings.HasPrefix(loc, vw.NoticeLang+"-") {
		vw.NoticeLang = ""
	}
	masked := directory.DisplayMask(f.Number)
	ch := f.State.Channel
	switch {
	case ch == verify.ChannelSMS:
		vw.Lead = strings.Replace(t(prompts.PageTexted), "{number}", masked, 1)
		vw.ShowCode = true
	case ch == verify.ChannelCall && h.callMode == verify.CallModeCode:
		vw.Lead = strings.Replace(t(prompts.PageCallingCode), "{number}", masked, 1)
		vw.ShowCode = true
	case ch == verify.ChannelCall:
		vw.Lead = strings.Replace(t(prompts.PageCalling), "{number}", masked, 1)
	}
	if f.State.VerificationID != "" {
		v, err := h.ver.Get(c.Request().Context(), h.tenant, f.State.VerificationID)
		if err == nil {
			vw.Status, vw.StatusText = string(v.Status), h.statusText(loc, v.Status)
			vw.Refresh = v.Status == verify.StatusPending && !vw.ShowCode
		}
	}
	wait := h.cooldown(f)
	if ch == "" {
		// Nothing went yet (a limit, or the core unavailable): the first
		// channel the number can take is the one tried again.
		for _, c := range h.channels {
			if h.offers(f, c) {
				ch = c
				break
			}
		}
	}
	if ch != "" && h.offers(f, ch) {
		b := &button{Action: string(ch), ID: "resend", Label: t(prompts.PageCallAgain)}
		if ch == verify.ChannelSMS {
			b.Label = t(prompts.PageTextAgain)
		}
		if wait > 0 {
			b.Disabled = true
			vw.Cooldown = int((wait + time.Second - 1) / time.Second)
			vw.CooldownText = strings.Replace(t(prompts.PageCooldown), "{seconds}", strconv.Itoa(vw.Cooldown), 1)
		}
		vw.Resend = b
	}
	for _, other := range h.channels {
		if other == ch || !h.offers(f, other) {
			continue
		}
		b := &button{Action: string(other), ID: "switch", Label: t(prompts.PageCallInstead)}
		if other == verify.ChannelSMS {
			b.Label = t(prompts.PageTextInstead)
		}
		vw.Switch = b
		break
	}
	return h.write(c, status, "page.html", vw)
}

// errorPage writes the page shown when nothing can be posted back to
// Entra: the request was not trusted, or the flow is gone or not this
// browser's.
func (h *Handler) errorPage(c echo.Context, status int, locale string) error {
	return h.write(c, status, "error.html", errorView{
		Lang: locale, Title: h.texts.Text(locale, prompts.PageErrorTitle),
		Body: h.texts.Text(locale, prompts.PageErrorBody), CSS: AssetsPath + "/page.css",
	})
}

func (h *Handler) write(c echo.Context, status int, name string, data any) error {
	var b bytes.Buffer
	if err := tmpl.ExecuteTemplate(&b, name, data); err != nil {
		return fmt.Errorf("hosted: render %s: %w", name, err)
	}
	secureHeaders(c.Response())
	return c.HTMLBlob(status, b.Bytes())
}

func (h *Handler) statusText(loc string, s verify.Status) string {
	id := prompts.PageEnded
	switch s {
	case verify.StatusPending:
		id = prompts.PagePending
	case verify.StatusApproved:
		id = prompts.PageApproved
	case verify.StatusDenied:
		id = prompts.PageDenied
	case verify.StatusExpired:
		id = prompts.PageExpired
	case verify.StatusFailed:
		id = prompts.PageFailed
	}
	return h.texts.Text(loc, id)
}

// asset serves the page's script and style sheet.
func (h *Handler) asset(c echo.Context) error {
	name := c.Param("name")
	var ctype string
	switch path.Ext(name) {
	case ".js":
		ctype = "text/javascript; charset=utf-8"
	case ".css":
		ctype = "text/css; charset=utf-8"
	default:
		return echo.NewHTTPError(http.StatusNotFound)
	}
	b, err := assets.ReadFile("assets/" + path.Base(name))
	if err != nil {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	secureHeaders(c.Response())
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	return c.Blob(http.StatusOK, ctype, b)
}

// statusJSON is one status as the stream and the long poll send it.
type statusJSON struct {
	Status string `json:"status"`
	Text   string `json:"text"`
	Final  bool   `json:"final"`
	Seq    int    `json:"seq"`
}

func (h *Handler) statusOf(loc string, v *verify.Verification) statusJSON {
	return statusJSON{Status: string(v.Status), Text: h.statusText(loc, v.Status), Final: v.Status.Final(), Seq: v.Seq()}
}

// slot takes one of the stream slots for flow id, or says there is none:
// at most maxStreams on the gateway, and maxFlowStreams per flow, so that
// one browser cannot hold them all.
func (h *Handler) slot(id string) (release func(), ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.open[id] >= maxFlowStreams {
		return nil, false
	}
	select {
	case h.streams <- struct{}{}:
	default:
		return nil, false
	}
	h.open[id]++
	var once sync.Once
	return func() {
		once.Do(func() {
			<-h.streams
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.open[id]--; h.open[id] <= 0 {
				delete(h.open, id)
			}
		})
	}, true
}

// events streams the status of the flow's verification as Server-Sent
// Events (event "status", data statusJSON) until it is final or the flow
// ends.
func (h *Handler) events(c echo.Context) error {
	f, err := h.session(c)
	if err != nil {
		return h.sessionError(c, err)
	}
	if f.State.VerificationID == "" || f.Finished {
		return c.NoContent(http.StatusNoContent) // nothing to follow: EventSource stops
	}
	release, ok := h.slot(f.ID)
	if !ok {
		return c.NoContent(http.StatusServiceUnavailable)
	}
	defer release()
	// The stream ends with the flow (on the gateway's clock).
	ctx, cancel := context.WithTimeout(c.Request().Context(), f.ExpiresAt.Add(flowGrace).Sub(h.now()))
	defer cancel()
	w := c.Response()
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	var mu sync.Mutex
	write := func(b []byte) error {
		mu.Lock()
		defer mu.Unlock()
		_ = rc.SetWriteDeadline(time.Now().Add(heartbeat))
		if _, err := w.Write(b); err != nil {
			return err
		}
		w.Flush()
		return nil
	}
	started := false
	var beats sync.WaitGroup
	defer beats.Wait()
	defer cancel()
	err = h.ver.Follow(ctx, h.tenant, f.State.VerificationID, func(v *verify.Verification) error {
		if !started {
			secureHeaders(w)
			w.Header().Set(echo.HeaderContentType, "text/event-stream")
			w.Header().Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
			started = true
			beats.Go(func() {
				t := time.NewTicker(heartbeat)
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
			})
		}
		data, err := json.Marshal(h.statusOf(f.Locale, v))
		if err != nil {
			return err
		}
		return write([]byte("id: " + strconv.Itoa(v.Seq()) + "\nevent: status\ndata: " + string(data) + "\n\n"))
	})
	if !started {
		if err != nil {
			h.log.Warn("entra: status stream", "flow", f.ID, "err", err)
		}
		return c.NoContent(http.StatusServiceUnavailable)
	}
	if err != nil && c.Request().Context().Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
		h.log.Debug("entra: status stream ended early", "flow", f.ID, "err", err)
	}
	return nil
}

// status is the long poll for browsers without EventSource: the status
// once its seq differs from the query's seq, or as it stands after a
// while.
func (h *Handler) status(c echo.Context) error {
	f, err := h.session(c)
	if err != nil {
		return h.sessionError(c, err)
	}
	if f.State.VerificationID == "" {
		return c.NoContent(http.StatusNoContent)
	}
	seen := -1
	if s := c.QueryParam("seq"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 && len(s) < 10 {
			seen = n
		}
	}
	release, ok := h.slot(f.ID)
	if !ok {
		return c.NoContent(http.StatusServiceUnavailable)
	}
	defer release()
	ctx, cancel := context.WithTimeout(c.Request().Context(), longPoll)
	defer cancel()
	// Past the server's Read and WriteTimeout: the former's expiry would
	// cancel the request while it waits.
	rc := http.NewResponseController(c.Response())
	_ = rc.SetReadDeadline(time.Now().Add(longPoll + heartbeat))
	_ = rc.SetWriteDeadline(time.Now().Add(longPoll + heartbeat))
	var last *verify.Verification
	err = h.ver.Follow(ctx, h.tenant, f.State.VerificationID, func(v *verify.Verification) error {
		last = v
		if v.Seq() != seen {
			return errSeen
		}
		return nil
	})
	if last == nil {
		h.log.Warn("entra: status poll", "flow", f.ID, "err", err)
		return c.NoContent(http.StatusServiceUnavailable)
	}
	secureHeaders(c.Response())
	return c.JSON(http.StatusOK, h.statusOf(f.Locale, last))
}

var errSeen = errors.New("a new status")

// acceptLanguages returns the tags of an Accept-Language header, highest
// q first, at most 16 of them, q=0 left out.
func acceptLanguages(header string) []string {
	if len(header) > 512 {
		header = header[:512]
	}
	type tq struct {
		tag string
		q   float64
		i   int
	}
	var out []tq
	for i, part := range strings.Split(header, ",") {
		if i >= 16 {
			break
		}
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		tag = strings.TrimSpace(tag)
		if tag == "" || tag == "*" || len(tag) > 35 {
			continue
		}
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		if q > 0 {
			out = append(out, tq{tag, q, i})
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].q > out[b].q })
	tags := make([]string, len(out))
	for i, t := range out {
		tags[i] = t.tag
	}
	return tags
}
