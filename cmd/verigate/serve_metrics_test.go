package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"github.com/verigate/verigate/callback"
	"github.com/verigate/verigate/config"
	"github.com/verigate/verigate/internal/callbacktest"
	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/internal/testbuf"
	"github.com/verigate/verigate/internal/twiliotest"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/sip/media"
	"github.com/verigate/verigate/twilio"
	"github.com/verigate/verigate/verify"
)

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels string // as written between the braces
	value  float64
}

// scrape reads g's /metrics.
func scrape(t *testing.T, g *gateway) []sample {
	t.Helper()
	rec := httptest.NewRecorder()
	g.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	var out []sample
	sc := bufio.NewScanner(rec.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		s := sample{name: line[:sp], value: v}
		if i := strings.IndexByte(s.name, '{'); i >= 0 {
			s.name, s.labels = s.name[:i], s.name[i+1:len(s.name)-1]
		}
		out = append(out, s)
	}
	return out
}

// sum adds the samples named name whose labels contain every one of want
// (`key="value"` each).
func sum(samples []sample, name string, want ...string) (total float64, found bool) {
	for _, s := range samples {
		if s.name != name {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(s.labels, w)
		}
		if ok {
			total, found = total+s.value, true
		}
	}
	return total, found
}

// moved is a series the end-to-end run must have moved: its samples' sum
// is above 0.
type moved struct {
	name   string
	labels []string
}

// metricsPhones are the test phones of TestMetricsMoveEndToEnd, one trunk
// each, and the country whose calls a routing rule sends there (the
// default trunk, "phone", takes DE).
var metricsPhones = []struct {
	trunk, country, prefix string // prefix: a mobile range's first digits
	digits                 int    // random digits after prefix: any make a valid number
	cfg                    siptest.PhoneConfig
	status                 string // what the phone makes of its verification
}{
	// Presses #; every 25th RTP packet it sends is lost on the way; it is
	// also the registrar the gateway registers at, and answers the OPTIONS
	// keep-alive.
	{"phone", "DE", "+49151", 8, siptest.PhoneConfig{Press: "#", LoseEvery: 25, Registrar: true}, "approved"},
	// Reports fraud, 0 then #, by SIP INFO (docs/SIP.md: 0# denies).
	{"fraud", "AT", "+43664", 7, siptest.PhoneConfig{Press: "0#", DTMF: media.DTMFInfo}, "denied"},
	// Presses # as a tone in its audio.
	{"inband", "ES", "+346", 8, siptest.PhoneConfig{Press: "#", DTMF: media.DTMFInband}, "approved"},
	{"busy", "CH", "+4179", 7, siptest.PhoneConfig{Refuse: 486}, "failed"},
	{"decline", "FR", "+3361", 7, siptest.PhoneConfig{Refuse: 603}, "failed"},
	// Rings past the gateway's ring timeout: CANCELled, no_answer.
	{"noanswer", "NL", "+3161", 7, siptest.PhoneConfig{Ring: time.Hour}, "failed"},
	{"broken", "BE", "+32470", 6, siptest.PhoneConfig{Refuse: 500}, "failed"},
}

// TestMetricsMoveEndToEnd runs the gateway as `serve --dev --config` does
// with SIP trunks to test phones (console SMS; Twilio configured against
// the fake, for its webhooks) on Redis with callbacks, and sees every
// series of docs/METRICS.md's lifecycle, SIP, RTP, DTMF, trunk, Redis,
// webhook and callback tables move on /metrics: an SMS approved by its
// code, calls approved by # (RFC 4733 with packets lost, and in-band), one
// denied by 0# (SIP INFO), calls busy (486), declined (603), unanswered
// within sip.ring_timeout and failed (500), a send limit hit, an SMS
// canceled whose callback receiver answers 500 (until the end: the queue's
// depth is sampled while the notice waits), a forged Twilio webhook.
// Redis errors are TestMetricsRedisErrors', on a second gateway. An SMS
// nobody reads expires through the gateway's expiry sweep.
// Finally it checks that every metric the dashboard and the alert rules in
// deploy/ query is one the gateway serves.
func TestMetricsMoveEndToEnd(t *testing.T) {
	recv := callbacktest.NewReceiver(t, callbackSecret)
	// A receiver whose endpoint fails until the series have moved: each
	// attempt is a failure (http_5xx), and its notice waits in the queue
	// (the depth is sampled every 5 s) between retries.
	failing := callbacktest.NewReceiver(t, callbackSecret)
	failing.Reply(func(*http.Request) (int, http.Header) { return http.StatusInternalServerError, nil })
	cfg := config.Default()
	cfg.Secret = "a-test-secret-long-enough-for-the-hasher"
	cfg.APIKeys = "acme:a-key-of-sixteen-chars"
	cfg.SMS.Provider = "console"
	// A private Redis: the failing receiver's notice waits in its queue
	// (no other test's gateway may claim it), and the unapproved SMS count
	// towards no SMS-pumping block a shared Redis would keep across runs.
	rs := redistest.StartServer(t)
	cfg.Redis.URL = rs.URL()
	allow := true
	// Retries of the failing receiver's notice go on for over a minute,
	// at most 2 s apart.
	cfg.Callbacks = callback.Config{Secret: callbackSecret, AllowPrivateNetworks: &allow, Backoff: 50 * time.Millisecond, MaxBackoff: 2 * time.Second,
		MaxAttempts: 40, PollInterval: 50 * time.Millisecond}
	// The RADIUS front end of deploy/examples, on a free port, so that its
	// series are served too.
	example, err := config.Load(filepath.Join("..", "..", "deploy", "examples", "radius.yaml"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.RADIUS, cfg.Directory = example.RADIUS, example.Directory
	cfg.RADIUS.Listen = "127.0.0.1:0"
	cfg.Directory.Static.File = filepath.Join("..", "..", "deploy", "examples", "radius-people.csv")
	// Twilio, against the fake: SMS stay with the console and calls with
	// the trunks, but its webhooks are served, and refuse forgeries.
	const twilioSID, twilioToken = "AC00000000000000000000000000000001", "0123456789abcdef0123456789abcdef"
	fake := twiliotest.New(twiliotest.Config{AccountSID: twilioSID, AuthToken: twilioToken})
	t.Cleanup(fake.Close)
	cfg.PublicURL = "http://verigate.test"
	cfg.Twilio.AccountSID, cfg.Twilio.AuthToken, cfg.Twilio.From, cfg.Twilio.BaseURL = twilioSID, twilioToken, "+15005550006", fake.URL

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	addMetricsPhones(t, &cfg, logger)

	console := &testbuf.Buffer{}
	g, err := buildGateway(context.Background(), cfg, true, console, logger)
	if err != nil {
		t.Fatalf("buildGateway: %v", err)
	}
	defer g.Close()

	// The calls first: they take the longest. Each ends as its phone
	// makes it end.
	calls := map[string]string{} // verification id → the status it must reach
	for _, p := range metricsPhones {
		v := apiCall(t, g, http.MethodPost, "/v1/verifications", `{"to":"`+randomNumber(t, p.prefix, p.digits)+`","channel":"call"}`)
		calls[v["id"].(string)] = p.status
	}

	// SMS, approved by its code, with a callback.
	v := apiCall(t, g, http.MethodPost, "/v1/verifications", `{"to":"`+randomNumber(t, "+4915123", 6)+`","channel":"sms","callback_url":"`+recv.URL()+`"}`)
	id := v["id"].(string)
	code := waitFor(t, console, regexp.MustCompile(`body=Your Verigate verification code is (\d{6})\.`))
	// The console provider reports no delivery: report one as Twilio's
	// status callback would, through the Service's Reporter.
	if err := g.service.Report(context.Background(), id, verify.Event{Type: verify.EventDelivered, Channel: verify.ChannelSMS, Provider: "console"}); err != nil {
		t.Fatal(err)
	}
	if got := apiCall(t, g, http.MethodPost, "/v1/verifications/"+id+"/check", `{"code":"`+code+`"}`); got["status"] != "approved" {
		t.Fatalf("check: %v", got)
	}
	// An SMS canceled, whose callback receiver answers 500: the notice of
	// its end fails and is retried.
	v = apiCall(t, g, http.MethodPost, "/v1/verifications", `{"to":"`+randomNumber(t, "+4915126", 6)+`","channel":"sms","callback_url":"`+failing.URL()+`"}`)
	if got := apiCall(t, g, http.MethodPost, "/v1/verifications/"+v["id"].(string)+"/cancel", ""); got["status"] != "canceled" {
		t.Fatalf("cancel: %v", got)
	}

	hitSMSLimit(t, g)
	forgeTwilioWebhook(t, g, id)

	waitStatuses(t, g, calls)

	// An SMS nobody checks or reads: its lifetime ends (moved back in
	// Redis, as the shortest lifetime is a minute), and the gateway's
	// expiry sweep marks it expired and counts it.
	v = apiCall(t, g, http.MethodPost, "/v1/verifications", `{"to":"+491762612345","channel":"sms"}`)
	endLifetime(t, rs.Client(t), v["id"].(string))

	want := []moved{
		{"verigate_build_info", nil},
		{"verigate_ready", nil},
		{"verigate_verification_sends_total", []string{`channel="sms"`, `country="DE"`, `send="first"`}},
		{"verigate_verification_sends_total", []string{`channel="sms"`, `send="resend"`}},
		{"verigate_verification_sends_total", []string{`channel="call"`, `provider="sip"`, `country="DE"`, `send="first"`}},
		{"verigate_verifications_approved_total", []string{`method="sms_code"`, `country="DE"`}},
		// Conversion divides these by the first sends above, by channel
		// and by country.
		{"verigate_verifications_approved_total", []string{`method="voice_key"`, `channel="call"`, `country="DE"`}},
		{"verigate_verifications_approved_total", []string{`method="voice_key"`, `country="ES"`}},
		{"verigate_verification_sends_total", []string{`channel="call"`, `country="AT"`}},
		{"verigate_verifications_ended_total", []string{`status="approved"`}},
		{"verigate_verifications_ended_total", []string{`status="expired"`, `channel="sms"`}},
		{"verigate_verifications_ended_total", []string{`status="canceled"`, `channel="sms"`}},
		{"verigate_verifications_ended_total", []string{`status="denied"`, `channel="call"`, `country="AT"`}},
		{"verigate_verifications_ended_total", []string{`status="failed"`, `channel="call"`, `country="CH"`}},
		{"verigate_verifications_ended_total", []string{`status="failed"`, `country="FR"`}},
		{"verigate_verifications_ended_total", []string{`status="failed"`, `country="NL"`}},
		{"verigate_verifications_ended_total", []string{`status="failed"`, `country="BE"`}},
		{"verigate_delivery_reports_total", []string{`status="delivered"`}},
		{"verigate_delivery_reports_total", []string{`status="busy"`, `provider="sip"`, `country="CH"`}},
		{"verigate_delivery_reports_total", []string{`status="rejected"`, `country="FR"`}},
		{"verigate_delivery_reports_total", []string{`status="no_answer"`, `country="NL"`}},
		{"verigate_delivery_reports_total", []string{`status="failed"`, `country="BE"`}},
		{"verigate_limit_hits_total", []string{`channel="sms"`, `policy="number_sms"`}},
		{"verigate_sip_calls_total", []string{`outcome="answered"`, `trunk="phone"`}},
		{"verigate_sip_calls_total", []string{`outcome="answered"`, `trunk="fraud"`}},
		{"verigate_sip_calls_total", []string{`outcome="busy"`, `trunk="busy"`}},
		{"verigate_sip_calls_total", []string{`outcome="rejected"`, `trunk="decline"`}},
		{"verigate_sip_calls_total", []string{`outcome="no_answer"`, `trunk="noanswer"`}},
		{"verigate_sip_calls_total", []string{`outcome="failed"`, `trunk="broken"`}},
		{"verigate_sip_call_setup_seconds_count", nil},
		{"verigate_sip_trunk_up", []string{`trunk="phone"`}},
		{"verigate_sip_trunk_registered", []string{`trunk="phone"`}},
		{"verigate_rtp_packets_total", []string{`kind="sent"`}},
		{"verigate_rtp_packets_total", []string{`kind="received"`}},
		{"verigate_rtp_packets_total", []string{`kind="lost"`}},
		{"verigate_rtp_send_lateness_seconds_count", nil},
		{"verigate_dtmf_keys_total", []string{`source="rfc4733"`}},
		{"verigate_dtmf_keys_total", []string{`source="info"`}},
		{"verigate_dtmf_keys_total", []string{`source="inband"`}},
		{"verigate_redis_command_duration_seconds_count", nil},
		{"verigate_callback_deliveries_total", []string{`result="delivered"`}},
		{"verigate_callback_failures_total", []string{`reason="http_5xx"`}},
		{"verigate_callback_queue_depth", []string{`queue="redis"`}},
		{"verigate_twilio_webhook_signature_failures_total", []string{`reason="invalid"`}},
		{"verigate_http_requests_total", nil},
		{"verigate_verifications_started_total", []string{`channel="call"`, `outcome="created"`}},
		{"verigate_verifications_started_total", []string{`channel="sms"`, `outcome="resent"`}},
	}
	// The media counters are added when the call is over (after its
	// goodbye), the callback when delivered, the queue's depth every 5 s:
	// wait for them.
	var samples []sample
	var missing []string
	for deadline := time.Now().Add(30 * time.Second); ; {
		samples, missing = scrape(t, g), nil
		for _, w := range want {
			if n, _ := sum(samples, w.name, w.labels...); n <= 0 {
				missing = append(missing, w.name+"{"+strings.Join(w.labels, ",")+"}")
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Fatalf("series that did not move: %v", missing)
	}
	for _, name := range []string{"verigate_sip_active_calls", "verigate_callback_queue_depth"} {
		if _, ok := sum(samples, name); !ok {
			t.Errorf("gauge %s not served", name)
		}
	}
	if n, _ := sum(samples, "verigate_sip_active_calls"); n != 0 {
		t.Errorf("%v calls still active after the call ended", n)
	}

	served := map[string]bool{}
	for _, s := range samples {
		served[s.name] = true
	}
	checkDeployQueries(t, served, g.registered)
}

// endLifetime makes verification id, pending in c's Redis under the
// default prefix, expire a second ago: its expires field and its entry in
// the expiry sweep's index (the key layout of docs/REDIS.md).
func endLifetime(t *testing.T, c *redis.Client, id string) {
	t.Helper()
	ctx := context.Background()
	tag, err := c.Get(ctx, "vg:id:"+id).Result()
	if err != nil {
		t.Fatalf("id key of %s: %v", id, err)
	}
	at := time.Now().Add(-time.Second).UnixMicro()
	if err := c.HSet(ctx, "vg:{"+tag+"}:v:"+id, "expires", at).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.ZAdd(ctx, "vg:exp", redis.Z{Score: float64(at), Member: id}).Err(); err != nil {
		t.Fatal(err)
	}
}

// addMetricsPhones starts the test phones of metricsPhones and adds a
// trunk for each to cfg, with the routing rule that sends its country's
// calls there; the first is the default trunk, kept registered and probed
// by OPTIONS. Calls not answered within 3 s are CANCELled.
func addMetricsPhones(t *testing.T, cfg *config.Config, logger *slog.Logger) {
	t.Helper()
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.SIP.RingTimeout = 3 * time.Second
	for i, p := range metricsPhones {
		pc := p.cfg
		pc.Listen, pc.Logger = "127.0.0.1:0", logger
		phone, err := siptest.NewPhone(pc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { phone.Close() })
		trunk := sip.Trunk{Name: p.trunk, Address: phone.Addr().String(), Transport: "udp"}
		if i == 0 {
			trunk.KeepAlive, trunk.Register = time.Second, true
			cfg.SIP.DefaultTrunk = p.trunk
		} else {
			cfg.Route.Rules = append(cfg.Route.Rules, route.Rule{
				Name:   "to-" + p.trunk,
				Match:  route.Match{Countries: []string{p.country}},
				Action: route.Action{Channel: verify.ChannelCall, Provider: sip.Provider, Trunk: p.trunk, Fallback: route.FallbackNone},
			})
		}
		cfg.SIP.Trunks = append(cfg.SIP.Trunks, trunk)
	}
}

// hitSMSLimit sends SMS to one number until a limit refuses (the default
// policies allow 5 per number in 10 minutes).
func hitSMSLimit(t *testing.T, g *gateway) {
	t.Helper()
	to := randomNumber(t, "+4915125", 6)
	for range 10 {
		req := httptest.NewRequest(http.MethodPost, "/v1/verifications", strings.NewReader(`{"to":"`+to+`","channel":"sms"}`))
		req.Header.Set("Authorization", "Bearer a-key-of-sixteen-chars")
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		g.handler.ServeHTTP(rec, req)
		if rec.Code == http.StatusTooManyRequests {
			return
		}
	}
	t.Fatal("no limit refused the SMS")
}

// forgeTwilioWebhook posts a forged Twilio status callback about the
// verification id: a signature of the right length that Twilio's auth
// token did not make. It must be refused and change nothing.
func forgeTwilioWebhook(t *testing.T, g *gateway, id string) {
	t.Helper()
	forged := httptest.NewRequest(http.MethodPost, twilio.PathPrefix+twilio.RouteSMSStatus+"?v="+id,
		strings.NewReader("MessageSid=SM00000000000000000000000000000001&MessageStatus=undelivered"))
	forged.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	forged.Header.Set(twilio.SignatureHeader, base64.StdEncoding.EncodeToString(make([]byte, sha1.Size)))
	rec := httptest.NewRecorder()
	g.handler.ServeHTTP(rec, forged)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("forged webhook: %d %s", rec.Code, rec.Body)
	}
}

// waitStatuses waits until each verification (by id) has the status
// want gives it.
func waitStatuses(t *testing.T, g *gateway, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for id, status := range want {
		for {
			got := apiCall(t, g, http.MethodGet, "/v1/verifications/"+id, "")
			if got["status"] == status {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("verification %s: status %v, want %s; events %v", id, got["status"], status, got["events"])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// randomNumber is prefix followed by digits random digits: a number no
// earlier run used (a fraud report blocks its number for a day, in Redis).
func randomNumber(t *testing.T, prefix string, digits int) string {
	t.Helper()
	b := []byte(prefix)
	for range digits {
		d, err := rand.Int(rand.Reader, big.NewInt(10))
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, byte('0'+d.Int64()))
	}
	return string(b)
}

// TestMetricsRedisErrors sees verigate_redis_errors_total move on a
// gateway whose Redis does not answer (a closed port): the readiness
// check that /metrics' verigate_ready runs fails to dial, and the gateway
// reports itself not ready. The gateway of TestMetricsMoveEndToEnd has a
// healthy Redis, whose failures cannot be caused cheaply; the hook's
// counting of failed commands and pipelines is TestRedisHook's (metrics).
func TestMetricsRedisErrors(t *testing.T) {
	cfg := config.Default()
	cfg.Secret = "a-test-secret-long-enough-for-the-hasher"
	cfg.APIKeys = "acme:a-key-of-sixteen-chars"
	cfg.SMS.Provider = "console"
	cfg.Redis.URL = "redis://" + freeAddr(t) + "/0" // nothing listens there
	g, err := buildGateway(context.Background(), cfg, false, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("buildGateway: %v", err)
	}
	defer g.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		samples := scrape(t, g)
		errs, _ := sum(samples, "verigate_redis_errors_total")
		ready, _ := sum(samples, "verigate_ready")
		if errs > 0 && ready == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("with Redis down: verigate_redis_errors_total %v, verigate_ready %v", errs, ready)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkDeployQueries fails t when the Grafana dashboard or the alert rules
// in deploy/ query a verigate_ metric that the gateway does not serve:
// served (the names scraped after the run), described by a collector the
// gateway registered (a vector no event has created a series of yet), or
// by a front end the run did not configure (Twilio's webhooks, the
// trunks' gauges).
func checkDeployQueries(t *testing.T, served map[string]bool, registered []prometheus.Collector) {
	t.Helper()
	known := maps.Clone(served)
	wh, err := twilio.NewWebhooks(twilio.Config{
		AccountSID: "AC0123456789abcdef0123456789abcdef", AuthToken: "token", From: "+15005550006",
		PublicURL: "https://verify.example.com", Secret: "a server secret of enough length",
	}, verifytest.ReporterFunc(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append(registered, wh, trunkGauge(metricTrunkUp, "h", "t", nil), trunkGauge(metricTrunkRegistered, "h", "t", nil)) {
		for _, n := range described(c) {
			known[n] = true
		}
	}
	// A histogram is served as _bucket, _sum and _count.
	for n := range maps.Clone(known) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			known[strings.TrimSuffix(n, suffix)] = true
		}
	}

	dash, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "verigate-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var board struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(dash, &board); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	var exprs []string
	for _, p := range board.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	if len(exprs) < 10 {
		t.Fatalf("dashboard has %d queries", len(exprs))
	}
	rules, err := os.ReadFile(filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(rules, &file); err != nil {
		t.Fatalf("alerts: %v", err)
	}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	name := regexp.MustCompile(`\bverigate_[a-z0-9_]+`)
	for _, e := range exprs {
		for _, n := range name.FindAllString(e, -1) {
			if !known[n] {
				t.Errorf("deploy/ queries %s, which the gateway does not serve (in %q)", n, e)
			}
		}
	}
}

// described lists the metric names c describes.
func described(c prometheus.Collector) []string {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	var out []string
	for d := range ch {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}
