package soak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildGateway builds the verigate binary into a directory of the test's
// (with the race detector when VERIGATE_SOAK_RACE is set).
func buildGateway(t *testing.T, race bool) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "verigate")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "github.com/verigate/verigate/cmd/verigate")
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// gateway is one `verigate serve` process. It is started once and must
// live until the test stops it: exited closes if it ends by itself.
type gateway struct {
	url    string
	cmd    *exec.Cmd
	log    *logTail
	exited chan struct{}

	mu      sync.Mutex
	waitErr error // how the process ended, once exited is closed
	stopped bool  // the test stopped it
}

// startGateway runs bin as `verigate serve args...` with env (and no other
// VERIGATE_ variable of this process's: the soak's settings are all there
// is) on addr, and waits until /healthz answers. Its output goes to
// logCopy too, if not nil.
func startGateway(t *testing.T, bin, addr string, logCopy io.Writer, env []string, args ...string) *gateway {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VERIGATE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	// The child writes into the pipe itself; one goroutine here reads it.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		t.Fatalf("start verigate serve: %v", err)
	}
	g := &gateway{url: "http://" + addr, cmd: cmd, log: newLogTail(), exited: make(chan struct{})}
	g.log.copy = logCopy
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer pr.Close()
		g.log.read(pr)
	}()
	go func() {
		err := cmd.Wait()
		<-read // Wait closes nothing of ours: the output ends when the child does
		g.mu.Lock()
		g.waitErr = err
		g.mu.Unlock()
		close(g.exited)
	}()
	t.Cleanup(g.stop)

	c := &http.Client{Timeout: 5 * time.Second}
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, err := c.Get(g.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g
			}
		}
		select {
		case <-g.exited:
			t.Fatalf("verigate serve ended at start (%v):\n%s", g.exitErr(), g.log.tail(100))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("verigate serve on %s did not answer /healthz: %v\n%s", addr, err, g.log.tail(100))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (g *gateway) exitErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waitErr
}

// alive reports whether the process is still running.
func (g *gateway) alive() bool {
	select {
	case <-g.exited:
		return false
	default:
		return true
	}
}

// stop ends the process as an operator does (SIGTERM; SIGKILL after 15 s).
func (g *gateway) stop() {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return
	}
	g.stopped = true
	g.mu.Unlock()
	_ = g.cmd.Process.Signal(os.Interrupt)
	select {
	case <-g.exited:
	case <-time.After(15 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
}

// metrics reads the gauges and counters of /metrics that carry no labels.
func (g *gateway) metrics(c *http.Client) (map[string]float64, error) {
	resp, err := c.Get(g.url + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}

// logTail reads the gateway's output: it keeps the last lines for
// failure messages, counts lines by level, and keeps every line that says
// the process panicked or raced.
type logTail struct {
	copy io.Writer // every line, when set (VERIGATE_SOAK_LOG)

	mu     sync.Mutex
	ring   []string
	next   int
	total  int
	levels map[string]int
	alarms []string
}

const (
	tailLines   = 300
	maxLineKept = 2048
)

// alarmWords mark output that must never appear: a crash, a recovered
// handler panic, a data race (VERIGATE_SOAK_RACE).
var alarmWords = []string{"panic:", "handler panic", "fatal error:", "WARNING: DATA RACE"}

func newLogTail() *logTail {
	return &logTail{ring: make([]string, tailLines), levels: map[string]int{}}
}

// read consumes r to its end, line by line, keeping at most maxLineKept
// bytes of a line, so the child never blocks on a full pipe.
func (l *logTail) read(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	for {
		frag, isPrefix, err := br.ReadLine()
		if len(line) < maxLineKept {
			line = append(line, frag[:min(len(frag), maxLineKept-len(line))]...)
		}
		if err != nil {
			if len(line) > 0 {
				l.add(string(line))
			}
			if !errors.Is(err, io.EOF) {
				_, _ = io.Copy(io.Discard, r)
			}
			return
		}
		if !isPrefix {
			l.add(string(line))
			line = line[:0]
		}
	}
}

func (l *logTail) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.copy != nil {
		_, _ = io.WriteString(l.copy, line+"\n")
	}
	l.ring[l.next] = line
	l.next = (l.next + 1) % len(l.ring)
	l.total++
	if _, rest, ok := strings.Cut(line, "level="); ok {
		level, _, _ := strings.Cut(rest, " ")
		l.levels[level]++
	}
	for _, w := range alarmWords {
		if strings.Contains(line, w) {
			if len(l.alarms) < 20 {
				l.alarms = append(l.alarms, line)
			}
			break
		}
	}
}

// tail returns the last n lines.
func (l *logTail) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	n = min(n, l.total, len(l.ring))
	var b strings.Builder
	for i := range n {
		b.WriteString(l.ring[(l.next-n+i+len(l.ring))%len(l.ring)])
		b.WriteByte('\n')
	}
	return b.String()
}

func (l *logTail) counts() (total int, levels map[string]int, alarms []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	levels = make(map[string]int, len(l.levels))
	for k, v := range l.levels {
		levels[k] = v
	}
	return l.total, levels, append([]string(nil), l.alarms...)
}

// waitCtx sleeps for d or until ctx ends.
func waitCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
