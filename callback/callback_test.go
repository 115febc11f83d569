package callback

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/testbuf"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/verify"
)

const testSecret = "callback-secret-0123456789"

func ptr[T any](v T) *T { return &v }

type received struct {
	mu       sync.Mutex
	notices  []Notice
	headers  []http.Header
	arrivals []time.Time
	calls    int
}

// idp is a fake IdP on loopback (so its Notifier must allow private
// networks) that answers each callback with the next reply in replies (the
// last one repeats) and verifies every signature.
func idp(t *testing.T, replies ...reply) (*httptest.Server, *received, chan struct{}) {
	t.Helper()
	got := &received{}
	done := make(chan struct{}, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := VerifyRequest([]byte(testSecret), r.Header, body, time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
		got.mu.Lock()
		rep := replies[min(got.calls, len(replies)-1)]
		got.calls++
		var n Notice
		if err := json.Unmarshal(body, &n); err != nil {
			t.Errorf("body: %v", err)
		}
		got.notices = append(got.notices, n)
		got.headers = append(got.headers, r.Header.Clone())
		got.arrivals = append(got.arrivals, time.Now())
		got.mu.Unlock()
		if rep.retryAfter != "" {
			w.Header().Set("Retry-After", rep.retryAfter)
		}
		w.WriteHeader(rep.status)
		done <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return srv, got, done
}

type reply struct {
	status     int
	retryAfter string
}

func codes(statuses ...int) []reply {
	r := make([]reply, len(statuses))
	for i, s := range statuses {
		r[i] = reply{status: s}
	}
	return r
}

// fast is a Config for tests: retries in milliseconds.
func fast() Config {
	return Config{Secret: testSecret, Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, PollInterval: 5 * time.Millisecond, AllowPrivateNetworks: ptr(true)}
}

func run(t *testing.T, n *Notifier) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { n.Run(ctx, 2); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
}

func wait(t *testing.T, done chan struct{}, n int) {
	t.Helper()
	for range n {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("callback not received")
		}
	}
}

// deliverOnce makes one attempt of j through a queue of its own.
func deliverOnce(ctx context.Context, n *Notifier, j Job) {
	q := NewMemoryQueue(0, nil)
	if err := q.Push(ctx, j); err != nil {
		panic(err)
	}
	j, _, _ = q.Claim(ctx, time.Minute)
	n.attempt(ctx, q, j)
}

func verification(url string) *verify.Verification {
	return &verify.Verification{ID: "VE1", To: "+4915123456789", Status: verify.StatusApproved, Channel: verify.ChannelSMS, CallbackURL: url, UpdatedAt: time.Now()}
}

func TestDeliversSignedAndRetries(t *testing.T) {
	srv, got, done := idp(t, codes(500, 503, 200)...)
	n, err := New(fast(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, n)
	n.Notify(verification(srv.URL))
	wait(t, done, 3)
	got.mu.Lock()
	defer got.mu.Unlock()
	if got.calls != 3 {
		t.Fatalf("delivered in %d calls, want 3 (two failures retried)", got.calls)
	}
	if last := got.notices[2]; last.ID != "VE1" || last.Status != verify.StatusApproved || last.To != "+49151*****789" {
		t.Fatalf("notice %+v", last)
	}
	id := got.headers[0].Get(DeliveryHeader)
	if !strings.HasPrefix(id, "cb_") {
		t.Fatalf("delivery id %q", id)
	}
	for i, h := range got.headers {
		if h.Get(DeliveryHeader) != id || h.Get(WebhookIDHeader) != id {
			t.Errorf("attempt %d: delivery id %q, webhook-id %q; want %q on every attempt", i+1, h.Get(DeliveryHeader), h.Get(WebhookIDHeader), id)
		}
		if h.Get(SignatureHeader) == "" || h.Get(WebhookSignatureHeader) == "" || h.Get(WebhookTimestampHeader) == "" {
			t.Errorf("attempt %d: headers %v lack a signature format", i+1, h)
		}
	}
	if v := value(t, n.metrics.failures.WithLabelValues("http_5xx")); v != 2 {
		t.Errorf("failures{http_5xx} = %v, want 2", v)
	}
	if v := value(t, n.metrics.retries); v != 2 {
		t.Errorf("retries = %v, want 2", v)
	}
	eventually(t, "deliveries{delivered} = 1", func() bool { return value(t, n.metrics.deliveries.WithLabelValues("delivered")) == 1 })
}

func TestSignatureFormats(t *testing.T) {
	tests := []struct {
		signatures         string
		verigate, standard bool
	}{
		{"", true, true},
		{SignaturesBoth, true, true},
		{SignaturesVerigate, true, false},
		{SignaturesStandard, false, true},
	}
	for _, tt := range tests {
		srv, got, done := idp(t, codes(200)...)
		cfg := fast()
		cfg.Signatures = tt.signatures
		n, err := New(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		deliverOnce(context.Background(), n, Job{ID: "cb_1", URL: srv.URL, Body: []byte(`{}`), Created: time.Now()})
		wait(t, done, 1)
		h := got.headers[0]
		if (h.Get(SignatureHeader) != "") != tt.verigate || (h.Get(WebhookSignatureHeader) != "") != tt.standard || h.Get(DeliveryHeader) != "cb_1" {
			t.Errorf("signatures %q: headers %v", tt.signatures, h)
		}
	}
	if _, err := New(Config{Secret: testSecret, Signatures: "hmac"}, nil, nil); err == nil {
		t.Error("unknown signatures accepted")
	}
}

func TestClientErrorIsNotRetried(t *testing.T) {
	srv, got, done := idp(t, codes(400, 200)...)
	n, err := New(fast(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, n)
	n.Notify(verification(srv.URL))
	wait(t, done, 1)
	// A second notice proves the worker moved on instead of retrying the first.
	n.Notify(verification(srv.URL))
	wait(t, done, 1)
	got.mu.Lock()
	defer got.mu.Unlock()
	if got.calls != 2 {
		t.Fatalf("%d calls, want 2", got.calls)
	}
	eventually(t, "deliveries{refused} = 1", func() bool { return value(t, n.metrics.deliveries.WithLabelValues("refused")) == 1 })
}

// TestRetryAfterHonoured: a 503 or 429 with Retry-After is retried no
// sooner than it asks, however short the back-off.
func TestRetryAfterHonoured(t *testing.T) {
	tests := []struct {
		first reply
		// dateAhead, when set, makes first's Retry-After an HTTP date that
		// far ahead, written when its case starts (the cases before it take
		// seconds).
		dateAhead time.Duration
		min       time.Duration
	}{
		{first: reply{503, "1"}, min: time.Second},
		// An HTTP date has whole seconds: 4 s ahead is at least 3 s ahead
		// when written; the first attempt may take a moment on a busy machine.
		{first: reply{status: 429}, dateAhead: 4 * time.Second, min: 2 * time.Second},
	}
	for _, tt := range tests {
		first := tt.first
		if tt.dateAhead > 0 {
			first.retryAfter = time.Now().Add(tt.dateAhead).UTC().Format(http.TimeFormat)
		}
		srv, got, done := idp(t, first, reply{status: 200})
		cfg := fast()
		cfg.MaxBackoff = 5 * time.Second // bounds Retry-After too
		n, err := New(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		run(t, n)
		n.Notify(verification(srv.URL))
		wait(t, done, 2)
		got.mu.Lock()
		gap := got.arrivals[1].Sub(got.arrivals[0])
		got.mu.Unlock()
		if gap < tt.min {
			t.Errorf("Retry-After %q: retried after %s", first.retryAfter, gap)
		}
	}
}

// TestRetryAfterNeverShortens: a Retry-After of 0 or a date already past
// waits the back-off still, not a retry at once.
func TestRetryAfterNeverShortens(t *testing.T) {
	for _, ra := range []string{"0", time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)} {
		srv, got, done := idp(t, reply{503, ra}, reply{status: 200})
		cfg := fast()
		cfg.Backoff, cfg.MaxBackoff = 400*time.Millisecond, time.Second
		n, err := New(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		run(t, n)
		n.Notify(verification(srv.URL))
		wait(t, done, 2)
		got.mu.Lock()
		gap := got.arrivals[1].Sub(got.arrivals[0])
		got.mu.Unlock()
		if gap < 200*time.Millisecond { // the back-off's least: half of 400 ms
			t.Errorf("Retry-After %q: retried after %s, want the back-off at least", ra, gap)
		}
	}
}

// TestConnectionsReused: responses with a body are read, so that the
// next callback goes on the same connection.
func TestConnectionsReused(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]bool{}
	done := make(chan struct{}, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		w.Write([]byte(`{"ok":true,"note":"a receiver that answers with a body"}`))
		done <- struct{}{}
	}))
	defer srv.Close()
	n, err := New(fast(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		deliverOnce(context.Background(), n, Job{ID: "cb_1", URL: srv.URL, Body: []byte(`{}`), Created: time.Now()})
		wait(t, done, 1)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) != 1 {
		t.Errorf("3 callbacks on %d connections, want 1", len(conns))
	}
}

func TestRetryDelay(t *testing.T) {
	now := time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)
	tests := []struct {
		name, header string
		want         time.Duration
		ok           bool
	}{
		{"seconds", "120", 2 * time.Minute, true},
		{"zero", "0", 0, true},
		{"bounded", "86400", 10 * time.Minute, true},
		{"huge", "99999999999999999", 10 * time.Minute, true},
		{"date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"date past", now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"date bounded", now.Add(48 * time.Hour).Format(http.TimeFormat), 10 * time.Minute, true},
		{"negative", "-5", 0, false},
		{"garbage", "soon", 0, false},
		{"none", "", 0, false},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.header != "" {
			h.Set("Retry-After", tt.header)
		}
		if got, ok := retryAfter(h, now, 10*time.Minute); got != tt.want || ok != tt.ok {
			t.Errorf("%s: retryAfter(%q) = %s, %v; want %s, %v", tt.name, tt.header, got, ok, tt.want, tt.ok)
		}
	}
	none := func(time.Duration) time.Duration { return 0 }
	all := func(d time.Duration) time.Duration { return d }
	backoffs := []struct {
		attempt  int
		jitter   func(time.Duration) time.Duration
		min, max time.Duration
	}{
		{1, none, time.Second / 2, time.Second / 2},
		{1, all, time.Second, time.Second},
		{3, none, 2 * time.Second, 2 * time.Second},
		{3, all, 4 * time.Second, 4 * time.Second},
		{30, all, time.Minute, time.Minute},
		{1000, none, 30 * time.Second, 30 * time.Second},
		{4, randJitter, 4 * time.Second, 8 * time.Second},
	}
	for _, b := range backoffs {
		if d := backoff(b.attempt, time.Second, time.Minute, b.jitter); d < b.min || d > b.max {
			t.Errorf("backoff(%d) = %s, want in [%s, %s]", b.attempt, d, b.min, b.max)
		}
	}
}

// TestDroppedWhenSpent: a notice that keeps failing is dropped after its
// attempts, or once the next wait would pass its maximum age, counted and
// logged without the number.
func TestDroppedWhenSpent(t *testing.T) {
	for _, cfg := range []Config{{MaxAttempts: 3}, {MaxAge: 50 * time.Millisecond, Backoff: 20 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}} {
		srv, got, done := idp(t, codes(503)...)
		c := fast()
		c.MaxAttempts, c.MaxAge = cfg.MaxAttempts, cfg.MaxAge
		if cfg.Backoff > 0 {
			c.Backoff, c.MaxBackoff = cfg.Backoff, cfg.MaxBackoff
		}
		var log testbuf.Buffer
		n, err := New(c, nil, slog.New(slog.NewTextHandler(&log, nil)))
		if err != nil {
			t.Fatal(err)
		}
		run(t, n)
		n.Notify(verification(srv.URL))
		eventually(t, "dropped", func() bool { return value(t, n.metrics.deliveries.WithLabelValues("expired")) == 1 })
		got.mu.Lock()
		calls := got.calls
		got.mu.Unlock()
		if cfg.MaxAttempts > 0 && calls != cfg.MaxAttempts {
			t.Errorf("%+v: %d attempts", cfg, calls)
		}
		if left, _ := n.memory.Len(context.Background()); left != 0 {
			t.Errorf("%+v: %d notices left queued", cfg, left)
		}
		if s := log.String(); !strings.Contains(s, "callback undelivered, dropped") || strings.Contains(s, "5123456789") || strings.Contains(s, "*****789") {
			t.Errorf("%+v: log %q", cfg, s)
		}
		for len(done) > 0 {
			<-done
		}
	}
}

func TestFullQueueDrops(t *testing.T) {
	n, err := New(Config{Secret: testSecret, QueueSize: 1}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(verification("http://127.0.0.1:1/"))
	n.Notify(verification("http://127.0.0.1:1/")) // must not block
	if l, _ := n.memory.Len(context.Background()); l != 1 {
		t.Fatalf("queue holds %d, want 1", l)
	}
	if v := value(t, n.metrics.deliveries.WithLabelValues("queue_full")); v != 1 {
		t.Fatalf("deliveries{queue_full} = %v, want 1", v)
	}
}

// TestRedisDownKeepsNoticesInMemory: when the Redis queue does not answer,
// Notify returns within its bound and the notice is delivered from memory,
// logged and counted.
func TestRedisDownKeepsNoticesInMemory(t *testing.T) {
	srv, _, done := idp(t, codes(200)...)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	cfg := fast()
	cfg.EnqueueTimeout = 300 * time.Millisecond
	var log testbuf.Buffer
	n, err := New(cfg, nil, slog.New(slog.NewTextHandler(&log, nil)), WithQueue(NewRedisQueue(rdb, RedisQueueOptions{})))
	if err != nil {
		t.Fatal(err)
	}
	run(t, n)
	n.Notify(verification(srv.URL))
	wait(t, done, 1)
	if v := value(t, n.metrics.fallbacks); v != 1 {
		t.Errorf("fallbacks = %v, want 1", v)
	}
	if !strings.Contains(log.String(), "callback queue unavailable") {
		t.Errorf("log %q does not say the notice stayed in memory", log.String())
	}
}

func TestVerifyRejects(t *testing.T) {
	body := []byte(`{"id":"VE1"}`)
	now := time.Unix(1_800_000_000, 0)
	for _, secret := range []string{testSecret, "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))} {
		good := Sign([]byte(secret), now, body)
		tests := []struct {
			name, header string
			body         []byte
			at           time.Time
		}{
			{"tampered body", good, []byte(`{"id":"VE2"}`), now},
			{"wrong secret", Sign([]byte("another-secret-0123456789"), now, body), body, now},
			{"stale", good, body, now.Add(10 * time.Minute)},
			{"from the future", good, body, now.Add(-10 * time.Minute)},
			{"replayed with a new timestamp", strings.Replace(good, "t=1800000000", "t=1800000300", 1), body, now.Add(5 * time.Minute)},
			{"malformed", "v1=abc", body, now},
			{"not hex", "t=1800000000,v1=zz", body, now},
		}
		if err := Verify([]byte(secret), good, body, now, time.Minute); err != nil {
			t.Fatalf("good signature refused: %v", err)
		}
		for _, tt := range tests {
			if err := Verify([]byte(secret), tt.header, tt.body, tt.at, time.Minute); err == nil {
				t.Errorf("%s: accepted", tt.name)
			}
		}
	}
}

// TestNoticeSeq: a notice carries the verification's Seq, which orders
// callbacks that arrive out of order.
func TestNoticeSeq(t *testing.T) {
	srv, got, done := idp(t, codes(200)...)
	n, err := New(fast(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, n)
	v := verification(srv.URL)
	v.Events = []verify.Event{{Type: verify.EventCreated}, {Type: verify.EventCallApproved}}
	n.Notify(v)
	wait(t, done, 1)
	got.mu.Lock()
	defer got.mu.Unlock()
	if got.notices[0].Seq != 2 {
		t.Errorf("seq %d, want 2 (the verification's events)", got.notices[0].Seq)
	}
}

// TestDeliveryIDSigned: Verigate-Signature's v2 covers the delivery id,
// so a callback replayed within the tolerance under another
// Verigate-Delivery is refused, by VerifyDelivery and VerifyRequest;
// v1 alone (a gateway before v2) still passes Verify.
func TestDeliveryIDSigned(t *testing.T) {
	body := []byte(`{"id":"VE1"}`)
	now := time.Unix(1_800_000_000, 0)
	secret := []byte(testSecret)
	sig := SignDelivery(secret, "cb_1", now, body)
	if !strings.HasPrefix(sig, Sign(secret, now, body)+",v2=") {
		t.Fatalf("signature %q does not keep v1 first", sig)
	}
	if err := Verify(secret, sig, body, now, time.Minute); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := VerifyDelivery(secret, sig, "cb_1", body, now, time.Minute); err != nil {
		t.Errorf("VerifyDelivery: %v", err)
	}
	if err := VerifyDelivery(secret, sig, "cb_2", body, now, time.Minute); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("VerifyDelivery under another id: %v, want refused", err)
	}
	if err := VerifyDelivery(secret, Sign(secret, now, body), "cb_1", body, now, time.Minute); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("VerifyDelivery without v2: %v, want refused", err)
	}
	h := http.Header{}
	h.Set(SignatureHeader, sig)
	h.Set(DeliveryHeader, "cb_1")
	if err := VerifyRequest(secret, h, body, now, time.Minute); err != nil {
		t.Errorf("VerifyRequest: %v", err)
	}
	h.Set(DeliveryHeader, "cb_2")
	if err := VerifyRequest(secret, h, body, now, time.Minute); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("VerifyRequest replayed under another id: %v, want refused", err)
	}
	// The Standard Webhooks id is signed; Verigate-Delivery must equal it.
	h = webhookHeaders(t, "whsec_"+base64.StdEncoding.EncodeToString(secret), "cb_1", now.Unix(), body)
	h.Set(DeliveryHeader, "cb_2")
	if err := VerifyRequest(secret, h, body, now, time.Minute); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("VerifyRequest with Verigate-Delivery unlike webhook-id: %v, want refused", err)
	}
}

// webhookHeaders is the Standard Webhooks spec written out independently
// of the package: key = base64-decoded secret after "whsec_", signature =
// base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
func webhookHeaders(t *testing.T, secret, id string, ts int64, body []byte) http.Header {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "." + string(body)))
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	return h
}

func TestStandardWebhooks(t *testing.T) {
	// The example the Standard Webhooks reference libraries test with.
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		ts     = 1614265330
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	body := []byte(`{"test": 2432232314}`)
	at := time.Unix(ts, 0)
	if got := SignWebhook([]byte(secret), id, at, body); got != want {
		t.Errorf("SignWebhook = %s, want %s", got, want)
	}
	independent := webhookHeaders(t, secret, id, ts, body)
	if got := independent.Get("webhook-signature"); got != want {
		t.Errorf("the test's own implementation gives %s, want %s", got, want)
	}
	if err := VerifyWebhook([]byte(secret), independent, body, at, 5*time.Minute); err != nil {
		t.Errorf("independent headers refused: %v", err)
	}

	// What the Notifier sends passes the independent implementation.
	srv, got, done := idp(t, codes(200)...)
	cfg := fast()
	cfg.Secret = "whsec_" + base64.StdEncoding.EncodeToString([]byte(testSecret))
	n, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	deliverOnce(context.Background(), n, Job{ID: "cb_x", URL: srv.URL, Body: []byte(`{"id":"VE1"}`), Created: time.Now()})
	wait(t, done, 1)
	h := got.headers[0]
	sent, _ := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if w := webhookHeaders(t, cfg.Secret, "cb_x", sent, []byte(`{"id":"VE1"}`)).Get("webhook-signature"); h.Get("webhook-signature") != w {
		t.Errorf("sent %s, the spec gives %s", h.Get("webhook-signature"), w)
	}
	// The plain secret and its whsec_ form are the same key.
	if err := Verify([]byte(testSecret), h.Get(SignatureHeader), []byte(`{"id":"VE1"}`), time.Now(), time.Minute); err != nil {
		t.Errorf("Verigate-Signature under the plain form of the secret: %v", err)
	}

	forged := func(f func(h http.Header)) http.Header { c := independent.Clone(); f(c); return c }
	refused := []struct {
		name string
		h    http.Header
		body []byte
		at   time.Time
	}{
		{"tampered body", independent, []byte(`{"test": 1}`), at},
		{"other id", forged(func(h http.Header) { h.Set("webhook-id", "msg_other") }), body, at},
		{"timestamp moved", forged(func(h http.Header) { h.Set("webhook-timestamp", strconv.Itoa(ts+60)) }), body, at.Add(time.Minute)},
		{"stale", independent, body, at.Add(6 * time.Minute)},
		{"future", independent, body, at.Add(-6 * time.Minute)},
		{"wrong secret", webhookHeaders(t, "whsec_"+base64.StdEncoding.EncodeToString([]byte("another-secret-0123456789")), id, ts, body), body, at},
		{"no signature", forged(func(h http.Header) { h.Del("webhook-signature") }), body, at},
		{"v2 only", forged(func(h http.Header) { h.Set("webhook-signature", "v2,"+strings.TrimPrefix(want, "v1,")) }), body, at},
	}
	for _, tt := range refused {
		if err := VerifyWebhook([]byte(secret), tt.h, tt.body, tt.at, 5*time.Minute); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
		if err := VerifyRequest([]byte(secret), tt.h, tt.body, tt.at, 5*time.Minute); err == nil {
			t.Errorf("%s: VerifyRequest accepted", tt.name)
		}
	}
	// Several signatures (a rotated key): one match is enough.
	multi := forged(func(h http.Header) { h.Set("webhook-signature", "v1,bm90IGl0 "+want) })
	if err := VerifyWebhook([]byte(secret), multi, body, at, 5*time.Minute); err != nil {
		t.Errorf("second of two signatures: %v", err)
	}
	if err := VerifyRequest([]byte(secret), http.Header{}, body, at, time.Minute); err == nil {
		t.Error("VerifyRequest accepted a request without signatures")
	}
}

func TestShortSecretRefused(t *testing.T) {
	for _, s := range []string{"short", "whsec_c2hvcnQ=", "whsec_not*base64"} {
		if _, err := New(Config{Secret: s}, nil, nil); err == nil {
			t.Errorf("secret %q accepted", s)
		}
	}
}

// value reads a counter or gauge.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s after 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// formFormat is a Format writing a form signed by a header of its own.
type formFormat struct{}

func (formFormat) Notice(v *verify.Verification) ([]byte, string, map[string]string, error) {
	return []byte("Sid=" + v.ID + "&Status=" + string(v.Status)), "application/x-www-form-urlencoded", map[string]string{"X-Other-Signature": "sig-" + v.ID}, nil
}

// TestFormat: a verification naming a Format gets that format's body,
// content type and headers, retried like any notice, without Verigate's
// signature headers; one naming a format the gateway lacks is dropped.
func TestFormat(t *testing.T) {
	type got struct {
		body string
		h    http.Header
	}
	arrived := make(chan got, 4)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		arrived <- got{string(body), r.Header.Clone()}
	}))
	t.Cleanup(srv.Close)
	n, err := New(fast(), nil, nil, WithFormat("other", formFormat{}))
	if err != nil {
		t.Fatal(err)
	}
	run(t, n)
	v := verification(srv.URL)
	v.CallbackFormat = "other:anything"
	n.Notify(v)
	lost := verification(srv.URL)
	lost.ID, lost.CallbackFormat = "VE2", "unknown"
	n.Notify(lost)
	select {
	case g := <-arrived:
		if g.body != "Sid=VE1&Status=approved" || g.h.Get("Content-Type") != "application/x-www-form-urlencoded" || g.h.Get("X-Other-Signature") != "sig-VE1" {
			t.Errorf("arrived %q %v", g.body, g.h)
		}
		if g.h.Get(SignatureHeader) != "" || g.h.Get(WebhookSignatureHeader) != "" {
			t.Errorf("Verigate's signatures on another format's notice: %v", g.h)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the formatted notice did not arrive")
	}
	select {
	case g := <-arrived:
		t.Errorf("a notice of an unknown format arrived: %q", g.body)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestFlushDeliversQueuedNotices: Flush returns once the notices queued in
// memory are delivered (one after a failed attempt), 0 left; with no
// worker running it returns what is left when its context ends, and Run,
// stopping, counts those as lost at shutdown.
func TestFlushDeliversQueuedNotices(t *testing.T) {
	srv, got, _ := idp(t, codes(503, 200)...)
	n, err := New(fast(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, n)
	v := verification(srv.URL)
	n.Notify(v)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if left := n.Flush(ctx); left != 0 {
		t.Fatalf("Flush left %d notices", left)
	}
	got.mu.Lock()
	calls := got.calls
	got.mu.Unlock()
	if calls != 2 {
		t.Errorf("flushed after %d attempts, want 2 (one retried)", calls)
	}

	idle, err := New(fast(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	idle.Notify(v)
	short, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	if left := idle.Flush(short); left != 1 {
		t.Fatalf("Flush without workers left %d, want 1", left)
	}
	ended, end := context.WithCancel(context.Background())
	end()
	idle.Run(ended, 1)
	if v := value(t, idle.metrics.deliveries.WithLabelValues("shutdown")); v != 1 {
		t.Errorf("deliveries{shutdown} = %v, want 1", v)
	}
}
