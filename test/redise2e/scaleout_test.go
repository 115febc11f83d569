package redise2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/verigate/verigate/callback"
	"github.com/verigate/verigate/internal/callbacktest"
	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/internal/twiliotest"
	"github.com/verigate/verigate/ivr"
)

// The TestScaleOut tests run two gateways on one Redis, as behind a load
// balancer: what one starts, the other serves (docs/OPERATIONS.md,
// "Running several gateways").

// view is a verification as GET /v1/verifications/{id} shows it.
type view struct {
	Status string `json:"status"`
	Events []struct {
		Type string `json:"type"`
	} `json:"events"`
}

func (v view) types() []string {
	var out []string
	for _, e := range v.Events {
		out = append(out, e.Type)
	}
	return out
}

// get reads the verification id on g (query: "" or "?wait=…").
func (g *gateway) get(ctx context.Context, id, query string) (view, error) {
	res, err := g.apiGet(ctx, "/v1/verifications/"+id+query)
	if err != nil {
		return view{}, err
	}
	defer res.Body.Close()
	var v view
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		return v, fmt.Errorf("GET verification: %d %s", res.StatusCode, b)
	}
	return v, json.NewDecoder(res.Body).Decode(&v)
}

// awaitView reads id on g until ok accepts it, failing after a minute.
func (g *gateway) awaitView(id, what string, ok func(view) bool) view {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		v, err := g.get(ctx, id, "")
		if err == nil && ok(v) {
			return v
		}
		if ctx.Err() != nil {
			g.t.Fatalf("verification %s on %s: %s not seen; last %+v %v\n%s", id, g.addr, what, v, err, g.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metrics is g's /metrics text.
func (g *gateway) metrics() string {
	g.t.Helper()
	res, err := client.Get(g.url + "/metrics")
	if err != nil {
		g.t.Fatalf("GET /metrics: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// metricLines are the samples of g's metric name (without HELP and TYPE).
func (g *gateway) metricLines(name string) []string {
	var out []string
	for l := range strings.SplitSeq(g.metrics(), "\n") {
		if strings.HasPrefix(l, name+"{") || strings.HasPrefix(l, name+" ") {
			out = append(out, l)
		}
	}
	return out
}

const (
	scaleSID   = "AC5ca1e0000000000000000000000001"
	scaleToken = "5ca1e0ut0123456789abcdef01234567"
	// scalePublic is the gateways' one public URL, a load balancer's,
	// which serves them under /gw.
	scalePublic = "https://verify.example.test/gw"
)

// twilioEnv configures a gateway for the fake Twilio, both gateways
// alike: one auth token, one public URL (startGateway gives them one
// VERIGATE_SECRET, which seals the call context in the webhook URLs).
func twilioEnv(fake *twiliotest.Server) []string {
	return []string{
		"VERIGATE_SMS_PROVIDER=twilio",
		"VERIGATE_TWILIO_ACCOUNT_SID=" + scaleSID,
		"VERIGATE_TWILIO_AUTH_TOKEN=" + scaleToken,
		"VERIGATE_TWILIO_FROM=+15005550006",
		"VERIGATE_TWILIO_BASE_URL=" + fake.URL,
		"VERIGATE_PUBLIC_URL=" + scalePublic,
	}
}

// TestScaleOutTwilio: gateway a places a Twilio call and sends an SMS;
// every webhook of both (the call's TwiML, its gather with '#', the status
// callbacks) lands on gateway b, as a load balancer may send it. The call
// approves, both gateways show it, the SMS's delivery is recorded, and a
// forged webhook to b changes nothing.
func TestScaleOutTwilio(t *testing.T) {
	fake := twiliotest.New(twiliotest.Config{AccountSID: scaleSID, AuthToken: scaleToken})
	t.Cleanup(fake.Close)
	url := redistest.StartServer(t).URL()
	a, b := startGateway(t, url, twilioEnv(fake)...), startGateway(t, url, twilioEnv(fake)...)
	// Twilio reaches the public URL; the balancer sends it all to b.
	fake.SetWebhookTransport(twiliotest.ProxyTransport(scalePublic, b.url))

	// The SMS: started on a, its status callbacks land on b.
	const smsTo = "+4915112348301"
	r := a.post("/v1/verifications", map[string]string{"to": smsTo, "channel": "sms"})
	smsID := r.str("id")
	if r.status != http.StatusCreated || smsID == "" {
		t.Fatalf("start sms on gateway a: %d %v\n%s", r.status, r.body, a.output())
	}
	delivered := func(v view) bool { return slices.Contains(v.types(), "delivered") }
	v := a.awaitView(smsID, "the delivered event", delivered)
	t.Logf("sms on gateway a: %s %v", v.Status, v.types())
	if cbs := fake.Callbacks(); len(cbs) == 0 || !strings.HasPrefix(cbs[0].URL, scalePublic+"/twilio/status/sms?") {
		t.Fatalf("status callbacks %v, want them sent to the public URL", cbs)
	}

	// The call: a places it; the phone rings until released.
	const callTo = "+4915112348302"
	hold := make(chan struct{})
	fake.SetPhone(callTo, twiliotest.Phone{Keys: "#", Hold: hold})
	r = a.post("/v1/verifications", map[string]string{"to": callTo, "channel": "call", "call_mode": "approve"})
	id := r.str("id")
	if r.status != http.StatusCreated || id == "" {
		t.Fatalf("start call on gateway a: %d %v\n%s", r.status, r.body, a.output())
	}
	calls := fake.CallsTo(callTo)
	if len(calls) != 1 {
		t.Fatalf("the fake placed %d calls to the number, want 1", len(calls))
	}
	call := calls[0]

	// Forged webhooks to b, on the URLs a issued: a call status that would
	// end the call, and the TwiML. Signed with another token, or over b's
	// own address instead of the public URL; or not signed at all.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	voice, err := neturl.Parse(call.URL)
	if err != nil {
		t.Fatal(err)
	}
	// The gather a '#' would post, on the call context a sealed.
	gather := scalePublic + "/twilio/voice/gather?" + neturl.Values{
		"c": {voice.Query().Get("c")}, "s": {ivr.State{Phase: ivr.PhaseAsking, Tries: 1}.Encode()},
	}.Encode()
	pound := urlValues("CallSid", call.Sid, "AccountSid", scaleSID, "Digits", "#", "To", callTo, "From", "+15005550006")
	ended := urlValues("CallSid", call.Sid, "AccountSid", scaleSID, "CallStatus", "no-answer", "To", callTo, "From", "+15005550006")
	behindBalancer := strings.Replace(call.StatusCallback, scalePublic, b.url, 1)
	for _, f := range []struct{ name, url, sig string }{
		{"another token", call.StatusCallback, twiliotest.Signature("another-token-0123456789abcdef", call.StatusCallback, ended)},
		{"signed over b's address", call.StatusCallback, twiliotest.Signature(scaleToken, behindBalancer, ended)},
		{"unsigned", call.StatusCallback, ""},
		{"voice, another token", call.URL, twiliotest.Signature("another-token-0123456789abcdef", call.URL, ended)},
		{"# gathered, another token", gather, twiliotest.Signature("another-token-0123456789abcdef", gather, pound)},
		{"# gathered, signed over b's address", gather, twiliotest.Signature(scaleToken, strings.Replace(gather, scalePublic, b.url, 1), pound)},
	} {
		params := ended
		if f.url == gather {
			params = pound
		}
		status, body, err := fake.Post(ctx, f.url, params, f.sig)
		if err != nil || (status != http.StatusForbidden && status != http.StatusUnauthorized) {
			t.Errorf("forged webhook (%s) to gateway b: %d %q %v, want 401 or 403", f.name, status, body, err)
		}
	}
	// What the real status callbacks of the held call record.
	ringing := map[string]bool{"created": true, "queued": true, "sent": true, "ringing": true}
	for _, g := range []*gateway{a, b} {
		v, err := g.get(ctx, id, "")
		if err != nil || v.Status != "pending" || slices.ContainsFunc(v.types(), func(e string) bool { return !ringing[e] }) {
			t.Fatalf("after forged webhooks, on %s: %+v %v, want pending, with the events of a ringing call only", g.addr, v, err)
		}
	}

	close(hold)
	if !fake.WaitCall(call.Sid) {
		t.Fatal("the call was not placed")
	}
	if errs := fake.Errors(); len(errs) > 0 {
		t.Errorf("fake Twilio: %v", errs)
	}
	got := fake.CallsTo(callTo)[0]
	if n := len(got.Gathers); n == 0 || got.Gathers[n-1].Digits != "#" || !got.Gathers[n-1].Posted {
		t.Errorf("gathers %+v, want the last to post #", got.Gathers)
	}
	for _, req := range append(got.Requests, fake.Callbacks()...) {
		if !strings.HasPrefix(req.URL, scalePublic+"/") || req.Status/100 != 2 {
			t.Errorf("webhook %s %s answered %d", req.Method, req.URL, req.Status)
		}
	}
	// The balancer sent a no webhook: its counts of them are b's.
	hits := func(g *gateway) (n int) {
		for _, l := range g.metricLines("verigate_http_requests_total") {
			if strings.Contains(l, `route="/twilio/`) {
				n++
			}
		}
		return n
	}
	if na, nb := hits(a), hits(b); na != 0 || nb == 0 {
		t.Errorf("webhook routes counted: %d on gateway a, %d on b; want none on a", na, nb)
	}
	for _, g := range []*gateway{a, b} {
		v := g.awaitView(id, "approved", func(v view) bool { return v.Status == "approved" })
		t.Logf("call on %s: %s %v", g.addr, v.Status, v.types())
	}
}

func urlValues(kv ...string) neturl.Values {
	v := neturl.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// TestScaleOutSIP: gateway a calls a SIP phone, which presses # by RFC
// 4733. Both gateways have the same trunk, but only a sends SIP for the
// call; a long-poll on b, open while the phone still rings, is woken by
// a's approval (the Redis changes feed), and a read on b shows it.
func TestScaleOutSIP(t *testing.T) {
	hold := make(chan struct{})
	var mu sync.Mutex
	var incoming []string // Call-IDs the phone was called with
	phone, err := siptest.NewPhone(siptest.PhoneConfig{
		Listen: "127.0.0.1:0", RTPPorts: "32500-32549", Press: "#", Hold: hold,
		Logger: slog.New(slog.DiscardHandler),
		OnEvent: func(e siptest.PhoneEvent) {
			if e.Kind == siptest.PhoneIncoming {
				mu.Lock()
				incoming = append(incoming, e.CallID)
				mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = phone.Close() })
	url := redistest.StartServer(t).URL()
	config := func(name, rtp string) []string {
		cfg := filepath.Join(t.TempDir(), name+".yaml")
		yaml := "sip:\n  listen: 127.0.0.1:0\n  rtp_ports: " + rtp + "\n  trunks:\n    - name: pbx\n      address: " + phone.Addr().String() + "\n"
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{"--config", cfg}
	}
	a := startGatewayWith(t, url, config("a", "32550-32599"))
	b := startGatewayWith(t, url, config("b", "32600-32649"))

	r := a.post("/v1/verifications", map[string]string{"to": "+4915112348311", "channel": "call", "call_mode": "approve"})
	id := r.str("id")
	if r.status != http.StatusCreated || id == "" {
		t.Fatalf("start on gateway a: %d %v\n%s", r.status, r.body, a.output())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	type result struct {
		v   view
		err error
	}
	poll := make(chan result, 1)
	go func() {
		v, err := b.get(ctx, id, "?wait=60s")
		poll <- result{v, err}
	}()
	// The long-poll waits on b while the phone rings: no guess at how
	// long it takes to open.
	for {
		w := b.metricLines("verigate_http_waiting_requests")
		if len(w) == 1 && strings.HasSuffix(w[0], " 1") {
			break
		}
		select {
		case res := <-poll:
			t.Fatalf("long-poll on gateway b answered while the phone rang: %+v %v", res.v, res.err)
		case <-ctx.Done():
			t.Fatalf("no long-poll waiting on gateway b: %v", w)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if v, err := b.get(ctx, id, ""); err != nil || v.Status != "pending" {
		t.Fatalf("on gateway b while the phone rings: %+v %v", v, err)
	}
	close(hold)

	res := <-poll
	if res.err != nil || res.v.Status != "approved" {
		t.Fatalf("long-poll on gateway b: %+v %v, want approved\ngateway a:\n%s", res.v, res.err, a.output())
	}
	t.Logf("long-poll on gateway b woke with %s %v", res.v.Status, res.v.types())
	if v, err := b.get(ctx, id, ""); err != nil || v.Status != "approved" {
		t.Errorf("read on gateway b: %+v %v, want approved", v, err)
	}

	// The call stayed on a: the phone was called once, by a's trunk
	// client; b placed no SIP call (its counts of them are empty).
	mu.Lock()
	n := len(incoming)
	mu.Unlock()
	if n != 1 {
		t.Errorf("the phone was called %d times, want once", n)
	}
	sipCalls := func(g *gateway) (n int) {
		for _, l := range g.metricLines("verigate_sip_calls_total") {
			if !strings.HasSuffix(l, " 0") {
				n++
			}
		}
		return n
	}
	if na, nb := sipCalls(a), sipCalls(b); na == 0 || nb != 0 {
		t.Errorf("verigate_sip_calls_total samples: %d on gateway a, %d on b; want a's only\na: %v\nb: %v", na, nb,
			a.metricLines("verigate_sip_calls_total"), b.metricLines("verigate_sip_calls_total"))
	}
}

const scaleCallbackSecret = "scale-out-callback-secret-0123"

// TestScaleOutDrainedCallbacks: callbacks queued in Redis when gateway a
// drains (SIGTERM) are delivered by gateway b afterwards: every notice
// arrives, none under a second delivery id, and a notice arrives twice
// only when a's attempt at it was cut off by the stop after the IdP had
// it, under its one delivery id (at least once: docs/API.md,
// "Duplicates").
func TestScaleOutDrainedCallbacks(t *testing.T) {
	// The IdP answers slowly: a stops while its workers wait on it.
	t.Run("slow", func(t *testing.T) { drainedCallbacks(t, true) })
	// The IdP is down while a runs: a's attempts fail and are retried.
	t.Run("down", func(t *testing.T) { drainedCallbacks(t, false) })
}

func drainedCallbacks(t *testing.T, slow bool) {
	recv := callbacktest.NewReceiver(t, scaleCallbackSecret)
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(free)
	var inFlight atomic.Int64
	if slow {
		recv.Reply(func(*http.Request) (int, http.Header) {
			inFlight.Add(1)
			<-release
			return http.StatusNoContent, nil
		})
	} else {
		recv.Stop()
	}

	srv := redistest.StartServer(t)
	queue := callback.NewRedisQueue(srv.Client(t), callback.RedisQueueOptions{})
	env := []string{
		"VERIGATE_CALLBACKS_SECRET=" + scaleCallbackSecret,
		"VERIGATE_CALLBACKS_ALLOW_PRIVATE_NETWORKS=true",
		// An attempt waits for a slow IdP far longer than this test
		// takes to stop a.
		"VERIGATE_CALLBACKS_TIMEOUT=60s",
		"VERIGATE_CALLBACKS_LEASE=90s",
		"VERIGATE_CALLBACKS_BACKOFF=100ms",
		"VERIGATE_CALLBACKS_MAX_BACKOFF=500ms",
		"VERIGATE_CALLBACKS_POLL_INTERVAL=100ms",
	}
	a, b := startGateway(t, srv.URL(), env...), startGateway(t, srv.URL(), env...)

	// More notices than the two gateways have workers (4 each), so some
	// wait in the queue while every worker waits on a slow IdP.
	const n = 12
	ids := map[string]bool{}
	for i := range n {
		to := "+49151123484" + strconv.Itoa(10+i)
		r := a.post("/v1/verifications", map[string]string{"to": to, "channel": "sms", "callback_url": recv.URL()})
		id := r.str("id")
		if r.status != http.StatusCreated || id == "" {
			t.Fatalf("start on gateway a: %d %v", r.status, r.body)
		}
		if c := a.post("/v1/verifications/"+id+"/cancel", nil); c.status != http.StatusOK {
			t.Fatalf("cancel on gateway a: %d %v", c.status, c.body)
		}
		ids[id] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	busy := func() bool { return inFlight.Load() >= 8 }
	if !slow {
		// a has tried and failed.
		busy = func() bool {
			for _, l := range a.metricLines("verigate_callback_failures_total") {
				if !strings.HasSuffix(l, " 0") {
					return true
				}
			}
			return false
		}
	}
	for !busy() {
		select {
		case <-ctx.Done():
			t.Fatalf("gateway a not attempting: %d callbacks in flight\n%s", inFlight.Load(), a.output())
		case <-time.After(20 * time.Millisecond):
		}
	}

	a.stopWith(syscall.SIGTERM)
	if !strings.Contains(a.output(), "msg=drained") {
		t.Errorf("gateway a did not drain:\n%s", a.output())
	}
	// Nothing was lost with a: every notice is still in Redis (b's
	// attempts in flight keep theirs until they end).
	queued, err := queue.Len(ctx)
	if err != nil || queued != n {
		t.Fatalf("%d notices in the Redis queue after gateway a stopped (%v), want %d", queued, err, n)
	}
	// a's attempts cut off as it stopped: those the IdP holds, besides
	// b's 4 (a slow IdP); none reached a down one.
	interrupted := max(inFlight.Load()-4, 0)
	if slow {
		free()
	} else {
		recv.Start()
	}

	// b delivers everything, a's interrupted attempts included.
	for {
		left, err := queue.Len(ctx)
		if err == nil && left == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d notices still queued (%v); deliveries %d\ngateway b:\n%s", left, err, len(recv.Deliveries()), b.output())
		case <-time.After(50 * time.Millisecond):
		}
	}
	got := recv.Deliveries()
	bodies := map[string]string{}    // delivery id → body
	notices := map[string][]string{} // verification id + status → delivery ids
	repeats := 0
	for _, d := range got {
		if prev, ok := bodies[d.ID]; ok {
			repeats++
			if prev != string(d.Body) {
				t.Errorf("delivery %s repeated with another body", d.ID)
			}
			continue
		}
		bodies[d.ID] = string(d.Body)
		var nt callback.Notice
		if err := json.Unmarshal(d.Body, &nt); err != nil {
			t.Fatal(err)
		}
		if !ids[nt.ID] {
			t.Errorf("a callback for %s, which this test did not start", nt.ID)
		}
		k := nt.ID + " " + string(nt.Status)
		notices[k] = append(notices[k], d.ID)
	}
	for id := range ids {
		if len(notices[id+" canceled"]) == 0 {
			t.Errorf("no canceled callback for %s", id)
		}
	}
	for k, ds := range notices {
		if len(ds) > 1 {
			t.Errorf("%s delivered under %d delivery ids %v, want one", k, len(ds), ds)
		}
	}
	t.Logf("%d callbacks received: %d notices, %d repeats of a delivery id; %d attempts of gateway a cut off by its stop",
		len(got), len(bodies), repeats, interrupted)
	if int64(repeats) > interrupted {
		t.Errorf("%d repeats, more than the %d attempts gateway a had in flight", repeats, interrupted)
	}
}

// TestScaleOutDeliveryHistory: an SMS started on gateway a goes
// undelivered, and Twilio's report of it lands on gateway b. The next
// `auto` start for the number, on a, calls first (docs/ROUTING.md, the
// history signal): the delivery history is shared through Redis, not kept
// by the gateway that heard the report.
func TestScaleOutDeliveryHistory(t *testing.T) {
	fake := twiliotest.New(twiliotest.Config{AccountSID: scaleSID, AuthToken: scaleToken})
	t.Cleanup(fake.Close)
	const to = "+4915112348321"
	fake.SetSMSOutcome(to, twiliotest.SMSOutcome{Statuses: []string{"sent", "undelivered"}, ErrorCode: "30003"})
	fake.SetPhone(to, twiliotest.Phone{Keys: "#"})
	url := redistest.StartServer(t).URL()
	a, b := startGateway(t, url, twilioEnv(fake)...), startGateway(t, url, twilioEnv(fake)...)
	fake.SetWebhookTransport(twiliotest.ProxyTransport(scalePublic, b.url))

	r := a.post("/v1/verifications", map[string]string{"to": to, "channel": "sms"})
	id := r.str("id")
	if r.status != http.StatusCreated || id == "" {
		t.Fatalf("start sms on gateway a: %d %v\n%s", r.status, r.body, a.output())
	}
	a.awaitView(id, "the undelivered event", func(v view) bool { return slices.Contains(v.types(), "undelivered") })
	// b tells the history once the event is stored, before it answers the
	// status callback.
	fake.Wait()
	if errs := fake.Errors(); len(errs) > 0 {
		t.Fatalf("fake Twilio: %v", errs)
	}
	if c := a.post("/v1/verifications/"+id+"/cancel", nil); c.status != http.StatusOK {
		t.Fatalf("cancel on gateway a: %d %v", c.status, c.body)
	}

	r = a.post("/v1/verifications", map[string]string{"to": to, "channel": "auto"})
	if r.status != http.StatusCreated || r.str("channel") != "call" {
		t.Fatalf("auto start on gateway a after the undelivered SMS reported to b: %d %v, want channel call", r.status, r.body)
	}
	if n := len(fake.MessagesTo(to)); n != 1 {
		t.Errorf("%d SMS to the number, want only the undelivered one", n)
	}
}
