package client_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/verigate/verigate/callback"
	"github.com/verigate/verigate/client"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/verify"
)

// delivery is one callback as it reached the receiver.
type delivery struct {
	header http.Header
	body   []byte
	cb     *client.Callback
	err    error
}

// receiveCallback runs a gateway whose callbacks are signed with secret
// in the given formats, starts and cancels a verification with a
// callback_url, and returns the first callback received, as the IdP's
// handler saw it through client.ReadCallback.
func receiveCallback(t *testing.T, secret, signatures string) (string, delivery) {
	t.Helper()
	return receiveCallbackOf(t, secret, signatures, func(g *gateway, c *client.Client, url string) string {
		s, err := c.Start(context.Background(), client.StartRequest{To: number, CallbackURL: url})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Cancel(context.Background(), s.ID); err != nil {
			t.Fatal(err)
		}
		return s.ID
	})
}

// receiveCallbackOf is receiveCallback with trigger making the status
// change (given the callback URL) and returning its id.
func receiveCallbackOf(t *testing.T, secret, signatures string, trigger func(g *gateway, c *client.Client, url string) string) (string, delivery) {
	t.Helper()
	got := make(chan delivery, 8)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		cb, err := client.ReadCallback(r, []byte(secret))
		got <- delivery{r.Header.Clone(), body, cb, err}
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	allow := true
	n, err := callback.New(callback.Config{Secret: secret, Signatures: signatures, AllowPrivateNetworks: &allow, PollInterval: 20 * time.Millisecond}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx, 1) }()
	defer func() { stop(); <-done }()

	g := newGateway(t, verifytest.WithConfig(func(c *verify.Config) { c.Notifier = n }))
	c := g.newClient(t, keyAcme)
	id := trigger(g, c, recv.URL+"/cb")
	select {
	case d := <-got:
		return id, d
	case <-time.After(20 * time.Second):
		t.Fatal("no callback arrived")
	}
	return "", delivery{}
}

// TestClientCallbackVerified: the gateway's callbacks, in each signature
// format and with either form of the secret, pass ReadCallback and decode.
func TestClientCallbackVerified(t *testing.T) {
	plain := "a-callback-secret-0123456789"
	whsec := callback.SecretPrefix + base64.StdEncoding.EncodeToString([]byte(plain))
	tests := []struct{ name, secret, signatures string }{
		{"both", plain, callback.SignaturesBoth},
		{"verigate only", plain, callback.SignaturesVerigate},
		{"standard webhooks only", plain, callback.SignaturesStandard},
		{"whsec secret", whsec, callback.SignaturesBoth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, d := receiveCallback(t, tt.secret, tt.signatures)
			if d.err != nil {
				t.Fatalf("ReadCallback refused the gateway's callback: %v\n%v", d.err, d.header)
			}
			cb := d.cb
			if cb.ID != id || cb.Status != client.StatusCanceled || cb.Channel != client.ChannelSMS || cb.To != "+49151*****789" || cb.At.IsZero() || cb.DeliveryID == "" {
				t.Fatalf("callback %+v", cb)
			}
			// The plain secret and its whsec_ form are one key.
			other := plain
			if tt.secret == plain {
				other = whsec
			}
			if _, err := client.VerifyCallback([]byte(other), d.header, d.body, time.Now(), time.Minute); err != nil {
				t.Errorf("the other form of the secret: %v", err)
			}
		})
	}
}

// TestClientCallbackForged: a changed body, another secret, a stale
// timestamp, and a callback without signatures are refused.
func TestClientCallbackForged(t *testing.T) {
	secret := "a-callback-secret-0123456789"
	_, d := receiveCallback(t, secret, callback.SignaturesBoth)
	if d.err != nil {
		t.Fatal(d.err)
	}
	forgedBody := bytes.Replace(d.body, []byte(`"canceled"`), []byte(`"approved"`), 1)
	if bytes.Equal(forgedBody, d.body) {
		t.Fatalf("no status in %s", d.body)
	}
	onlyVerigate, onlyStandard := d.header.Clone(), d.header.Clone()
	onlyVerigate.Del(callback.WebhookSignatureHeader)
	onlyStandard.Del(callback.SignatureHeader)
	unsigned := d.header.Clone()
	unsigned.Del(callback.WebhookSignatureHeader)
	unsigned.Del(callback.SignatureHeader)
	tests := []struct {
		name   string
		secret string
		header http.Header
		body   []byte
		now    time.Time
	}{
		{"changed body", secret, d.header, forgedBody, time.Now()},
		{"changed body, Verigate-Signature only", secret, onlyVerigate, forgedBody, time.Now()},
		{"changed body, Standard Webhooks only", secret, onlyStandard, forgedBody, time.Now()},
		{"another secret", "another-secret-0123456789ab", d.header, d.body, time.Now()},
		{"replayed later", secret, d.header, d.body, time.Now().Add(10 * time.Minute)},
		{"unsigned", secret, unsigned, d.body, time.Now()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cb, err := client.VerifyCallback([]byte(tt.secret), tt.header, tt.body, tt.now, client.DefaultCallbackTolerance)
			if !errors.Is(err, client.ErrInvalidSignature) || cb != nil {
				t.Fatalf("VerifyCallback = %+v, %v; want ErrInvalidSignature", cb, err)
			}
		})
	}
	// The handler path refuses it too.
	r := httptest.NewRequest(http.MethodPost, "/cb", bytes.NewReader(forgedBody))
	r.Header = d.header.Clone()
	if _, err := client.ReadCallback(r, []byte(secret)); !errors.Is(err, client.ErrInvalidSignature) {
		t.Fatalf("ReadCallback of a forged body: %v", err)
	}
}

// TestClientCallbackOfAMessage: a relayed message's end arrives as a
// callback of kind message.
func TestClientCallbackOfAMessage(t *testing.T) {
	secret := "a-callback-secret-0123456789"
	id, d := receiveCallbackOf(t, secret, callback.SignaturesBoth, func(g *gateway, c *client.Client, url string) string {
		m, err := c.Send(context.Background(), client.MessageRequest{To: number, Body: "Your login code is 482913", CallbackURL: url})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.svc.Report(context.Background(), m.ID, verify.Event{Type: verify.EventDelivered, Channel: verify.ChannelSMS, Attempt: 1}); err != nil {
			t.Fatal(err)
		}
		return m.ID
	})
	if d.err != nil {
		t.Fatal(d.err)
	}
	if d.cb.ID != id || d.cb.Kind != client.KindMessage || client.MessageStatus(d.cb.Status) != client.MessageDelivered {
		t.Fatalf("callback %+v", d.cb)
	}
}
