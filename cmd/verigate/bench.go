package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verigate/verigate/internal/loadtest"
)

// runBench dispatches `verigate bench api` and `verigate bench sip`.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, "Usage: verigate bench api|sip [flags]\n\n"+
			"  api  start+check load on a running gateway's REST API (open or closed loop)\n"+
			"  sip  concurrent approve-mode calls placed by the gateway's SIP stack\n\n"+
			"Run 'verigate bench api --help' or 'verigate bench sip --help' for the flags.")
		return nil
	}
	switch args[0] {
	case "api":
		return runBenchAPI(ctx, args[1:], stdout, stderr)
	case "sip":
		return runBenchSIP(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("bench: unknown benchmark %q (api or sip)", args[0])
}

// benchMix is how many of each operation a sequence holds, relative to
// its start: start=2,check=1 checks every other start.
type benchMix struct{ start, check, get int }

func parseMix(s string) (benchMix, error) {
	m := benchMix{}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 || n > 100 || seen[k] {
			return m, fmt.Errorf("--mix %q: want start=N,check=N,get=N with 0 ≤ N ≤ 100", s)
		}
		seen[k] = true
		switch k {
		case "start":
			m.start = n
		case "check":
			m.check = n
		case "get":
			m.get = n
		default:
			return m, fmt.Errorf("--mix %q: unknown operation %q", s, k)
		}
	}
	if m.start < 1 {
		return m, fmt.Errorf("--mix %q: start must be at least 1 (checks and gets need a verification)", s)
	}
	if m.check > m.start || m.get > m.start {
		return m, fmt.Errorf("--mix %q: at most one check and one get per start", s)
	}
	return m, nil
}

// does reports whether sequence i runs an operation of weight w (per
// start weight s): spread evenly, w of every s sequences.
func does(i int64, w, s int) bool {
	return (i+1)*int64(w)/int64(s) > i*int64(w)/int64(s)
}

// opStats collects one operation's latencies and outcomes; each worker
// has its own, merged at the end, so recording takes no lock.
type opStats struct {
	lat    []time.Duration
	errors map[string]int // "<http status> <API error code>", or "transport"
}

func (o *opStats) add(d time.Duration, outcome string) {
	if outcome == "" {
		o.lat = append(o.lat, d)
		return
	}
	if o.errors == nil {
		o.errors = map[string]int{}
	}
	o.errors[outcome]++
}

// workerStats is one worker's record.
type workerStats struct {
	ops       map[string]*opStats // start, check, get, pair
	sequences int64
}

func newWorkerStats() *workerStats {
	return &workerStats{ops: map[string]*opStats{"start": {}, "check": {}, "get": {}, "pair": {}}}
}

// apiBench is one run of bench api.
type apiBench struct {
	lc      *loadtest.Client
	mix     benchMix
	numbers *numberSpread
	sink    *smsSink // nil: checks send a wrong code
	seq     atomic.Int64
	// done and failed count the sequences ended, and those with an
	// operation failed, for the progress lines.
	done, failed atomic.Int64
}

// sequence runs one start and its check and get, and records them in w;
// latency of the start and the pair counts from at (the scheduled time).
func (b *apiBench) sequence(w *workerStats, at time.Time) {
	i := b.seq.Add(1) - 1
	failed := true
	defer func() {
		b.done.Add(1)
		if failed {
			b.failed.Add(1)
		}
	}()
	cn := b.lc.Conn()
	defer b.lc.Release(cn)
	to := b.numbers.next()
	status, body, err := cn.Post("/v1/verifications", `{"to":"`+to+`","channel":"sms"}`)
	w.sequences++
	out := outcome(status, body, err, 201)
	w.ops["start"].add(time.Since(at), out)
	if out != "" {
		w.ops["pair"].add(0, "start failed")
		return
	}
	id, _ := loadtest.StringField(body, "id")
	pairOK := true
	if does(i, b.mix.check, b.mix.start) {
		code := "000000" // wrong on purpose: without a sink the code is unknown
		if b.sink != nil {
			c, ok := b.sink.code(to, 5*time.Second)
			if !ok {
				w.ops["check"].add(0, "no SMS reached the sink")
				w.ops["pair"].add(0, "check failed")
				return
			}
			code = c
		}
		t := time.Now()
		status, body, err := cn.Post("/v1/verifications/"+id+"/check", `{"code":"`+code+`"}`)
		out := outcome(status, body, err, 200)
		if out == "" && b.sink != nil {
			if st, _ := loadtest.StringField(body, "status"); st != "approved" {
				out = "200 status " + st
			}
		}
		w.ops["check"].add(time.Since(t), out)
		pairOK = out == ""
	}
	if does(i, b.mix.get, b.mix.start) {
		t := time.Now()
		status, body, err := cn.Get("/v1/verifications/" + id)
		out := outcome(status, body, err, 200)
		w.ops["get"].add(time.Since(t), out)
		pairOK = pairOK && out == ""
	}
	failed = !pairOK
	if pairOK {
		w.ops["pair"].add(time.Since(at), "")
	} else {
		w.ops["pair"].add(0, "an operation failed")
	}
	if b.sink != nil {
		b.sink.forget(to)
	}
}

// outcome is "" for the expected status, else what went wrong: the HTTP
// status and the API error's code, or "transport".
func outcome(status int, body []byte, err error, want int) string {
	if err != nil {
		return "transport"
	}
	if status == want {
		return ""
	}
	code := "?"
	if i := bytes.Index(body, []byte(`"error":`)); i >= 0 {
		if c, ok := loadtest.StringField(bytes.TrimSpace(body[i+len(`"error":`):]), "code"); ok {
			code = c
		}
	}
	return strconv.Itoa(status) + " " + code
}

// numberSpread hands out numbers under a prefix, each once per run
// (starting at a random offset, so back-to-back runs use other numbers),
// so per-number limits do not decide the outcome.
type numberSpread struct {
	prefix string
	width  int
	mod    int64
	n      atomic.Int64
}

func newNumberSpread(prefix string, length int) (*numberSpread, error) {
	if !strings.HasPrefix(prefix, "+") || len(prefix) < 3 {
		return nil, fmt.Errorf("--to-prefix %q: want +<country code><digits>", prefix)
	}
	for _, c := range prefix[1:] {
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("--to-prefix %q: digits only after +", prefix)
		}
	}
	width := length - (len(prefix) - 1)
	if width < 4 || length > 15 {
		return nil, fmt.Errorf("--to-digits %d with prefix %q leaves %d digits to spread over (want at least 4, at most 15 digits in all)", length, prefix, width)
	}
	mod := int64(1)
	for range width {
		mod *= 10
	}
	s := &numberSpread{prefix: prefix, width: width, mod: mod}
	s.n.Store(rand.Int64N(mod))
	return s, nil
}

func (s *numberSpread) next() string {
	n := s.n.Add(1) % s.mod
	d := strconv.FormatInt(n, 10)
	return s.prefix + strings.Repeat("0", s.width-len(d)) + d
}

// apiReport is what bench api prints (as text, or JSON with --json).
type apiReport struct {
	Mode        string            `json:"mode"` // "open" or "closed"
	Rate        float64           `json:"rate,omitempty"`
	Concurrency int               `json:"concurrency"`
	Duration    float64           `json:"duration_s"` // measured, until the last answer
	Mix         string            `json:"mix"`
	RealCodes   bool              `json:"real_codes"`
	Sequences   int64             `json:"sequences"`
	PairsPerSec float64           `json:"sequences_per_s"`
	Ops         map[string]opLine `json:"ops"`
	Gateway     *procLine         `json:"gateway,omitempty"`
	Redis       *procLine         `json:"redis,omitempty"`
	LoadGen     procLine          `json:"loadgen"`
	Notes       []string          `json:"notes,omitempty"`
}

type opLine struct {
	OK     int            `json:"ok"`
	Errors map[string]int `json:"errors,omitempty"`
	P50    float64        `json:"p50_ms"`
	P90    float64        `json:"p90_ms"`
	P99    float64        `json:"p99_ms"`
	Max    float64        `json:"max_ms"`
}

type procLine struct {
	Pid        int     `json:"pid"`
	CPUPerPair float64 `json:"cpu_us_per_sequence"`
	CPUShare   float64 `json:"cpu_cores"` // CPU time over wall time
	RSSMiB     float64 `json:"rss_mib,omitempty"`
}

func runBenchAPI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench api", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rawURL := fs.String("url", "http://127.0.0.1:8080", "the gateway's REST API (a loopback IP: the tool measures this machine)")
	key := fs.String("key", "", "an API key (default $"+apiKeyEnv+")")
	duration := fs.Duration("duration", 30*time.Second, "how long to send load")
	rate := fs.Float64("rate", 0, "open loop: sequences (a start and its check/get) per second, each scheduled at its time")
	concurrency := fs.Int("concurrency", 0, "closed loop: this many sequences in flight, each worker sending the next when the last ends (default 64 without --rate)")
	conns := fs.Int("conns", 64, "open loop: connections (requests in flight at most; a sequence that waits for one counts the wait)")
	mixFlag := fs.String("mix", "start=1,check=1,get=0", "operations per sequence, relative to its start")
	prefix := fs.String("to-prefix", "+49151", "numbers called: this prefix, then digits counting up from a random point")
	digits := fs.Int("to-digits", 13, "digits in each number, country code included")
	sinkAddr := fs.String("sink", "", "run a Twilio-shaped SMS sink here (host:port) and check with the codes it catches; point the gateway's VERIGATE_TWILIO_BASE_URL at it")
	sinkTLS := fs.String("sink-tls", "", "serve the sink over TLS with the certificate and key in this PEM file, made (self-signed) when it does not exist; start the gateway with SSL_CERT_FILE naming it and an https:// VERIGATE_TWILIO_BASE_URL")
	gwPid := fs.Int("gateway-pid", 0, "the gateway's process, for its CPU and memory (found from the URL's listening port when 0)")
	redisPid := fs.Int("redis-pid", 0, "Redis's process, for its CPU per sequence (optional)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	progress := addProgressFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *key == "" {
		*key = os.Getenv(apiKeyEnv)
	}
	if *key == "" {
		return errors.New("bench api: --key or " + apiKeyEnv + " is required")
	}
	if *rate > 0 && *concurrency > 0 {
		return errors.New("bench api: --rate (open loop) and --concurrency (closed loop) exclude each other")
	}
	if *rate < 0 || *concurrency < 0 || *conns < 1 || *duration <= 0 {
		return errors.New("bench api: --rate, --concurrency, --conns and --duration must be positive")
	}
	mix, err := parseMix(*mixFlag)
	if err != nil {
		return err
	}
	numbers, err := newNumberSpread(*prefix, *digits)
	if err != nil {
		return err
	}
	u, err := url.Parse(*rawURL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("bench api: --url %q: want http://<loopback IP>:<port>", *rawURL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	open := *rate > 0
	inflight := *concurrency
	if open {
		inflight = *conns
	} else if inflight == 0 {
		inflight = 64
	}
	lc, err := loadtest.NewClient(host, inflight, "Authorization: Bearer "+*key)
	if err != nil {
		return fmt.Errorf("bench api: %w", err)
	}
	defer lc.Close()

	b := &apiBench{lc: lc, mix: mix, numbers: numbers}
	rep := apiReport{Mode: "closed", Concurrency: inflight, Mix: *mixFlag}
	if open {
		rep.Mode, rep.Rate = "open", *rate
	}
	if *sinkTLS != "" && *sinkAddr == "" {
		return errors.New("bench api: --sink-tls needs --sink")
	}
	if *sinkAddr != "" {
		sink, err := startSMSSink(ctx, *sinkAddr, *sinkTLS)
		if err != nil {
			return fmt.Errorf("bench api: %w", err)
		}
		defer sink.Close()
		b.sink = sink
		rep.RealCodes = true
	} else if mix.check > 0 {
		rep.Notes = append(rep.Notes, "no --sink: checks send a wrong code (they measure the check path; expect 200 answers with the verification still pending, or the failed-check limit's errors)")
	}

	pid := *gwPid
	if pid == 0 {
		if p, err := listenerPid(u.Port()); err == nil {
			pid = p
		} else {
			rep.Notes = append(rep.Notes, "gateway CPU not measured: "+err.Error()+" (give --gateway-pid)")
		}
	}
	procs := []int{os.Getpid()}
	if pid > 0 {
		procs = append(procs, pid)
	}
	if *redisPid > 0 {
		procs = append(procs, *redisPid)
	}
	cpuBefore := make([]time.Duration, len(procs))
	for i, p := range procs {
		if cpuBefore[i], err = loadtest.ProcessCPU(p); err != nil {
			return fmt.Errorf("bench api: %w", err)
		}
	}

	workers := make([]*workerStats, inflight)
	for i := range workers {
		workers[i] = newWorkerStats()
	}
	runCtx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	start := time.Now()
	stopProgress := progress.start(stderr, "bench api", func(elapsed time.Duration) string {
		done := b.done.Load()
		return fmt.Sprintf("%d sequences (%.1f/s), %d failed", done, perSecond(done, elapsed), b.failed.Load())
	})
	defer stopProgress()
	var wg sync.WaitGroup
	if open {
		sched := make(chan time.Time, inflight)
		for _, w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for at := range sched {
					b.sequence(w, at)
				}
			}()
		}
		interval := time.Duration(float64(time.Second) / *rate)
	schedule:
		for i := 0; ; i++ {
			at := start.Add(time.Duration(i) * interval)
			if d := time.Until(at); d > 0 {
				select {
				case <-runCtx.Done():
					break schedule
				case <-time.After(d):
				}
			}
			if runCtx.Err() != nil {
				break
			}
			// Blocks while every connection is busy: the sequences wait,
			// late, and their latency from at shows it.
			select {
			case sched <- at:
			case <-runCtx.Done():
				break schedule
			}
		}
		close(sched)
	} else {
		for _, w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for runCtx.Err() == nil {
					b.sequence(w, time.Now())
				}
			}()
		}
	}
	wg.Wait()
	stopProgress()
	wall := time.Since(start)
	if ctx.Err() != nil {
		return ctx.Err()
	}

	merged := map[string]*opStats{}
	for _, w := range workers {
		rep.Sequences += w.sequences
		for name, o := range w.ops {
			m := merged[name]
			if m == nil {
				m = &opStats{errors: map[string]int{}}
				merged[name] = m
			}
			m.lat = append(m.lat, o.lat...)
			for k, v := range o.errors {
				m.errors[k] += v
			}
		}
	}
	if open {
		if offered := int64(*rate * duration.Seconds()); rep.Sequences < offered*99/100 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("the gateway fell behind: %d of the %d sequences due were sent before the end (every connection busy); the rest are not counted", rep.Sequences, offered))
		}
	}
	rep.Duration = wall.Seconds()
	rep.PairsPerSec = float64(rep.Sequences) / wall.Seconds()
	rep.Ops = map[string]opLine{}
	for name, m := range merged {
		if len(m.lat) == 0 && len(m.errors) == 0 {
			continue
		}
		slices.Sort(m.lat)
		l := opLine{OK: len(m.lat), P50: quantileMs(m.lat, 0.5), P90: quantileMs(m.lat, 0.9), P99: quantileMs(m.lat, 0.99), Max: quantileMs(m.lat, 1)}
		if len(m.errors) > 0 {
			l.Errors = m.errors
		}
		rep.Ops[name] = l
	}
	for i, p := range procs {
		after, err := loadtest.ProcessCPU(p)
		if err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("CPU of pid %d not read at the end: %v", p, err))
			continue
		}
		cpu := after - cpuBefore[i]
		pl := procLine{Pid: p, CPUShare: cpu.Seconds() / wall.Seconds()}
		if rep.Sequences > 0 {
			pl.CPUPerPair = float64(cpu.Microseconds()) / float64(rep.Sequences)
		}
		pl.RSSMiB = float64(rssBytes(p)) / (1 << 20)
		switch {
		case i == 0:
			rep.LoadGen = pl
		case p == pid:
			rep.Gateway = &pl
		default:
			rep.Redis = &pl
		}
	}
	if *asJSON {
		return printJSON(stdout, rep)
	}
	printAPIReport(stdout, rep)
	return nil
}

func quantileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, int(q*float64(len(sorted))))
	return float64(sorted[i].Microseconds()) / 1000
}

func printAPIReport(w io.Writer, r apiReport) {
	if r.Mode == "open" {
		fmt.Fprintf(w, "bench api: open loop, %.0f sequences/s offered, up to %d in flight, mix %s\n", r.Rate, r.Concurrency, r.Mix)
	} else {
		fmt.Fprintf(w, "bench api: closed loop, %d workers, mix %s\n", r.Concurrency, r.Mix)
	}
	if r.RealCodes {
		fmt.Fprintln(w, "checks: the real codes, caught by the SMS sink")
	}
	fmt.Fprintf(w, "sequences: %d in %.1fs: %.1f/s\n", r.Sequences, r.Duration, r.PairsPerSec)
	fmt.Fprintf(w, "%-6s %8s %8s %9s %9s %9s %9s\n", "op", "ok", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms")
	for _, name := range []string{"start", "check", "get", "pair"} {
		l, ok := r.Ops[name]
		if !ok {
			continue
		}
		n := 0
		for _, v := range l.Errors {
			n += v
		}
		fmt.Fprintf(w, "%-6s %8d %8d %9.2f %9.2f %9.2f %9.2f\n", name, l.OK, n, l.P50, l.P90, l.P99, l.Max)
	}
	for _, name := range []string{"start", "check", "get"} {
		l := r.Ops[name]
		keys := make([]string, 0, len(l.Errors))
		for k := range l.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "error %s: %s × %d\n", name, k, l.Errors[k])
		}
	}
	proc := func(name string, p *procLine) {
		if p == nil {
			return
		}
		fmt.Fprintf(w, "%s (pid %d): %.0f µs CPU per sequence, %.2f cores", name, p.Pid, p.CPUPerPair, p.CPUShare)
		if p.RSSMiB > 0 {
			fmt.Fprintf(w, ", RSS %.1f MiB", p.RSSMiB)
		}
		fmt.Fprintln(w)
	}
	proc("gateway", r.Gateway)
	proc("redis", r.Redis)
	proc("load generator", &r.LoadGen)
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}
