package sip_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

// countingReporter counts approvals and keeps each call's answer time.
type countingReporter struct {
	approved, answered, failed atomic.Int64
	mu                         sync.Mutex
	placed                     map[string]time.Time
	setup                      []time.Duration
}

func (r *countingReporter) Report(_ context.Context, id string, ev verify.Event) error {
	switch ev.Type {
	case verify.EventCallApproved:
		r.approved.Add(1)
	case verify.EventAnswered:
		r.mu.Lock()
		r.setup = append(r.setup, time.Since(r.placed[id]))
		r.mu.Unlock()
		r.answered.Add(1)
	case verify.EventFailed, verify.EventBusy, verify.EventNoAnswer, verify.EventRejected, verify.EventInvalidNumber:
		r.failed.Add(1)
	}
	return nil
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkConcurrentApproveCalls places VERIGATE_BENCH_CALLS (500)
// approve-mode calls from a Caller to `verigate phone` running as a
// separate process (so the gateway's memory is measured alone), all
// connected at once: each phone presses '#' VERIGATE_BENCH_AFTER seconds
// (12) after answering, with the real English prompts playing. Calls are
// placed as fast as possible, or VERIGATE_BENCH_RATE per second. Run it
// alone, once:
//
//	go test -run '^$' -bench ConcurrentApproveCalls -benchtime 1x -timeout 10m ./sip
func BenchmarkConcurrentApproveCalls(b *testing.B) {
	calls := envInt("VERIGATE_BENCH_CALLS", 500)
	after := time.Duration(envInt("VERIGATE_BENCH_AFTER", 12)) * time.Second
	bin := filepath.Join(b.TempDir(), "verigate")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/verigate").CombinedOutput(); err != nil {
		b.Fatalf("build verigate: %v\n%s", err, out)
	}
	cat, err := prompts.Load(prompts.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		runWave(b, bin, cat, calls, after)
	}
}

func runWave(b *testing.B, bin string, cat *prompts.Catalogue, calls int, after time.Duration) {
	b.StopTimer()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	phoneAddr := fmt.Sprintf("127.0.0.1:%d", 25060+envInt("VERIGATE_BENCH_PORT_OFFSET", 0))
	phone := exec.CommandContext(ctx, bin, "phone", "--listen", phoneAddr, "--press", "#",
		"--after", after.String(), "--ring", "0s", "--rtp-ports", "30000-31999")
	phone.Stderr = io.Discard
	stdout, err := phone.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := phone.Start(); err != nil {
		b.Fatal(err)
	}
	var pressed atomic.Int64
	ready := make(chan struct{})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "phone listening") {
				close(ready)
			}
			if strings.Contains(line, `pressed "#"`) {
				pressed.Add(1)
			}
		}
	}()
	defer func() {
		cancel()
		_ = phone.Wait()
		<-scanned
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		b.Fatal("verigate phone did not start")
	}

	rep := &countingReporter{placed: map[string]time.Time{}}
	caller, err := sip.NewCaller(sip.Config{Listen: "127.0.0.1:0", RTPPorts: "20000-21999",
		Trunks: []sip.Trunk{{Name: "phones", Address: phoneAddr}}},
		sip.Options{Audio: sip.PromptAudio{Catalogue: cat}, KeyTimeout: 60 * time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer caller.Close()
	caller.ReportTo(rep)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutinesBefore := runtime.NumGoroutine()

	var ruBefore syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ruBefore)
	var pace <-chan time.Time
	if rate := envInt("VERIGATE_BENCH_RATE", 0); rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		pace = t.C
	}
	b.StartTimer()
	start := time.Now()
	for i := range calls {
		if pace != nil {
			<-pace
		}
		id := "v" + strconv.Itoa(i)
		rep.mu.Lock()
		rep.placed[id] = time.Now()
		rep.mu.Unlock()
		if _, err := caller.Call(ctx, verify.Call{VerificationID: id, To: "+4915123456789", Mode: verify.CallModeApprove, Locale: "en"}); err != nil {
			b.Fatalf("call %d: %v", i, err)
		}
	}
	for rep.answered.Load()+rep.failed.Load() < int64(calls) {
		if time.Since(start) > after {
			b.Fatalf("only %d of %d calls answered before the first key was due", rep.answered.Load(), calls)
		}
		time.Sleep(5 * time.Millisecond)
	}
	setupTime := time.Since(start)
	b.StopTimer()

	// Every call is up now: measure the gateway's memory at the peak.
	peakCalls := caller.ActiveCalls()
	var peak runtime.MemStats
	runtime.ReadMemStats(&peak)
	goroutines := runtime.NumGoroutine() - goroutinesBefore
	heap := int64(peak.HeapInuse+peak.StackInuse) - int64(before.HeapInuse+before.StackInuse)

	deadline := time.Now().Add(after + 60*time.Second)
	for caller.ActiveCalls() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	wall := time.Since(start)
	var ruAfter syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ruAfter)
	cpu := time.Duration(ruAfter.Utime.Nano() + ruAfter.Stime.Nano() - ruBefore.Utime.Nano() - ruBefore.Stime.Nano())
	st := caller.Stats()
	rep.mu.Lock()
	setups := slices.Clone(rep.setup)
	rep.mu.Unlock()
	slices.Sort(setups)
	q := func(p float64) time.Duration {
		if len(setups) == 0 {
			return 0
		}
		return setups[min(len(setups)-1, int(p*float64(len(setups))))]
	}
	lost := pressed.Load() - rep.approved.Load()

	b.ReportMetric(float64(peakCalls), "concurrent_calls")
	b.ReportMetric(float64(calls)/setupTime.Seconds(), "setups/s")
	b.ReportMetric(float64(q(0.5).Microseconds())/1000, "setup_p50_ms")
	b.ReportMetric(float64(q(0.99).Microseconds())/1000, "setup_p99_ms")
	b.ReportMetric(float64(heap)/float64(max(peakCalls, 1))/1024, "KiB/call")
	b.ReportMetric(float64(goroutines)/float64(max(peakCalls, 1)), "goroutines/call")
	b.ReportMetric(float64(st.Media.SendLateness.Quantile(0.99).Microseconds())/1000, "send_jitter_p99_ms")
	b.ReportMetric(float64(st.Media.SendLateness.Max().Microseconds())/1000, "send_jitter_max_ms")
	// CPU the gateway spent for the whole wave (setup, prompts, keys,
	// goodbyes, BYEs), as a share of one core over the wave's wall time.
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "gateway_cpu_%")
	b.ReportMetric(float64(rep.approved.Load()), "approved")
	b.ReportMetric(float64(lost), "lost_dtmf")
	if rep.approved.Load() != int64(calls) || lost != 0 {
		b.Errorf("%d of %d calls approved; the phone pressed # in %d; %d failed", rep.approved.Load(), calls, pressed.Load(), rep.failed.Load())
	}
}
