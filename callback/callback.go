// Package callback delivers status changes to the client's callback_url:
// JSON, signed with `Verigate-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
// "t.body">`, retried with exponential back-off.
package callback

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/verigate/verigate/verify"
)

// SignatureHeader carries the signature of a callback.
const SignatureHeader = "Verigate-Signature"

// Config configures callbacks; a Secret turns them on.
type Config struct {
	Secret      string        `yaml:"secret" secret:"true"` // shared with the IdPs, who verify the signature
	MaxAttempts int           `yaml:"max_attempts"`         // deliveries tried per notice (default 6)
	Backoff     time.Duration `yaml:"backoff"`              // first retry delay, doubled each time (default 1s)
	Timeout     time.Duration `yaml:"timeout"`              // per request (default 5s)
	QueueSize   int           `yaml:"queue_size"`           // notices waiting; more are dropped and logged (default 1024)
}

// Notice is the JSON body of a callback.
type Notice struct {
	ID     string        `json:"id"`
	Status verify.Status `json:"status"`
	Reason string        `json:"reason,omitempty"`
	// To is masked: the IdP knows the number it asked for.
	To      string         `json:"to"`
	Channel verify.Channel `json:"channel"`
	At      time.Time      `json:"at"`
}

type job struct {
	url  string
	body []byte
}

// Notifier is a verify.Notifier that delivers callbacks from its own
// workers; Run owns them.
type Notifier struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger
	now    func() time.Time
	queue  chan job
}

var _ verify.Notifier = (*Notifier)(nil)

// New returns a Notifier; client may be nil for a default one.
func New(cfg Config, client *http.Client, log *slog.Logger) (*Notifier, error) {
	if len(cfg.Secret) < 16 {
		return nil, errors.New("callback: secret must be at least 16 characters")
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 6
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1024
	}
	if client == nil {
		client = &http.Client{Timeout: cfg.Timeout}
	}
	if log == nil {
		log = slog.Default()
	}
	return &Notifier{cfg: cfg, client: client, log: log, now: time.Now, queue: make(chan job, cfg.QueueSize)}, nil
}

// Notify implements verify.Notifier. It never blocks: a full queue drops
// the notice with a warning (the IdP can always GET the verification).
func (n *Notifier) Notify(v *verify.Verification) {
	body, err := json.Marshal(Notice{
		ID: v.ID, Status: v.Status, Reason: v.Reason, To: verify.MaskNumber(v.To), Channel: v.Channel, At: v.UpdatedAt,
	})
	if err != nil {
		n.log.Error("callback encode", "verification", v.ID, "err", err)
		return
	}
	select {
	case n.queue <- job{url: v.CallbackURL, body: body}:
	default:
		n.log.Warn("callback queue full, notice dropped", "verification", v.ID, "status", v.Status)
	}
}

// Run delivers queued notices with workers workers until ctx ends.
func (n *Notifier) Run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-n.queue:
					n.deliver(ctx, j)
				}
			}
		})
	}
	wg.Wait()
}

// deliver tries j until a 2xx, a 4xx other than 408/429 (the IdP refused
// it for good), the attempts run out, or ctx ends.
func (n *Notifier) deliver(ctx context.Context, j job) {
	delay := n.cfg.Backoff
	for attempt := 1; ; attempt++ {
		status, err := n.post(ctx, j)
		switch {
		case err == nil && status/100 == 2:
			return
		case err == nil && status/100 == 4 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests:
			n.log.Warn("callback refused", "status", status)
			return
		case attempt >= n.cfg.MaxAttempts:
			n.log.Warn("callback undelivered", "attempts", attempt, "status", status, "err", err)
			return
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay *= 2
	}
}

func (n *Notifier) post(ctx context.Context, j job) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.url, bytes.NewReader(j.body))
	if err != nil {
		return 0, fmt.Errorf("callback request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Verigate-Callback/1")
	req.Header.Set(SignatureHeader, Sign([]byte(n.cfg.Secret), n.now(), j.body))
	res, err := n.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("callback post: %w", err)
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// Sign returns the signature header value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header as an IdP should: the HMAC matches and
// the timestamp is within tolerance of now (refusing replays).
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range bytes.Split([]byte(header), []byte(",")) {
		k, v, _ := bytes.Cut(part, []byte("="))
		switch string(k) {
		case "t":
			ts = string(v)
		case "v1":
			sig = string(v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("callback: malformed signature header")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("callback: signature timestamp outside tolerance")
	}
	if !hmac.Equal([]byte(sig), []byte(mac(secret, ts, body))) {
		return errors.New("callback: signature mismatch")
	}
	return nil
}
