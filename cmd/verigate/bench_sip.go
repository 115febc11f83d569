package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/verigate/verigate/internal/loadtest"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

// sipBenchReporter records, per verification, when its call was placed,
// answered and approved.
type sipBenchReporter struct {
	mu       sync.Mutex
	placed   map[string]time.Time
	answered map[string]time.Time
	approved map[string]time.Time
	failed   int
}

func (r *sipBenchReporter) Report(_ context.Context, id string, ev verify.Event) error {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev.Type {
	case verify.EventAnswered:
		r.answered[id] = now
	case verify.EventCallApproved:
		r.approved[id] = now
	case verify.EventFailed, verify.EventBusy, verify.EventNoAnswer, verify.EventRejected, verify.EventInvalidNumber:
		r.failed++
	}
	return nil
}

func (r *sipBenchReporter) counts() (answered, approved, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.answered), len(r.approved), r.failed
}

// sipReport is what bench sip prints (as text, or JSON with --json).
type sipReport struct {
	Calls           int      `json:"calls"`
	Rate            float64  `json:"rate"` // offered calls per second, 0: as fast as placed
	Target          string   `json:"target"`
	Placed          int      `json:"placed"`
	Answered        int      `json:"answered"`
	Approved        int      `json:"approved"`
	Failed          int      `json:"failed"`
	PeakActive      int      `json:"peak_active_calls"`
	SetupPerSec     float64  `json:"setups_per_s"`
	SetupP50        float64  `json:"setup_p50_ms"`
	SetupP99        float64  `json:"setup_p99_ms"`
	JitterP50       float64  `json:"rtp_send_lateness_p50_ms"`
	JitterP99       float64  `json:"rtp_send_lateness_p99_ms"`
	JitterMax       float64  `json:"rtp_send_lateness_max_ms"`
	Packets         uint64   `json:"rtp_packets_sent"`
	DTMFToApprovP50 float64  `json:"dtmf_to_approval_p50_ms"`
	DTMFToApprovP99 float64  `json:"dtmf_to_approval_p99_ms"`
	Pressed         int64    `json:"pressed"` // -1: unknown (--target)
	LostDTMF        int64    `json:"lost_dtmf"`
	CPUPerCall      float64  `json:"cpu_ms_per_call"`
	CPUCores        float64  `json:"cpu_cores"`
	KiBPerCall      float64  `json:"kib_per_active_call"` // heap and stacks
	RSSKiBPerCall   float64  `json:"rss_kib_per_active_call"`
	GoroutinesCall  float64  `json:"goroutines_per_active_call"`
	PeakFDs         int      `json:"peak_fds"`
	FDLimit         uint64   `json:"fd_limit"`
	PeakRTPPorts    int      `json:"peak_rtp_ports"`
	Seconds         float64  `json:"duration_s"`
	Notes           []string `json:"notes,omitempty"`
}

func runBenchSIP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench sip", flag.ContinueOnError)
	fs.SetOutput(stderr)
	calls := fs.Int("calls", 200, "approve-mode calls, all up at once before the first key")
	rate := fs.Float64("rate", 50, "new calls per second (0: as fast as they can be placed)")
	target := fs.String("target", "", "SIP address (host:port) to call, e.g. a sipp UAS; empty runs `verigate phone` as a separate process")
	hold := fs.Duration("hold", 0, "the phone presses # this long after answering (default: time to place every call plus 8s, so all overlap); with --target, what the far end does, for the DTMF-to-approval figure")
	listen := fs.String("listen", "127.0.0.1:0", "the gateway's SIP address for these calls")
	rtpPorts := fs.String("rtp-ports", "20000-23999", "the gateway's RTP port range (sip.rtp_ports): an even port per call, the odd one above left for RTCP, so it holds half its size in calls")
	phonePorts := fs.String("phone-rtp-ports", "30000-33999", "the test phone's RTP port range")
	phoneAddr := fs.String("phone-listen", "127.0.0.1:25070", "where the test phone listens (without --target)")
	to := fs.String("to", "+4915123456789", "number called")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	progress := addProgressFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *calls < 1 || *calls > 100000 || *rate < 0 {
		return errors.New("bench sip: --calls must be 1 to 100000 and --rate not negative")
	}
	if *hold == 0 {
		place := time.Duration(0)
		if *rate > 0 {
			place = time.Duration(float64(*calls) / *rate * float64(time.Second))
		} else {
			place = time.Duration(*calls) * 2 * time.Millisecond
		}
		*hold = place + 8*time.Second
	}
	rep := sipReport{Calls: *calls, Rate: *rate, Target: *target, Pressed: -1}
	var limit syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit) == nil {
		rep.FDLimit = limit.Cur
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var pressed atomic.Int64
	addr := *target
	if addr == "" {
		bin, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench sip: %w", err)
		}
		stop, err := startBenchPhone(runCtx, bin, *phoneAddr, *phonePorts, *hold, &pressed)
		if err != nil {
			return fmt.Errorf("bench sip: %w", err)
		}
		defer stop()
		addr = *phoneAddr
		rep.Target = "verigate phone on " + addr
	}

	cat, err := prompts.Load(prompts.Options{})
	if err != nil {
		return fmt.Errorf("bench sip: %w", err)
	}
	r := &sipBenchReporter{placed: map[string]time.Time{}, answered: map[string]time.Time{}, approved: map[string]time.Time{}}
	caller, err := sip.NewCaller(sip.Config{Listen: *listen, RTPPorts: *rtpPorts,
		Trunks: []sip.Trunk{{Name: "bench", Address: addr}}},
		sip.Options{Audio: sip.PromptAudio{Catalogue: cat}, KeyTimeout: *hold + 30*time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return fmt.Errorf("bench sip: %w", err)
	}
	defer caller.Close()
	caller.ReportTo(r)

	runtime.GC()
	memBefore, goroutinesBefore, rssBefore := heapAndStacks(), runtime.NumGoroutine(), rssBytes(os.Getpid())
	cpuBefore, err := loadtest.ProcessCPU(os.Getpid())
	if err != nil {
		return fmt.Errorf("bench sip: %w", err)
	}
	start := time.Now()
	var placed atomic.Int64 // rep.Placed, for the progress lines
	stopProgress := progress.start(stderr, "bench sip", func(elapsed time.Duration) string {
		answered, approved, failed := r.counts()
		n := placed.Load()
		return fmt.Sprintf("%d of %d calls placed (%.1f/s), %d answered, %d approved, %d failed, %d up",
			n, *calls, perSecond(n, elapsed), answered, approved, failed, caller.ActiveCalls())
	})
	defer stopProgress()
	var interval time.Duration
	if *rate > 0 {
		interval = time.Duration(float64(time.Second) / *rate)
	}
	for i := range *calls {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		id := "bench" + strconv.Itoa(i)
		r.mu.Lock()
		r.placed[id] = time.Now()
		r.mu.Unlock()
		if _, err := caller.Call(runCtx, verify.Call{VerificationID: id, To: *to, Mode: verify.CallModeApprove, Locale: "en"}); err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("call %d not placed: %v", i, err))
			break
		}
		rep.Placed++
		placed.Add(1)
	}
	// Wait for every call placed to be answered or to fail, watching the
	// peak of what each call holds.
	var peakMem uint64
	var peakGoroutines int
	var peakRSS int64
	sample := func() {
		if n := caller.ActiveCalls(); n >= rep.PeakActive {
			rep.PeakActive = n
			peakMem, peakGoroutines, peakRSS = heapAndStacks(), runtime.NumGoroutine(), rssBytes(os.Getpid())
		}
		rep.PeakFDs = max(rep.PeakFDs, openFDs())
		rep.PeakRTPPorts = max(rep.PeakRTPPorts, caller.RTPPortsInUse())
	}
	setupDeadline := start.Add(*hold + 30*time.Second)
	for {
		answered, _, failed := r.counts()
		sample()
		if answered+failed >= rep.Placed || time.Now().After(setupDeadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	endDeadline := time.Now().Add(*hold + 60*time.Second)
	for caller.ActiveCalls() > 0 && time.Now().Before(endDeadline) && ctx.Err() == nil {
		sample()
		time.Sleep(50 * time.Millisecond)
	}
	stopProgress()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	wall := time.Since(start)
	cpuAfter, _ := loadtest.ProcessCPU(os.Getpid())
	if n := caller.ActiveCalls(); n > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d calls still up %s after the last key was due", n, 60*time.Second))
	}
	// The phone's output may trail the BYEs a little.
	time.Sleep(200 * time.Millisecond)

	st := caller.Stats()
	r.mu.Lock()
	var setups, dtmf []time.Duration
	lastAnswer := start
	for id, at := range r.answered {
		setups = append(setups, at.Sub(r.placed[id]))
		if at.After(lastAnswer) {
			lastAnswer = at
		}
		if ap, ok := r.approved[id]; ok {
			dtmf = append(dtmf, ap.Sub(at)-*hold)
		}
	}
	rep.Answered, rep.Approved, rep.Failed = len(r.answered), len(r.approved), r.failed
	r.mu.Unlock()
	slices.Sort(setups)
	slices.Sort(dtmf)
	// Setups per second run to the last answer, not to the failures of
	// unanswered calls, which come after the SIP transaction's timeout.
	if d := lastAnswer.Sub(start); d > 0 {
		rep.SetupPerSec = float64(rep.Answered) / d.Seconds()
	}
	rep.SetupP50, rep.SetupP99 = quantileMs(setups, 0.5), quantileMs(setups, 0.99)
	rep.DTMFToApprovP50, rep.DTMFToApprovP99 = quantileMs(dtmf, 0.5), quantileMs(dtmf, 0.99)
	lat := st.Media.SendLateness
	rep.JitterP50 = float64(lat.Quantile(0.5).Microseconds()) / 1000
	rep.JitterP99 = float64(lat.Quantile(0.99).Microseconds()) / 1000
	rep.JitterMax = float64(lat.Max().Microseconds()) / 1000
	rep.Packets = st.Media.PacketsSent
	if lat.Quantile(0.99) > latenessHistogramSpan {
		rep.Notes = append(rep.Notes, fmt.Sprintf("RTP send lateness p99 is past the histogram's last bucket (%s): the figure shown is the maximum; %d of %d packets were later than 5 ms",
			latenessHistogramSpan, lat.Above(5*time.Millisecond), lat.Count()))
	}
	if *target == "" {
		rep.Pressed = pressed.Load()
		rep.LostDTMF = max(0, rep.Pressed-int64(rep.Approved))
		if rep.Pressed < int64(rep.Approved) {
			// The phone reports a call's keys when the call ends at its
			// side: calls it had not finished are not in its count.
			rep.Notes = append(rep.Notes, fmt.Sprintf("the test phone reported %d calls' keys, fewer than the %d approved: it had not finished the others", rep.Pressed, rep.Approved))
		}
	}
	cpu := cpuAfter - cpuBefore
	rep.CPUCores = cpu.Seconds() / wall.Seconds()
	if rep.Placed > 0 {
		rep.CPUPerCall = float64(cpu.Microseconds()) / 1000 / float64(rep.Placed)
	}
	if rep.PeakActive > 0 {
		rep.KiBPerCall = (float64(peakMem) - float64(memBefore)) / 1024 / float64(rep.PeakActive)
		rep.RSSKiBPerCall = float64(peakRSS-rssBefore) / 1024 / float64(rep.PeakActive)
		rep.GoroutinesCall = float64(peakGoroutines-goroutinesBefore) / float64(rep.PeakActive)
	}
	rep.Seconds = wall.Seconds()
	if *asJSON {
		return printJSON(stdout, rep)
	}
	printSIPReport(stdout, rep)
	return nil
}

// latenessHistogramSpan is how far media.LatenessHistogram resolves;
// its quantiles past that are its maximum.
const latenessHistogramSpan = 50 * time.Millisecond

// heapAndStacks is the heap in use plus goroutine stacks (runtime/metrics).
func heapAndStacks() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	var n uint64
	for _, x := range s {
		if x.Value.Kind() == metrics.KindUint64 {
			n += x.Value.Uint64()
		}
	}
	return n
}

// openFDs counts this process's open file descriptors.
func openFDs() int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(fds)
}

// startBenchPhone runs `verigate phone` (bin) as its own process, so the
// memory and CPU measured are the gateway side's alone, and counts the
// keys it reports pressing. stop ends it.
func startBenchPhone(ctx context.Context, bin, addr, ports string, after time.Duration, pressed *atomic.Int64) (stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, bin, "phone", "--listen", addr, "--press", "#",
		"--after", after.String(), "--ring", "0s", "--rtp-ports", ports)
	cmd.Stderr = io.Discard
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start the test phone: %w", err)
	}
	ready := make(chan struct{})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(out)
		once := false
		for sc.Scan() {
			line := sc.Text()
			if !once && strings.HasPrefix(line, "phone listening") {
				once = true
				close(ready)
			}
			if strings.Contains(line, `pressed "#"`) {
				pressed.Add(1)
			}
		}
	}()
	stop = func() {
		cancel()
		_ = cmd.Wait()
		<-scanned
	}
	select {
	case <-ready:
		return stop, nil
	case <-scanned:
		stop()
		return nil, errors.New("the test phone ended before listening (is its address in use?)")
	case <-time.After(20 * time.Second):
		stop()
		return nil, errors.New("the test phone did not start")
	}
}

func printSIPReport(w io.Writer, r sipReport) {
	fmt.Fprintf(w, "bench sip: %d approve-mode calls to %s, %.0f placed per second\n", r.Calls, r.Target, r.Rate)
	fmt.Fprintf(w, "calls: %d placed, %d answered, %d approved, %d failed; peak %d active\n", r.Placed, r.Answered, r.Approved, r.Failed, r.PeakActive)
	fmt.Fprintf(w, "setup: %.1f calls/s; INVITE to answer p50 %.1f ms, p99 %.1f ms\n", r.SetupPerSec, r.SetupP50, r.SetupP99)
	fmt.Fprintf(w, "RTP send lateness: p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d packets\n", r.JitterP50, r.JitterP99, r.JitterMax, r.Packets)
	fmt.Fprintf(w, "DTMF to approval (approval − answer − hold): p50 %.1f ms, p99 %.1f ms\n", r.DTMFToApprovP50, r.DTMFToApprovP99)
	if r.Pressed >= 0 {
		fmt.Fprintf(w, "DTMF: %d pressed, %d lost\n", r.Pressed, r.LostDTMF)
	}
	fmt.Fprintf(w, "CPU: %.2f ms per call, %.2f cores over %.1fs\n", r.CPUPerCall, r.CPUCores, r.Seconds)
	fmt.Fprintf(w, "memory per active call: %.1f KiB heap and stacks, %.1f KiB RSS; %.1f goroutines per call\n", r.KiBPerCall, r.RSSKiBPerCall, r.GoroutinesCall)
	fmt.Fprintf(w, "peak: %d file descriptors (limit %d), %d RTP ports\n", r.PeakFDs, r.FDLimit, r.PeakRTPPorts)
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}
