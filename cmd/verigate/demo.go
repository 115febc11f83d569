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
	"strings"
	"sync"
	"time"

	"github.com/verigate/verigate/config"
	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/verify"
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
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}

	cfg, key, err := demoConfig()
	if err != nil {
		return err
	}
	tl.say("demo", "starting the gateway: in-memory state, console SMS, a test phone on loopback that answers and presses #")
	// The console provider's own lines are not shown: the phone shows
	// each message as it receives it.
	gw, err := buildGateway(ctx, cfg, true, io.Discard, log, gatewayHooks{sms: tl.smsReceived, phone: tl.phoneEvent})
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
	go func() { served <- serveHTTP(srvCtx, ln, gw.handler, gw.drain, log) }()
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

// smsReceived is the console SMS provider's hook: the phone shows the text
// and the person reads the code in it.
func (t *timeline) smsReceived(m verify.Message) {
	t.say("phone", fmt.Sprintf("SMS received on %s: %q", verify.MaskNumber(m.To), m.Body))
	if code := codeIn(m.Body); code != "" {
		select {
		case t.codes <- code:
		default:
		}
	}
}

// codeIn finds the code in a message's text: its first run of at least
// four digits.
func codeIn(body string) string {
	for _, f := range strings.FieldsFunc(body, func(r rune) bool { return r < '0' || r > '9' }) {
		if len(f) >= 4 {
			return f
		}
	}
	return ""
}

// phoneEvent is the loopback test phone's hook.
func (t *timeline) phoneEvent(ev siptest.PhoneEvent) {
	switch ev.Kind {
	case siptest.PhoneIncoming:
		t.say("phone", "incoming call, ringing")
	case siptest.PhoneAnswered:
		t.say("phone", "answered codec="+ev.Codec.String())
	case siptest.PhonePressed:
		t.say("phone", "pressed key "+ev.Key)
	case siptest.PhoneEnded:
		by := ev.HungUpBy
		if by == "caller" {
			by = "gateway"
		}
		what := "call ended, hung up by the " + by
		if ev.Err != nil {
			what = "call failed: " + ev.Err.Error()
		}
		t.say("phone", what)
		select {
		case t.hungUp <- struct{}{}:
		default:
		}
	}
}

// demoClient plays the identity server.
type demoClient struct {
	base, key string
	tl        *timeline
}

type demoVerification struct {
	ID           string      `json:"id"`
	Status       string      `json:"status"`
	AttemptsLeft int         `json:"attempts_left"`
	Events       []demoEvent `json:"events"`
}

type demoEvent struct {
	Type     string `json:"type"`
	Provider string `json:"provider"`
	Detail   string `json:"detail"`
}

// String is the event as the timeline shows it.
func (e demoEvent) String() string {
	s := strings.ReplaceAll(e.Type, "_", " ")
	if e.Provider != "" {
		s += " provider=" + e.Provider
	}
	if e.Detail != "" {
		s += " detail=" + e.Detail
	}
	return s
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
	events, err := c.follow(ctx, v.ID)
	if err != nil {
		return false, err
	}
	defer events.Close()
	// The stream begins with the verification as it stands: the gateway's
	// steps so far appear before the person types the code.
	if _, err := events.next(); err != nil {
		return false, err
	}
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
	if err := events.rest(); err != nil {
		return false, err
	}
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
	c.tl.say("idp", "GET /v1/verifications/"+v.ID+"/events: following the call")
	events, err := c.follow(ctx, v.ID)
	if err != nil {
		return false, err
	}
	defer events.Close()
	if err := events.rest(); err != nil {
		return false, err
	}
	c.tl.say("idp", "event stream ended: status="+events.status)
	// The gateway says goodbye after the approval; the phone hangs up last.
	select {
	case <-c.tl.hungUp:
	case <-time.After(15 * time.Second):
	}
	return events.status == "approved", nil
}

// follow opens the verification's event stream (GET
// /v1/verifications/{id}/events), which the gateway ends after the final
// status.
func (c demoClient) follow(ctx context.Context, id string) (*demoEvents, error) {
	path := "/v1/verifications/" + id + "/events"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if res.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		res.Body.Close()
		return nil, fmt.Errorf("GET %s: %d %s", path, res.StatusCode, bytes.TrimSpace(raw))
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 16<<10), 1<<20)
	return &demoEvents{body: res.Body, sc: sc, tl: c.tl}, nil
}

// demoEvents reads a verification's event stream and shows each event the
// gateway added as a timeline line.
type demoEvents struct {
	body   io.Closer
	sc     *bufio.Scanner
	tl     *timeline
	shown  int    // events already shown
	status string // the verification's status in the last state read
}

func (e *demoEvents) Close() error { return e.body.Close() }

// next reads the stream up to its next state and shows the events new in
// it; false when the stream ended.
func (e *demoEvents) next() (bool, error) {
	for e.sc.Scan() {
		// The gateway sends each state as one data line of JSON.
		data, ok := strings.CutPrefix(e.sc.Text(), "data: ")
		if !ok {
			continue // event:, id:, comments and blank lines
		}
		var v demoVerification
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			return false, fmt.Errorf("event stream: %w", err)
		}
		last := ""
		for _, ev := range v.Events[min(e.shown, len(v.Events)):] {
			e.tl.say("gateway", ev.String())
			last = ev.Type
		}
		e.shown = max(e.shown, len(v.Events))
		// A new status the events did not name (pending at first, an
		// expiry not yet recorded) gets a line of its own.
		if v.Status != e.status && v.Status != last {
			e.tl.say("gateway", "verification "+v.Status)
		}
		e.status = v.Status
		return true, nil
	}
	if err := e.sc.Err(); err != nil {
		return false, fmt.Errorf("event stream: %w", err)
	}
	return false, nil
}

// rest reads the stream to its end.
func (e *demoEvents) rest() error {
	for {
		more, err := e.next()
		if !more || err != nil {
			return err
		}
	}
}
