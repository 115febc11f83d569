// Package soak runs the verigate binary (`verigate serve`) under a mixed,
// bounded load on loopback for a while (VERIGATE_SOAK_DURATION, 60 s by
// default; `make soak` runs it longer): valid starts by SMS and call
// through a fake Twilio, checks with the code the fake delivered and with
// wrong ones, cancels, starts to a number blocked after a fraud report,
// malformed, oversized and wrongly typed bodies and bad or foreign keys on
// the REST API, forged and replayed Twilio webhooks, and a restart of its
// Redis in the middle. Then it checks what must hold whatever the load:
// no number got more messages or calls than its limits allow over the
// run, nor any while blocked; nothing was sent while Redis was down and
// every request that needed it failed closed with 503; no verification
// was approved but with the code delivered to it or the '#' its phone
// pressed, nor after it was canceled; the gateway never exited; and its
// goroutines and live heap came back near where they were after a
// warm-up.
package soak

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/peertest"
	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/internal/twiliotest"
	"github.com/verigate/verigate/ivr"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/verify"
)

// EnvDuration sets how long the load runs (a Go duration); EnvRace, when
// set, builds the gateway with the race detector (slower); EnvLog names a
// file that receives the gateway's whole output.
const (
	EnvDuration     = "VERIGATE_SOAK_DURATION"
	EnvRace         = "VERIGATE_SOAK_RACE"
	EnvLog          = "VERIGATE_SOAK_LOG"
	defaultDuration = 60 * time.Second
)

// limit is n per window.
type limit struct {
	n      int
	window time.Duration
}

// The gateway's limits in the soak: small windows, so that every number
// meets its send limit and the failed-check lock many times over.
var (
	smsLimit      = limit{4, 10 * time.Second} // SMS per number
	callLimit     = limit{3, 10 * time.Second} // calls per number
	checkLock     = limit{5, 10 * time.Second} // failed checks per number
	checkLockLong = limit{12, time.Minute}     // the long window of the same lock
)

const (
	redisRestarts = 1 // each one forgets the limits' state (no persistence)
	workers       = 8
	pauseBetween  = 10 * time.Millisecond // per worker, ±50 %: a few hundred requests a second

	// After the load, the gateway may hold a few goroutines more than
	// after the warm-up without leaking: up to two idle connections to the
	// fake Twilio (net/http's default), the connection /metrics is read
	// on, go-redis reconnecting after the restart. A leak of one goroutine
	// per thousand requests is already 25 or more in the default run.
	goroutineSlack = 20
	// What the gateway keeps in memory is bounded (parsed-number cache,
	// metric series, go-redis's connection buffers: 64 KiB a connection,
	// 10 per core; the verifications themselves live in Redis), so its
	// live heap comes back to the warm-up's give or take a few MiB. A leak
	// of 1 KiB a request shows in the default run (25,000+ requests), one
	// of 100 bytes in a 10-minute `make soak`.
	heapFactor = 1.5
	heapSlack  = 8 << 20
)

func TestSoak(t *testing.T) {
	duration := defaultDuration
	if v := os.Getenv(EnvDuration); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second {
			t.Fatalf("%s=%q: want a duration of at least 10s such as 60s or 10m", EnvDuration, v)
		}
		duration = d
	}
	warm := min(max(duration/10, 3*time.Second), 30*time.Second)
	outage := min(max(duration/12, 2*time.Second), 30*time.Second)
	if deadline, ok := t.Deadline(); ok && time.Until(deadline) < warm+duration+5*time.Minute {
		t.Fatalf("the soak runs %s and needs a few minutes more; go test -timeout leaves %s", warm+duration, time.Until(deadline).Round(time.Second))
	}

	redis := redistest.StartServer(t) // fails the test if redis-server is missing
	bin := buildGateway(t, os.Getenv(EnvRace) != "")
	fake := twiliotest.New(twiliotest.Config{AccountSID: twilioSID, AuthToken: twilioToken})
	t.Cleanup(fake.Close)

	var logCopy io.Writer
	if path := os.Getenv(EnvLog); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatalf("%s: %v", EnvLog, err)
		}
		t.Cleanup(func() { f.Close() })
		logCopy = f
	}
	addr := net.JoinHostPort(peertest.Loopback, strconv.Itoa(peertest.FreePort(t)))
	gw := startGateway(t, bin, addr, logCopy, []string{
		"VERIGATE_HTTP_ADDR=" + addr,
		"VERIGATE_PUBLIC_URL=http://" + addr,
		"VERIGATE_API_KEYS=" + tenant + ":" + apiKey + "," + otherTenant + ":" + otherKey,
		"VERIGATE_SECRET=soak-secret-0123456789abcdef",
		"VERIGATE_REDIS_URL=" + redis.URL(),
		"VERIGATE_TWILIO_ACCOUNT_SID=" + twilioSID,
		"VERIGATE_TWILIO_AUTH_TOKEN=" + twilioToken,
		"VERIGATE_TWILIO_FROM=+15005550006",
		"VERIGATE_TWILIO_BASE_URL=" + fake.URL,
		"VERIGATE_LOG_LEVEL=info",
	}, "--config", writeConfig(t))

	s := newSoak(t, gw, fake)
	hold := make(chan struct{}) // silent phones ring until the load ends
	for _, n := range s.pools[poolPress] {
		fake.SetPhone(n.e164, twiliotest.Phone{Keys: "#"})
	}
	for _, n := range s.pools[poolSilent] {
		fake.SetPhone(n.e164, twiliotest.Phone{Hold: hold})
	}
	fake.SetPhone(s.pools[poolFraud][0].e164, twiliotest.Phone{Keys: "0#"})

	begin := time.Now()
	s.began = begin
	t.Logf("warm-up %s, load %s with %d workers, Redis down for %s in the middle", warm, duration, workers, outage)
	s.armFraud(t)
	s.run(warm, nil)
	baseline := s.settle(t, "baseline", nil)

	s.run(duration, func() { s.restartRedis(t, redis, outage) })
	loadEnd := time.Now()
	close(hold) // the held calls go on: silent, then they end
	fake.Wait()

	alive := gw.alive()
	s.checkSends(t)
	s.checkApprovals(t)
	s.checkFailedChecks(t, loadEnd.Sub(begin))
	after := s.settle(t, "after", &baseline)
	s.report(t, baseline, after)

	if !alive || !gw.alive() {
		t.Errorf("the gateway exited during the soak: %v\n%s", gw.exitErr(), gw.log.tail(100))
	}
	if _, _, alarms := gw.log.counts(); len(alarms) > 0 {
		t.Errorf("the gateway's output shows a panic or a race:\n%s", strings.Join(alarms, "\n"))
	}
	for _, ch := range []string{"sms", "call"} {
		if s.limited(ch) == 0 {
			t.Errorf("no %s start was refused by a limit: the soak did not reach its limits", ch)
		}
	}
	s.led.mu.Lock()
	defer s.led.mu.Unlock()
	// What the assertions hold over must have happened, or they hold over nothing.
	for what, n := range map[string]int{
		"checks answered approved":             s.approvalsByCheck,
		"'#' pressed by a phone":               s.pressed,
		"forged '#' for a silent phone's call": s.led.total("forged_gather_pound"),
		"replayed status callbacks":            s.led.total("replay_status"),
		"replayed TwiML requests":              s.led.total("replay_twiml"),
		"requests while Redis was down":        int(s.downRequests),
		"starts to a number blocked for fraud": s.led.total("start_blocked"),
	} {
		if n == 0 {
			t.Errorf("no %s in the run", what)
		}
	}
	if n := len(s.led.unexpected); n > 0 {
		t.Errorf("unexpected answers (%v):\n%s", s.led.unexpected, strings.Join(s.led.unexpectedSeen, "\n"))
	}
	if len(s.led.violations) > 0 {
		t.Errorf("%d violations:\n%s", len(s.led.violations), strings.Join(s.led.violations, "\n"))
	}
	if after.goroutines > baseline.goroutines+goroutineSlack {
		t.Errorf("goroutines %d after the load, %d after the warm-up: more than %d more", after.goroutines, baseline.goroutines, goroutineSlack)
	}
	if after.heapLive > baseline.heapLive*heapFactor+heapSlack {
		t.Errorf("live heap %.1f MiB after the load, %.1f MiB after the warm-up: more than %.1f times and %d MiB", mib(after.heapLive), mib(baseline.heapLive), heapFactor, heapSlack>>20)
	}
	if t.Failed() {
		t.Logf("gateway output, last lines:\n%s", gw.log.tail(60))
	}
}

// writeConfig writes the gateway's limits as a YAML file (the list of
// policies replaces the defaults whole).
func writeConfig(t *testing.T) string {
	t.Helper()
	yaml := fmt.Sprintf(`verify:
  fraud_block: 24h # longer than any run: only the Redis restart lifts it
limits:
  policies:
    - {name: number_sms, scope: number, channel: sms, limit: %d, window: %s}
    - {name: number_call, scope: number, channel: call, limit: %d, window: %s}
  failed_checks: %d
  failed_check_window: %s
  failed_checks_long: %d
  failed_check_window_long: %s
`, smsLimit.n, smsLimit.window, callLimit.n, callLimit.window, checkLock.n, checkLock.window, checkLockLong.n, checkLockLong.window)
	path := filepath.Join(t.TempDir(), "verigate.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newSoak(t *testing.T, gw *gateway, fake *twiliotest.Server) *soak {
	t.Helper()
	cat, err := prompts.Load(prompts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	words := map[string]byte{}
	for d := byte('0'); d <= '9'; d++ {
		words[cat.Text("en", prompts.Digit(d))] = d
	}
	// A forged gather carries the state a real one would: only the
	// signature may keep it out.
	st, _ := ivr.Start(ivr.Script{Mode: verify.CallModeApprove, MaxPrompts: 3, KeyTimeout: 10 * time.Second})
	s := &soak{
		gw: gw, fake: fake, led: newLedger(),
		client: &http.Client{
			Timeout:   60 * time.Second, // a loaded machine is slow; a hang is still a failure
			Transport: &http.Transport{MaxIdleConnsPerHost: 2 * workers, MaxConnsPerHost: 4 * workers},
		},
		pools: map[pool][]number{},
		sent:  map[pool]int{}, maxSent: map[pool]int{}, final: map[pool]int{}, approved: map[pool]int{},
		digitWords: words, codeLength: verify.DefaultCodeLength,
		gatherState: st.Encode(),
	}
	for _, p := range []struct {
		pool  pool
		count int
		first int
	}{{poolSMS, 8, 1}, {poolCode, 3, 101}, {poolPress, 3, 201}, {poolSilent, 3, 301}, {poolFraud, 1, 401}, {poolProbe, 1, 9901}} {
		for i := range p.count {
			s.pools[p.pool] = append(s.pools[p.pool], number{fmt.Sprintf("+491512345%04d", p.first+i), p.pool})
		}
	}
	return s
}

// run runs the workers for d; during, if set, runs meanwhile on the test
// goroutine from the middle of d (it may fail the test, but not stop it:
// the workers must end first).
func (s *soak) run(d time.Duration, during func()) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for i := range workers {
		seed := uint64(time.Now().UnixNano()) + uint64(i)
		wg.Go(func() { s.worker(ctx, seed, pauseBetween) })
	}
	if during != nil {
		waitCtx(ctx, d/2)
		during()
	}
	<-ctx.Done()
	wg.Wait()
}

// sends is how many messages and calls the fake Twilio was asked for.
func (s *soak) sends() int { return len(s.fake.Messages()) + len(s.fake.Calls()) }

// restartRedis stops Redis under the load, checks that nothing is sent
// and every request that needs Redis answers 503 while it is down, then
// restarts it (empty) and waits until the gateway serves again by itself.
func (s *soak) restartRedis(t *testing.T, redis *redistest.Server, outage time.Duration) {
	t.Helper()
	s.fraud.set(false) // Redis holds the block, and forgets it
	redis.Stop()
	s.ph.advance(genDown)
	if !s.ph.drain(genUp, 2*time.Minute) {
		t.Error("requests begun before Redis stopped did not end within 2 minutes")
	}
	before := s.sends()
	time.Sleep(outage)
	s.do("readyz_redis_down", s.api("GET", "/readyz", "", "", nil), only(503))
	s.ph.advance(genComeback)
	if !s.ph.drain(genDown, 2*time.Minute) {
		t.Error("requests begun while Redis was down did not end within 2 minutes")
	}
	if after := s.sends(); after != before {
		s.led.violate("%d messages or calls sent while Redis was down", after-before)
	}
	s.downRequests = s.ph.requests[genDown].Load()

	redis.Restart()
	probe := s.pools[poolProbe][0]
	for deadline := time.Now().Add(2 * time.Minute); ; s.probes++ {
		a := s.startNumber(probe)
		if a.status != 503 && a.status != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the gateway did not serve again within 2 minutes of Redis coming back: %d %s", a.status, a.body)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	// /readyz pings on its own connections, which go-redis may redial up
	// to a second later than the store's: it too comes back by itself.
	for deadline := time.Now().Add(2 * time.Minute); ; {
		a := s.do("readyz_redis_back", s.api("GET", "/readyz", "", "", nil), only(200, 503))
		if a.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("/readyz did not answer 200 within 2 minutes of Redis coming back: %d %s", a.status, a.body)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.armFraud(t)
	s.ph.advance(genUpAgain)
}

// armFraud calls the fraud number, whose phone answers 0#, waits until
// the call has ended and the verification shows the fraud report, and
// then lets the workers try the blocked number.
func (s *soak) armFraud(t *testing.T) {
	t.Helper()
	n := s.pools[poolFraud][0]
	begin := time.Now()
	a := s.do("start_fraud", s.api("POST", "/v1/verifications", apiKey, "application/json", jsonBody(startBody(n))), only(201))
	s.span(begin)
	if a.status != 201 {
		t.Errorf("call to the fraud number: %d %s", a.status, a.body)
		return
	}
	id := a.str("id")
	s.led.started(id, n)
	calls := s.fake.CallsTo(n.e164)
	if len(calls) == 0 || !s.fake.WaitCall(calls[len(calls)-1].Sid) {
		t.Errorf("the fake placed no call to the fraud number")
		return
	}
	g := s.do("get_fraud", s.api("GET", "/v1/verifications/"+id, apiKey, "", nil), only(200))
	if g.str("status") != "denied" || g.str("reason") != "fraud_reported" {
		t.Errorf("the fraud number's verification: %d %s, want denied for fraud_reported", g.status, g.body)
		return
	}
	s.fraud.set(true)
}

// checkSends: per number and channel, no more messages or calls than the
// limits let through over the span in which starts were sent.
func (s *soak) checkSends(t *testing.T) {
	t.Helper()
	span := s.startSpan()
	byNumber := map[string]map[string]int{} // number → channel → sends
	add := func(to, ch string) {
		if byNumber[to] == nil {
			byNumber[to] = map[string]int{}
		}
		byNumber[to][ch]++
	}
	for _, m := range s.fake.Messages() {
		add(m.To, "sms")
	}
	for _, c := range s.fake.Calls() {
		add(c.To, "call")
	}
	known := map[string]number{}
	for _, ns := range s.pools {
		for _, n := range ns {
			known[n.e164] = n
		}
	}
	bound := map[string]int{
		"sms":  smsLimit.n * windows(span, smsLimit.window, redisRestarts),
		"call": callLimit.n * windows(span, callLimit.window, redisRestarts),
	}
	s.sendBound = bound
	// Only armFraud calls the fraud number: the block holds every other start.
	if got, arms := byNumber[s.pools[poolFraud][0].e164], s.fraud.arms; got["call"] != arms || got["sms"] != 0 {
		s.led.violate("the fraud number got %v sends; only the %d calls that reported fraud may reach it", got, arms)
	}
	s.sendSpan = span
	for to, chs := range byNumber {
		n, ok := known[to]
		if !ok {
			s.led.violate("the fake Twilio got %v for %s, a number the soak never used", chs, to)
			continue
		}
		for ch, got := range chs {
			if got > bound[ch] {
				s.led.violate("%s (%s) got %d %s sends in %s; the limits allow %d", to, n.pool, got, ch, span.Round(time.Millisecond), bound[ch])
			}
			if ch != n.pool.channel() {
				s.led.violate("%s (%s) got %d %s sends, a channel it was never started on", to, n.pool, got, ch)
			}
			s.sent[n.pool] += got
			s.maxSent[n.pool] = max(s.maxSent[n.pool], got)
		}
	}
}

// checkApprovals: every approval came from a check with a code the fake
// delivered to that number, or from a '#' the number's phone pressed.
func (s *soak) checkApprovals(t *testing.T) {
	t.Helper()
	delivered := map[string]map[string]bool{}
	codes := func(n number) map[string]bool {
		if _, ok := delivered[n.e164]; !ok {
			delivered[n.e164], _ = s.delivered(n)
		}
		return delivered[n.e164]
	}
	s.led.mu.Lock()
	approvals := append([]approval(nil), s.led.approvals...)
	checks := append([]*checkTry(nil), s.led.checks...)
	var ids []verification
	for _, v := range s.led.verifications {
		ids = append(ids, *v)
	}
	s.led.mu.Unlock()

	approvedByCheck := map[string]bool{}
	for _, a := range approvals {
		approvedByCheck[a.id] = true
		if s.led.wasCanceled(a.id) {
			s.led.violate("%s approved verification %s of %s after a cancel answered canceled", a.kind, a.id, a.num.e164)
		}
		if !codes(a.num)[a.code] {
			s.led.violate("%s: verification %s of %s approved with a code the fake never delivered there", a.kind, a.id, a.num.e164)
		}
		if v, ok := s.led.verification(a.id); ok && v.num != a.num {
			s.led.violate("%s for %s approved verification %s of %s", a.kind, a.num.e164, a.id, v.num.e164)
		}
	}
	// A check whose answer never came may have approved: only with a code
	// that was delivered.
	unanswered := map[string]bool{}
	for _, c := range checks {
		if c.status == 0 && codes(c.num)[c.code] {
			unanswered[c.num.e164] = true
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].id < ids[j].id })
	for _, v := range ids {
		a := s.do("final_get", s.api("GET", "/v1/verifications/"+v.id, apiKey, "", nil), expGet)
		if a.status == 404 {
			s.lost++ // started before Redis restarted empty
			continue
		}
		s.final[v.num.pool]++
		if a.str("status") == "approved" {
			s.led.sawApproved(v.id)
		}
	}
	s.led.mu.Lock()
	seen := make([]string, 0, len(s.led.seenApproved))
	for id := range s.led.seenApproved {
		seen = append(seen, id)
	}
	s.led.mu.Unlock()
	sort.Strings(seen)
	for _, id := range seen {
		v, ok := s.led.verification(id)
		if !ok {
			continue
		}
		s.approved[v.num.pool]++
		if s.led.wasCanceled(id) {
			s.led.violate("verification %s of %s seen approved after a cancel answered canceled", id, v.num.e164)
		}
		switch v.num.pool {
		case poolPress:
		case poolSilent:
			s.led.violate("verification %s of silent phone %s approved", v.id, v.num.e164)
		default:
			if !approvedByCheck[v.id] && !unanswered[v.num.e164] {
				s.led.violate("verification %s of %s (%s) approved without a check with its code", v.id, v.num.e164, v.num.pool)
			}
		}
	}
	for _, c := range s.fake.Calls() {
		for _, g := range c.Gathers {
			if g.Posted && g.Digits == "#" {
				s.pressed++
			}
		}
	}
	s.approvalsByCheck = len(approvals)
}

// checkFailedChecks: per number, no more failed checks than the lock
// lets through over the run.
func (s *soak) checkFailedChecks(t *testing.T, run time.Duration) {
	t.Helper()
	bound := min(checkLock.n*windows(run, checkLock.window, redisRestarts), checkLockLong.n*windows(run, checkLockLong.window, redisRestarts))
	s.failBound = bound
	s.led.mu.Lock()
	defer s.led.mu.Unlock()
	for to, n := range s.led.failedChecks {
		s.maxFailed = max(s.maxFailed, n)
		if n > bound {
			s.led.violations = append(s.led.violations, fmt.Sprintf("%s: %d failed checks counted in %s; the lock allows %d", to, n, run.Round(time.Millisecond), bound))
		}
	}
}

// limited is how many starts on channel ch a limit refused.
func (s *soak) limited(ch string) int {
	s.led.mu.Lock()
	defer s.led.mu.Unlock()
	n := 0
	for kind, m := range s.led.requests {
		for _, p := range []pool{poolSMS, poolCode, poolPress, poolSilent, poolProbe} {
			if p.channel() == ch && kind == "start_"+p.String() {
				n += m[429]
			}
		}
	}
	return n
}

// snapshot is the gateway's goroutines and heap at one moment.
type snapshot struct {
	goroutines int
	heapLive   float64 // go_gc_heap_live_bytes: marked live by the last collection
	heapInuse  float64 // go_memstats_heap_inuse_bytes: with garbage not yet collected
	rss        float64
	cpu        float64 // process_cpu_seconds_total
	gcs        int
	fillers    int
}

func mib(b float64) float64 { return b / (1 << 20) }

// settle lets the gateway come to rest and measures it. Connections kept
// alive by this process (its client, and the fake Twilio's) each hold a
// goroutine in the gateway, so they are closed first. The live heap is
// what the last collection marked, so the gateway must collect after the
// load: at GOGC 400 that can take a while, so settle sends it requests
// that allocate and keep nothing (a 60 KB body refused as a malformed
// code) until it has collected twice. With want set (after the load), it
// reads the goroutines until they are back within the slack or 30 s pass.
func (s *soak) settle(t *testing.T, name string, want *snapshot) snapshot {
	t.Helper()
	read := func() map[string]float64 {
		m, err := s.gw.metrics(s.client)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return m
	}
	filler := `{"to":"+4915123450001","code":"` + strings.Repeat("1", 60_000) + `"}`
	gc0 := read()["go_gc_duration_seconds_count"]
	var snap snapshot
	for snap.fillers = 0; ; snap.fillers++ {
		if snap.fillers%10 == 0 && read()["go_gc_duration_seconds_count"] >= gc0+2 {
			break
		}
		if snap.fillers > 20_000 {
			t.Fatalf("%s: the gateway did not collect garbage in 20,000 requests of 60 KB", name)
		}
		s.do("settle_filler", s.api("POST", "/v1/verifications/check", apiKey, "application/json", strings.NewReader(filler)), only(400))
	}
	closeIdle := func() {
		s.client.CloseIdleConnections()
		if tr, ok := http.DefaultTransport.(*http.Transport); ok {
			tr.CloseIdleConnections() // the fake Twilio's webhooks
		}
	}
	snap.goroutines = math.MaxInt
	for i := 0; ; i++ {
		closeIdle()
		time.Sleep(100 * time.Millisecond)
		m := read()
		g := int(m["go_goroutines"])
		if g < snap.goroutines {
			snap.goroutines = g
		}
		snap.heapLive, snap.heapInuse = m["go_gc_heap_live_bytes"], m["go_memstats_heap_inuse_bytes"]
		snap.rss, snap.gcs = m["process_resident_memory_bytes"], int(m["go_gc_duration_seconds_count"])
		snap.cpu = m["process_cpu_seconds_total"]
		if snap.heapLive == 0 {
			t.Fatalf("%s: /metrics has no go_gc_heap_live_bytes", name)
		}
		if want == nil && i >= 4 {
			break
		}
		if want != nil && (snap.goroutines <= want.goroutines+goroutineSlack || i >= 300) {
			break
		}
	}
	closeIdle()
	return snap
}

func (s *soak) report(t *testing.T, base, after snapshot) {
	t.Helper()
	var b strings.Builder
	b.WriteString(s.led.report())
	fmt.Fprintf(&b, "starts sent within %s; limits allow per number %d SMS and %d calls in it (%d per %s, %d per %s, %d Redis restart)\n",
		s.sendSpan.Round(time.Millisecond), s.sendBound["sms"], s.sendBound["call"], smsLimit.n, smsLimit.window, callLimit.n, callLimit.window, redisRestarts)
	for _, p := range []pool{poolSMS, poolCode, poolPress, poolSilent, poolFraud, poolProbe} {
		fmt.Fprintf(&b, "  %-12s %2d numbers: %4d sends, at most %3d to one number; %4d verifications stored at the end, %4d seen approved\n",
			p, len(s.pools[p]), s.sent[p], s.maxSent[p], s.final[p], s.approved[p])
	}
	fmt.Fprintf(&b, "approvals: %d checks answered approved, all with the code delivered; %d calls where the phone pressed '#'; %d verifications forgotten by the Redis restart\n",
		s.approvalsByCheck, s.pressed, s.lost)
	fmt.Fprintf(&b, "failed checks: at most %d for one number; the lock allows %d over the run\n", s.maxFailed, s.failBound)
	fmt.Fprintf(&b, "Redis outage: %d requests while it was down, %d starts to see it back; 503 while Redis was up: %d\n",
		s.downRequests, s.probes+1, s.led.unavailableUp)
	fmt.Fprintf(&b, "idempotent pairs judged: %d, replayed: %d\n", s.led.idemPairs, s.led.idemReplayed)
	lines, levels, _ := s.gw.log.counts()
	fmt.Fprintf(&b, "gateway log: %d lines %v; fake Twilio: %d messages, %d calls, %d callbacks, %d errors\n",
		lines, levels, len(s.fake.Messages()), len(s.fake.Calls()), len(s.fake.Callbacks()), len(s.fake.Errors()))
	fmt.Fprintf(&b, "gateway after warm-up: %d goroutines, live heap %.1f MiB (in use %.1f, RSS %.1f; %d GCs, %d fillers)\n",
		base.goroutines, mib(base.heapLive), mib(base.heapInuse), mib(base.rss), base.gcs, base.fillers)
	fmt.Fprintf(&b, "gateway after the load: %d goroutines, live heap %.1f MiB (in use %.1f, RSS %.1f; %d GCs, %d fillers)\n",
		after.goroutines, mib(after.heapLive), mib(after.heapInuse), mib(after.rss), after.gcs, after.fillers)
	fmt.Fprintf(&b, "gateway CPU from the warm-up's end to the load's: %.1f s\n", after.cpu-base.cpu)
	if errs := s.fake.Errors(); len(errs) > 0 {
		fmt.Fprintf(&b, "fake Twilio errors, first ones: %v\n", errs[:min(len(errs), 5)])
	}
	t.Log("\n" + b.String())
}
