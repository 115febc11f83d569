package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/verigate/verigate/config"
)

// Numbers the demo verifies: a German mobile (SMS) and a Berlin fixed line
// (voice). Nothing leaves the machine: SMS go to the console provider and
// calls to the loopback test phone.
const (
	demoMobile = "+4915123456789"
	demoFixed  = "+493012345678"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "also print the gateway's full log on standard error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	tl := &timeline{out: stdout, start: time.Now(), codes: make(chan string, 4), hungUp: make(chan struct{}, 4)}
	var handler slog.Handler = &timelineHandler{tl: tl}
	if *verbose {
		handler = teeHandler{handler, slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug})}
	}
	log := slog.New(handler)

	cfg, key, err := demoConfig()
	if err != nil {
		return err
	}
	tl.say("demo", "starting the gateway: in-memory state, console SMS, a test phone on loopback that answers and presses #")
	gw, err := buildGateway(ctx, cfg, true, tl.smsWriter(), log)
	if err != nil {
		return err
	}
	defer gw.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srvCtx, stopServer := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- serveHTTP(srvCtx, ln, gw.handler, log) }()
	defer func() { stopServer(); <-served }()

	c := demoClient{base: "http://" + ln.Addr().String(), key: key, tl: tl}
	fmt.Fprintf(stdout, "\n== SMS verification of %s\n", demoMobile)
	smsOK, err := c.smsFlow(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n== Voice verification (approve mode) of %s\n", demoFixed)
	callOK, err := c.callFlow(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	if !smsOK || !callOK {
		return errors.New("demo: a verification did not end approved")
	}
	fmt.Fprintln(stdout, "Both verifications ended approved.")
	return nil
}

func demoConfig() (config.Config, string, error) {
	cfg, err := config.Load("", func(string) (string, bool) { return "", false })
	if err != nil {
		return cfg, "", err
	}
	if cfg.Secret, err = randomHex(rand.Reader, 32); err != nil {
		return cfg, "", err
	}
	key, err := randomHex(rand.Reader, 16)
	if err != nil {
		return cfg, "", err
	}
	cfg.APIKeys = "demo:" + key
	cfg.SMS.Provider = "console"
	return cfg, key, nil
}

// timeline prints what happens, each line stamped with the time since the
// demo started.
type timeline struct {
	mu    sync.Mutex
	out   io.Writer
	start time.Time
	codes chan string
	// hungUp is signalled when the test phone's call ends, so the demo
	// shows the goodbye before it stops the gateway.
	hungUp chan struct{}
}

func (t *timeline) say(who, what string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.out, "%7.3fs  %-8s %s\n", time.Since(t.start).Seconds(), who, what)
}

var consoleSMS = regexp.MustCompile(`^sms to=(\S+) body=(.*?(\d{4,10}).*)$`)

// smsWriter receives the console SMS provider's lines: the demo shows the
// text as the phone would and keeps the code to check it.
func (t *timeline) smsWriter() io.Writer {
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := consoleSMS.FindStringSubmatch(sc.Text()); m != nil {
				t.say("phone", fmt.Sprintf("SMS received on %s: %q", m[1], m[2]))
				select {
				case t.codes <- m[3]:
				default:
				}
			}
		}
	}()
	return pw
}

// timelineHandler shows the call's progress from the gateway's and the test
// phone's log records.
type timelineHandler struct {
	tl    *timeline
	attrs []slog.Attr
}

func (h *timelineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *timelineHandler) Handle(_ context.Context, r slog.Record) error {
	who := "gateway"
	for _, a := range h.attrs {
		if a.Key == "component" && a.Value.String() == "phone" {
			who = "phone"
		}
	}
	switch {
	case strings.HasPrefix(r.Message, "call "), strings.HasPrefix(r.Message, "phone "):
	case r.Message == "fraud reported", strings.HasPrefix(r.Message, "verification "):
	default:
		return nil
	}
	var detail []string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "prompt", "key", "event", "status", "to", "codec":
			detail = append(detail, a.Key+"="+a.Value.String())
		}
		return true
	})
	h.tl.say(who, strings.TrimSpace(r.Message+" "+strings.Join(detail, " ")))
	if r.Message == "phone call ended" {
		select {
		case h.tl.hungUp <- struct{}{}:
		default:
		}
	}
	return nil
}

func (h *timelineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &timelineHandler{tl: h.tl, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *timelineHandler) WithGroup(string) slog.Handler { return h }

// teeHandler sends each record to two handlers.
type teeHandler [2]slog.Handler

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t[0].Enabled(ctx, l) || t[1].Enabled(ctx, l)
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			if err := h.Handle(ctx, r.Clone()); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{t[0].WithAttrs(as), t[1].WithAttrs(as)}
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{t[0].WithGroup(name), t[1].WithGroup(name)}
}

// demoClient plays the identity server.
type demoClient struct {
	base, key string
	tl        *timeline
}

type demoVerification struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	AttemptsLeft int    `json:"attempts_left"`
	Events       []struct {
		Type string `json:"type"`
	} `json:"events"`
}

func (c demoClient) do(ctx context.Context, method, path, body string) (int, demoVerification, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, strings.NewReader(body))
	if err != nil {
		return 0, demoVerification{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, demoVerification{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, demoVerification{}, err
	}
	var v demoVerification
	if res.StatusCode/100 == 2 {
		if err := json.Unmarshal(raw, &v); err != nil {
			return 0, v, fmt.Errorf("%s %s: %w", method, path, err)
		}
	} else {
		return res.StatusCode, v, fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, bytes.TrimSpace(raw))
	}
	return res.StatusCode, v, nil
}

func (c demoClient) smsFlow(ctx context.Context) (bool, error) {
	body := fmt.Sprintf(`{"to":%q,"channel":"sms"}`, demoMobile)
	c.tl.say("idp", "POST /v1/verifications "+body)
	status, v, err := c.do(ctx, http.MethodPost, "/v1/verifications", body)
	if err != nil {
		return false, err
	}
	c.tl.say("idp", fmt.Sprintf("← %d id=%s status=%s", status, v.ID, v.Status))
	var code string
	select {
	case code = <-c.tl.codes:
	case <-ctx.Done():
		return false, errors.New("demo: no SMS arrived")
	}
	body = fmt.Sprintf(`{"code":%q}`, code)
	c.tl.say("idp", "POST /v1/verifications/"+v.ID+"/check with the code the person typed")
	status, v, err = c.do(ctx, http.MethodPost, "/v1/verifications/"+v.ID+"/check", body)
	if err != nil {
		return false, err
	}
	c.tl.say("idp", fmt.Sprintf("← %d status=%s", status, v.Status))
	return v.Status == "approved", nil
}

func (c demoClient) callFlow(ctx context.Context) (bool, error) {
	body := fmt.Sprintf(`{"to":%q,"channel":"call","call_mode":"approve"}`, demoFixed)
	c.tl.say("idp", "POST /v1/verifications "+body)
	status, v, err := c.do(ctx, http.MethodPost, "/v1/verifications", body)
	if err != nil {
		return false, err
	}
	c.tl.say("idp", fmt.Sprintf("← %d id=%s status=%s", status, v.ID, v.Status))
	for {
		select {
		case <-ctx.Done():
			return false, errors.New("demo: the call did not finish in time")
		case <-time.After(100 * time.Millisecond):
		}
		_, got, err := c.do(ctx, http.MethodGet, "/v1/verifications/"+v.ID, "")
		if err != nil {
			return false, err
		}
		if got.Status != "pending" {
			c.tl.say("idp", fmt.Sprintf("GET /v1/verifications/%s ← status=%s", v.ID, got.Status))
			select {
			case <-c.tl.hungUp:
			case <-time.After(15 * time.Second):
			}
			return got.Status == "approved", nil
		}
	}
}
