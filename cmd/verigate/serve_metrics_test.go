package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
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
	"github.com/verigate/verigate/internal/testbuf"
	"github.com/verigate/verigate/internal/verifytest"
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

// TestMetricsMoveEndToEnd runs the gateway as `serve --dev` does (console
// SMS, the loopback test phone that presses #) on Redis with callbacks,
// approves an SMS verification by its code and a voice one by #, and then
// sees every series of the lifecycle, SIP, RTP, DTMF, Redis and callbacks
// move on /metrics. Finally it checks that every metric the dashboard and
// the alert rules in deploy/ query is one the gateway serves.
func TestMetricsMoveEndToEnd(t *testing.T) {
	recv := callbacktest.NewReceiver(t, callbackSecret)
	cfg := config.Default()
	cfg.Secret = "a-test-secret-long-enough-for-the-hasher"
	cfg.APIKeys = "acme:a-key-of-sixteen-chars"
	cfg.SMS.Provider = "console"
	cfg.Redis.URL = redistest.URL(t)
	allow := true
	cfg.Callbacks = callback.Config{Secret: callbackSecret, AllowPrivateNetworks: &allow, Backoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, PollInterval: 50 * time.Millisecond}
	// The RADIUS front end of deploy/examples, on a free port, so that its
	// series are served too.
	example, err := config.Load(filepath.Join("..", "..", "deploy", "examples", "radius.yaml"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.RADIUS, cfg.Directory = example.RADIUS, example.Directory
	cfg.RADIUS.Listen = "127.0.0.1:0"
	cfg.Directory.Static.File = filepath.Join("..", "..", "deploy", "examples", "radius-people.csv")
	console := &testbuf.Buffer{}
	g, err := buildGateway(context.Background(), cfg, true, console, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("buildGateway: %v", err)
	}
	defer g.Close()

	// SMS, approved by its code, with a callback.
	smsTo := "+4915123" + fmt.Sprintf("%06d", time.Now().UnixNano()%1e6)
	v := apiCall(t, g, http.MethodPost, "/v1/verifications", `{"to":"`+smsTo+`","channel":"sms","callback_url":"`+recv.URL()+`"}`)
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

	// Voice, approved by # on the loopback phone.
	callTo := "+4915124" + fmt.Sprintf("%06d", time.Now().UnixNano()%1e6)
	v = apiCall(t, g, http.MethodPost, "/v1/verifications", `{"to":"`+callTo+`","channel":"call"}`)
	id = v["id"].(string)
	deadline := time.Now().Add(30 * time.Second)
	for apiCall(t, g, http.MethodGet, "/v1/verifications/"+id, "")["status"] != "approved" {
		if time.Now().After(deadline) {
			t.Fatal("the call did not approve")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A limit hit: SMS to one number until a limit refuses (the default
	// policies allow 5 per number in 10 minutes).
	limitTo := "+4915125" + fmt.Sprintf("%06d", time.Now().UnixNano()%1e6)
	refused := false
	for range 10 {
		req := httptest.NewRequest(http.MethodPost, "/v1/verifications", strings.NewReader(`{"to":"`+limitTo+`","channel":"sms"}`))
		req.Header.Set("Authorization", "Bearer a-key-of-sixteen-chars")
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		g.handler.ServeHTTP(rec, req)
		if rec.Code == http.StatusTooManyRequests {
			refused = true
			break
		}
	}
	if !refused {
		t.Fatal("no limit refused the SMS")
	}

	// An SMS nobody checks or reads: its lifetime ends (moved back in
	// Redis, as the shortest lifetime is a minute), and the gateway's
	// expiry sweep marks it expired and counts it. (Its own prefix: an SMS
	// never approved weighs on the prefix's SMS-pumping ratio, which the
	// shared test Redis keeps across runs.)
	expireTo := "+4917626" + fmt.Sprintf("%06d", time.Now().UnixNano()%1e6)
	v = apiCall(t, g, http.MethodPost, "/v1/verifications", `{"to":"`+expireTo+`","channel":"sms"}`)
	endLifetime(t, v["id"].(string))

	want := []moved{
		{"verigate_build_info", nil},
		{"verigate_ready", nil},
		{"verigate_verification_sends_total", []string{`channel="sms"`, `country="DE"`, `send="first"`}},
		{"verigate_verification_sends_total", []string{`channel="sms"`, `send="resend"`}},
		{"verigate_verification_sends_total", []string{`channel="call"`, `provider="sip"`}},
		{"verigate_verifications_approved_total", []string{`method="sms_code"`, `country="DE"`}},
		{"verigate_verifications_approved_total", []string{`method="voice_key"`, `channel="call"`}},
		{"verigate_verifications_ended_total", []string{`status="approved"`}},
		{"verigate_verifications_ended_total", []string{`status="expired"`, `channel="sms"`}},
		{"verigate_delivery_reports_total", []string{`status="delivered"`}},
		{"verigate_limit_hits_total", []string{`channel="sms"`}},
		{"verigate_sip_calls_total", []string{`outcome="answered"`}},
		{"verigate_sip_call_setup_seconds_count", nil},
		{"verigate_rtp_packets_total", []string{`kind="sent"`}},
		{"verigate_rtp_packets_total", []string{`kind="received"`}},
		{"verigate_rtp_send_lateness_seconds_count", nil},
		{"verigate_dtmf_keys_total", nil},
		{"verigate_redis_command_duration_seconds_count", nil},
		{"verigate_callback_deliveries_total", []string{`result="delivered"`}},
		{"verigate_http_requests_total", nil},
	}
	// The media counters are added when the call is over, the callback
	// when delivered: wait for them.
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

// endLifetime makes verification id, pending in the shared test Redis
// under the default prefix, expire a second ago: its expires field and its
// entry in the expiry sweep's index (the key layout of docs/REDIS.md).
func endLifetime(t *testing.T, id string) {
	t.Helper()
	c := redistest.Client(t)
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
