// Package redise2e runs the verigate binary (`verigate serve`) against a
// real Redis, as operators run it: two gateways sharing one Redis, races of
// concurrent starts and checks over HTTP, Redis stopping and coming back
// under a running gateway, and a gateway restart.
package redise2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/redistest"
)

// binary is the verigate binary TestMain builds.
var binary string

func TestMain(m *testing.M) {
	// VERIGATE_E2E_BINARY runs an already built verigate instead, such as
	// one of an earlier commit, to compare the two (docs/BENCHMARKS.md).
	if bin := os.Getenv("VERIGATE_E2E_BINARY"); bin != "" {
		binary = bin
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "redise2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "verigate")
	build := exec.Command("go", "build", "-o", binary, "github.com/verigate/verigate/cmd/verigate")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "redise2e: build verigate:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	apiKey = "e2e-key-0123456789abcdef"
	tenant = "e2e"
)

// gateway is one `verigate serve` process.
type gateway struct {
	t    testing.TB
	url  string
	env  []string
	args []string // after "serve"
	addr string

	mu    sync.Mutex
	cmd   *exec.Cmd
	out   bytes.Buffer
	codes map[string]string        // masked number → last code printed that no takeCode took
	wait  map[string][]chan string // masked number → takeCode calls waiting for a code, oldest first
	sent  int                      // SMS the console provider printed
	done  chan struct{}            // closed when the output ends
}

// startGateway runs `verigate serve` with Redis at redisURL on a free
// loopback port, the console SMS provider and one API key, and waits until
// /healthz answers.
func startGateway(t testing.TB, redisURL string, env ...string) *gateway {
	t.Helper()
	return startGatewayWith(t, redisURL, nil, env...)
}

// startGatewayWith is startGateway with arguments for `serve` (--config).
func startGatewayWith(t testing.TB, redisURL string, args []string, env ...string) *gateway {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	g := &gateway{t: t, addr: addr, url: "http://" + addr, args: args, codes: map[string]string{}, wait: map[string][]chan string{}}
	g.env = append(os.Environ(),
		"VERIGATE_HTTP_ADDR="+addr,
		"VERIGATE_API_KEYS="+tenant+":"+apiKey,
		"VERIGATE_SECRET=e2e-secret-0123456789abcdef",
		"VERIGATE_REDIS_URL="+redisURL,
		"VERIGATE_SMS_PROVIDER=console",
		"VERIGATE_LOG_LEVEL=info",
	)
	g.env = append(g.env, env...)
	g.start()
	t.Cleanup(g.stop)
	return g
}

// smsLine parses a line of the console SMS provider,
// `sms to=<masked number> body=<text>`, into the number and the code:
// the first six digits in the body followed by a period ("… is 123456.").
// It runs on every line the gateway prints, in the process that measures
// the gateway, so it does by hand what a regexp would.
func smsLine(line []byte) (to []byte, code string, ok bool) {
	rest, ok := bytes.CutPrefix(line, []byte("sms to="))
	if !ok {
		return nil, "", false
	}
	to, body, ok := bytes.Cut(rest, []byte(" body="))
	if !ok || len(to) == 0 || bytes.IndexByte(to, ' ') >= 0 {
		return nil, "", false
	}
	for i := 6; i < len(body); i++ {
		if body[i] == '.' && allDigits(body[i-6:i]) {
			return to, string(body[i-6 : i]), true
		}
	}
	return nil, "", false
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (g *gateway) start() {
	g.t.Helper()
	cmd := exec.Command(binary, append([]string{"serve"}, g.args...)...)
	cmd.Env = g.env
	// The child writes to the pipe itself (an *os.File needs no copying
	// goroutine in this process), stdout and stderr in one stream.
	pr, pw, err := os.Pipe()
	if err != nil {
		g.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		g.t.Fatalf("start verigate serve: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			to, code, ok := smsLine(line)
			g.mu.Lock()
			g.out.Write(line)
			g.out.WriteByte('\n')
			if ok {
				g.sent++
				g.deliver(string(to), code)
			}
			g.mu.Unlock()
		}
	}()
	go func() { _ = cmd.Wait() }()
	g.mu.Lock()
	g.cmd, g.done = cmd, done
	g.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(g.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("verigate serve on %s did not answer /healthz: %v\n%s", g.addr, err, g.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the process (SIGINT, then SIGKILL after 10 s).
func (g *gateway) stop() { g.stopWith(os.Interrupt) }

// stopWith ends the process with sig (then SIGKILL after 10 s).
func (g *gateway) stopWith(sig os.Signal) {
	g.mu.Lock()
	cmd, done := g.cmd, g.done
	g.cmd = nil
	g.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func (g *gateway) restart() { g.t.Helper(); g.stop(); g.start() }

// pid is the running process's id (0 while stopped).
func (g *gateway) pid() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cmd == nil {
		return 0
	}
	return g.cmd.Process.Pid
}

func (g *gateway) output() string { g.mu.Lock(); defer g.mu.Unlock(); return g.out.String() }

func (g *gateway) smsSent() int { g.mu.Lock(); defer g.mu.Unlock(); return g.sent }

// smsSettled is the number of SMS the gateways printed once this process
// has read their output: the console prints before the API answers, but
// this process reads it a moment later. It waits until at least want are
// counted (up to 10 s), then a moment more, so that an extra one shows.
func smsSettled(want int, gws ...*gateway) int {
	total := func() int {
		n := 0
		for _, g := range gws {
			n += g.smsSent()
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); total() < want && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	return total()
}

func masked(to string) string { return to[:6] + strings.Repeat("*", len(to)-9) + to[len(to)-3:] }

// code is the last code printed for to (masked as the console prints it).
func (g *gateway) code(to string) string {
	g.t.Helper()
	// The console prints before the API answers, but this process reads
	// the output a moment later.
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.mu.Lock()
		c, ok := g.codes[masked(to)]
		g.mu.Unlock()
		if ok {
			return c
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("no SMS to %s in the gateway's output:\n%s", masked(to), g.output())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// deliver hands a code printed for a masked number to the oldest
// takeCode waiting for it, waking that one only, or keeps it for code and
// a later takeCode. g.mu is held.
func (g *gateway) deliver(to, code string) {
	w := g.wait[to]
	if len(w) == 0 {
		g.codes[to] = code
		return
	}
	w[0] <- code // buffered: never blocks
	if len(w) == 1 {
		delete(g.wait, to)
	} else {
		g.wait[to] = w[1:]
	}
}

// takeCode waits for the code printed for to and forgets it, so that a
// later number with the same masked form waits for its own. It returns
// false when the gateway's output ends first.
func (g *gateway) takeCode(to string) (string, bool) {
	m := masked(to)
	g.mu.Lock()
	if c, ok := g.codes[m]; ok {
		delete(g.codes, m)
		g.mu.Unlock()
		return c, true
	}
	ch := make(chan string, 1)
	g.wait[m] = append(g.wait[m], ch)
	done := g.done
	g.mu.Unlock()
	select {
	case c := <-ch:
		return c, true
	case <-done:
		select { // the last line may have come with the end
		case c := <-ch:
			return c, true
		default:
			return "", false
		}
	}
}

// response is an API answer.
type response struct {
	status     int
	retryAfter string
	body       map[string]any
}

func (r response) str(key string) string { s, _ := r.body[key].(string); return s }

func (r response) errorCode() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

var client = &http.Client{Timeout: 30 * time.Second}

func (g *gateway) post(path string, body any) response {
	g.t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, g.url+path, bytes.NewReader(b))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		g.t.Errorf("POST %s: %v", path, err)
		return response{}
	}
	defer resp.Body.Close()
	r := response{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	_ = json.NewDecoder(resp.Body).Decode(&r.body)
	return r
}

func (g *gateway) startVerification(to string) response {
	return g.post("/v1/verifications", map[string]string{"to": to, "channel": "sms"})
}

func (g *gateway) check(id, code string) response {
	return g.post("/v1/verifications/"+id+"/check", map[string]string{"code": code})
}

func (g *gateway) ready() int {
	resp, err := client.Get(g.url + "/readyz")
	if err != nil {
		g.t.Fatalf("GET /readyz: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestTwoGateways starts on one gateway and checks on the other.
func TestTwoGateways(t *testing.T) {
	url := redistest.StartServer(t).URL()
	a, b := startGateway(t, url), startGateway(t, url)
	const to = "+4915112348101"
	r := a.startVerification(to)
	if r.status != http.StatusCreated || r.str("status") != "pending" {
		t.Fatalf("start on gateway a: %d %v\n%s", r.status, r.body, a.output())
	}
	c := b.check(r.str("id"), a.code(to))
	if c.status != http.StatusOK || c.str("status") != "approved" {
		t.Fatalf("check on gateway b: %d %v", c.status, c.body)
	}
	if again := a.check(r.str("id"), a.code(to)); again.status != http.StatusConflict || again.errorCode() != "not_pending" {
		t.Errorf("second check on gateway a: %d %v, want 409 not_pending", again.status, again.body)
	}
}

// TestRaces sends 100 concurrent starts for one number (the limit lets
// exactly 5 through, whichever gateway takes them) and 50 concurrent checks
// with the right code (exactly one approves), spread over two gateways.
func TestRaces(t *testing.T) {
	url := redistest.StartServer(t).URL()
	gws := []*gateway{startGateway(t, url), startGateway(t, url)}
	const to = "+4915112348102"

	var wg sync.WaitGroup
	results := make(chan response, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- gws[i%2].startVerification(to)
		}()
	}
	wg.Wait()
	close(results)
	created, limited := 0, 0
	ids := map[string]bool{}
	for r := range results {
		switch r.status {
		case http.StatusCreated, http.StatusOK: // a new verification, a resend
			created++
			ids[r.str("id")] = true
		case http.StatusTooManyRequests:
			limited++
			if s, err := strconv.Atoi(r.retryAfter); err != nil || s <= 0 || s > 600 {
				t.Errorf("429 with Retry-After %q, want 1..600 seconds", r.retryAfter)
			}
			if msg, _ := r.body["error"].(map[string]any)["message"].(string); !strings.HasPrefix(msg, "You've reached our limit on text verification codes.") {
				t.Errorf("429 message %q", msg)
			}
		default:
			t.Errorf("start: %d %v", r.status, r.body)
		}
	}
	if created != 5 || limited != 95 || len(ids) != 1 {
		t.Fatalf("100 concurrent starts: %d sent (%d ids), %d limited; want 5 (one id), 95", created, len(ids), limited)
	}
	if n := smsSettled(5, gws[0], gws[1]); n != 5 {
		t.Errorf("%d SMS sent, want 5", n)
	}
	var id string
	for id = range ids {
	}
	// Every code sent in the verification is valid: take one from a
	// gateway that sent one.
	sender := gws[0]
	if sender.smsSent() == 0 {
		sender = gws[1]
	}
	code := sender.code(to)

	checks := make(chan response, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			checks <- gws[i%2].check(id, code)
		}()
	}
	wg.Wait()
	close(checks)
	approved := 0
	for r := range checks {
		switch {
		case r.status == http.StatusOK && r.str("status") == "approved":
			approved++
		case r.status == http.StatusConflict:
		default:
			t.Errorf("check: %d %v", r.status, r.body)
		}
	}
	if approved != 1 {
		t.Errorf("%d of 50 concurrent checks approved, want exactly 1", approved)
	}
}

// TestRedisOutage stops Redis under a running gateway: starts and checks
// answer 503 unavailable, nothing is sent, /readyz fails; Redis restarted,
// the same gateway process serves again.
func TestRedisOutage(t *testing.T) {
	srv := redistest.StartServer(t)
	g := startGateway(t, srv.URL())
	const to = "+4915112348103"
	r := g.startVerification(to)
	if r.status != http.StatusCreated {
		t.Fatalf("start: %d %v", r.status, r.body)
	}
	if s := g.ready(); s != http.StatusOK {
		t.Errorf("/readyz with Redis up: %d", s)
	}
	sent := smsSettled(1, g)

	srv.Stop()
	for i, to := range []string{"+4915112348104", "+4915112348105"} {
		if d := g.startVerification(to); d.status != http.StatusServiceUnavailable || d.errorCode() != "unavailable" {
			t.Errorf("start %d with Redis down: %d %v, want 503 unavailable", i+1, d.status, d.body)
		}
	}
	if c := g.check(r.str("id"), g.code(to)); c.status != http.StatusServiceUnavailable {
		t.Errorf("check with Redis down: %d %v, want 503", c.status, c.body)
	}
	if s := g.ready(); s == http.StatusOK {
		t.Error("/readyz with Redis down: 200")
	}
	if n := smsSettled(sent, g); n != sent {
		t.Errorf("%d SMS sent with Redis down", n-sent)
	}

	srv.Restart()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		r = g.startVerification("+4915112348106")
		if r.status == http.StatusCreated {
			break
		}
		if r.status != http.StatusServiceUnavailable || ctx.Err() != nil {
			t.Fatalf("start after Redis came back: %d %v", r.status, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c := g.check(r.str("id"), g.code("+4915112348106")); c.str("status") != "approved" {
		t.Errorf("check after Redis came back: %d %v", c.status, c.body)
	}
	// Readiness recovers by itself: the health check's own client may still
	// answer its last dial error for a moment after Redis is back.
	for s := g.ready(); s != http.StatusOK; s = g.ready() {
		if ctx.Err() != nil {
			t.Fatalf("/readyz a minute after Redis came back: %d", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestGatewayRestart restarts the gateway between start and check.
func TestGatewayRestart(t *testing.T) {
	g := startGateway(t, redistest.StartServer(t).URL())
	const to = "+4915112348107"
	r := g.startVerification(to)
	if r.status != http.StatusCreated {
		t.Fatalf("start: %d %v", r.status, r.body)
	}
	code := g.code(to)
	g.restart()
	if c := g.check(r.str("id"), code); c.status != http.StatusOK || c.str("status") != "approved" {
		t.Fatalf("check after the gateway restarted: %d %v", c.status, c.body)
	}
}

// TestClusterGateway runs the gateway on a (one-node) Redis Cluster by its
// redis-cluster:// URL: the store takes its Cluster path and the limiter
// consumes policy by policy, and the limit still holds under a race.
func TestClusterGateway(t *testing.T) {
	g := startGateway(t, redistest.StartCluster(t).URL())
	const to = "+4915112348108"
	var wg sync.WaitGroup
	results := make(chan response, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- g.startVerification(to)
		}()
	}
	wg.Wait()
	close(results)
	sent, id := 0, ""
	for r := range results {
		switch r.status {
		case http.StatusCreated, http.StatusOK:
			sent++
			id = r.str("id")
		case http.StatusTooManyRequests:
		default:
			t.Errorf("start: %d %v", r.status, r.body)
		}
	}
	if n := smsSettled(5, g); sent != 5 || n != 5 {
		t.Fatalf("20 concurrent starts on Cluster: %d answered as sent, %d SMS; want 5", sent, n)
	}
	if c := g.check(id, g.code(to)); c.status != http.StatusOK || c.str("status") != "approved" {
		t.Fatalf("check on Cluster: %d %v", c.status, c.body)
	}
}
