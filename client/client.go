// Package client is a Go client for Verigate's REST API v1: start a
// verification, check a code (by verification id or by number), read one,
// wait for one to leave pending (a press-# call), cancel one, relay a
// message the caller wrote itself (POST /v1/messages) and read how it
// went, and check the signatures of the status callbacks the gateway
// sends.
//
//	c, err := client.New("https://verigate.example", os.Getenv("VERIGATE_API_KEY"))
//	v, err := c.Start(ctx, client.StartRequest{To: "+4915123456789", Channel: client.ChannelCall})
//	v2, err := c.Wait(ctx, v.ID, 30*time.Second) // the call's outcome
//
// Every failure the API answers is an *Error carrying the API's error code
// (rate_limited, not_pending, ...), its message, the HTTP status and
// Retry-After; errors.Is(err, client.ErrRateLimited) and the other
// sentinels compare by code.
//
// The client is written by hand on net/http rather than generated with
// oapi-codegen. The API has seven operations with small bodies; generated
// code would add a runtime dependency and one response type per status
// code of every operation (the document lists seven error statuses for a
// start), leaving callers to switch on them instead of getting one typed
// error, and it would still need hand-written code for what the document
// cannot say: waits longer than a gateway's maximum, Retry-After as a
// duration, bounded reads of the answer. What a generator would guarantee
// the tests check instead: every operation in the operations table below
// exists in api/openapi.json with its method and path, and every request
// and response field the client uses is in that operation's schema with
// the same JSON type; the end-to-end tests validate every request the
// client sends and every answer it reads against the document.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultMaxResponseBytes bounds how much of an answer the client reads
// unless WithMaxResponseBytes says otherwise. A verification with its
// whole event history is a few kilobytes.
const DefaultMaxResponseBytes = 1 << 20

// DefaultTimeout bounds each request (beyond the wait asked for, for Wait)
// unless WithTimeout says otherwise.
const DefaultTimeout = 30 * time.Second

// Client calls one gateway with one API key. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	key       string
	hc        *http.Client
	maxBody   int64
	timeout   time.Duration
	userAgent string
	// minPoll is the least time between two waits that answered pending
	// early (a gateway that ignores wait).
	minPoll time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends requests with hc instead of a client of its own
// (for proxies, TLS settings, instrumentation). A Timeout set on hc also
// bounds Wait: leave it zero and use WithTimeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithTimeout bounds each request; Wait adds the wait asked for. Zero
// leaves only the caller's context.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithMaxResponseBytes bounds how many bytes of an answer are read.
func WithMaxResponseBytes(n int64) Option { return func(c *Client) { c.maxBody = n } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client of the gateway at baseURL (scheme and host, and a
// path prefix if a proxy adds one) using the bearer key apiKey.
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q must be http:// or https:// with a host", baseURL)
	}
	if apiKey == "" {
		return nil, errors.New("client: no API key")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{
		base: u, key: apiKey, hc: &http.Client{},
		maxBody: DefaultMaxResponseBytes, timeout: DefaultTimeout,
		userAgent: "verigate-go-client/1", minPoll: time.Second,
	}
	for _, o := range opts {
		o(c)
	}
	if c.maxBody <= 0 {
		return nil, errors.New("client: the response limit must be positive")
	}
	if c.hc == nil {
		return nil, errors.New("client: WithHTTPClient(nil)")
	}
	return c, nil
}

// operation is one endpoint the client calls, as api/openapi.json names
// it; the contract test checks each against the document.
type operation struct {
	method string
	path   string // with {id} where the id goes
	query  []string
	// request and response are the body types (nil: none); the test
	// compares their JSON fields with the document's schemas.
	request, response any
}

var (
	opStart         = operation{http.MethodPost, "/v1/verifications", nil, StartRequest{}, Verification{}}
	opCheck         = operation{http.MethodPost, "/v1/verifications/{id}/check", nil, checkRequest{}, CheckResult{}}
	opCheckByNumber = operation{http.MethodPost, "/v1/verifications/check", nil, checkByNumberRequest{}, CheckResult{}}
	opGet           = operation{http.MethodGet, "/v1/verifications/{id}", []string{"wait"}, nil, Verification{}}
	opCancel        = operation{http.MethodPost, "/v1/verifications/{id}/cancel", nil, nil, Verification{}}
	opSend          = operation{http.MethodPost, "/v1/messages", nil, MessageRequest{}, Message{}}
	opGetMessage    = operation{http.MethodGet, "/v1/messages/{id}", nil, nil, Message{}}
)

// operations is every operation the client calls.
var operations = []operation{opStart, opCheck, opCheckByNumber, opGet, opCancel, opSend, opGetMessage}

// checkRequest is the body of a check by id.
type checkRequest struct {
	Code string `json:"code"`
}

// checkByNumberRequest is the body of a check by number.
type checkByNumberRequest struct {
	To   string `json:"to"`
	Code string `json:"code"`
}

// Start starts a verification of req.To, or resends the pending one of
// that number (Started.Resent). With req.IdempotencyKey a retry of the
// same request gets the first answer again (Started.Replayed).
func (c *Client) Start(ctx context.Context, req StartRequest) (*Started, error) {
	if req.To == "" {
		return nil, errors.New("client: start: no number (To)")
	}
	var h http.Header
	if req.IdempotencyKey != "" {
		h = http.Header{"Idempotency-Key": {req.IdempotencyKey}}
	}
	var s Started
	res, err := c.do(ctx, opStart, "", nil, h, req, &s.Verification, 0)
	if err != nil {
		return nil, err
	}
	s.Resent = res.StatusCode == http.StatusOK
	s.Replayed = res.Header.Get("Idempotent-Replayed") == "true"
	return &s, nil
}

// Check checks code against verification id. A wrong code is not an
// error: the result says pending and how many attempts are left. A
// verification that has ended is ErrNotPending (Error.VerificationStatus
// says how it ended).
func (c *Client) Check(ctx context.Context, id, code string) (*CheckResult, error) {
	if id == "" {
		return nil, errors.New("client: check: no verification id")
	}
	var r CheckResult
	if _, err := c.do(ctx, opCheck, id, nil, nil, checkRequest{Code: code}, &r, 0); err != nil {
		return nil, err
	}
	return &r, nil
}

// CheckNumber checks code against the pending verification of the number
// to (ErrNotFound when it has none).
func (c *Client) CheckNumber(ctx context.Context, to, code string) (*CheckResult, error) {
	if to == "" {
		return nil, errors.New("client: check: no number")
	}
	var r CheckResult
	if _, err := c.do(ctx, opCheckByNumber, "", nil, nil, checkByNumberRequest{To: to, Code: code}, &r, 0); err != nil {
		return nil, err
	}
	return &r, nil
}

// Get reads verification id.
func (c *Client) Get(ctx context.Context, id string) (*Verification, error) {
	if id == "" {
		return nil, errors.New("client: get: no verification id")
	}
	var v Verification
	if _, err := c.do(ctx, opGet, id, nil, nil, nil, &v, 0); err != nil {
		return nil, err
	}
	return &v, nil
}

// Wait returns verification id as soon as it is no longer pending, or as
// it stands when d has passed (then still pending; not an error). It
// long-polls GET /v1/verifications/{id}?wait=, asking again while d
// lasts when a gateway cuts a wait to its maximum (60 s by default). A
// gateway with too many waits open answers ErrRateLimited or
// ErrUnavailable with a RetryAfter.
func (c *Client) Wait(ctx context.Context, id string, d time.Duration) (*Verification, error) {
	if id == "" {
		return nil, errors.New("client: wait: no verification id")
	}
	end := time.Now().Add(d)
	for {
		left := time.Until(end).Round(time.Millisecond)
		if left < 0 {
			left = 0
		}
		asked := time.Now()
		var v Verification
		q := url.Values{"wait": {left.String()}}
		if _, err := c.do(ctx, opGet, id, q, nil, nil, &v, left); err != nil {
			return nil, err
		}
		if v.Status != StatusPending || time.Now().After(end) {
			return &v, nil
		}
		// Still pending with time left: the gateway cut the wait, or does
		// not know wait at all; then do not ask more than once per minPoll.
		if pause := c.minPoll - time.Since(asked); pause > 0 {
			pause = min(pause, time.Until(end))
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
	}
}

// Cancel ends verification id as canceled; its codes stop working. One
// that has already ended is ErrNotPending.
func (c *Client) Cancel(ctx context.Context, id string) (*Verification, error) {
	if id == "" {
		return nil, errors.New("client: cancel: no verification id")
	}
	var v Verification
	if _, err := c.do(ctx, opCancel, id, nil, nil, nil, &v, 0); err != nil {
		return nil, err
	}
	return &v, nil
}

// Send relays a message the caller wrote (an IdP's own code) through the
// gateway's limits, routing and providers: by SMS, or with ChannelCall a
// phone call reads the code in it, or ChannelAuto as routing decides.
// Every Send is a new message (no resend, no fallback to the other
// channel); it counts against the number's send limits like a start
// (ErrRateLimited). GetMessage reads how its delivery went.
func (c *Client) Send(ctx context.Context, m MessageRequest) (*Message, error) {
	if m.To == "" || m.Body == "" {
		return nil, errors.New("client: send: a message needs To and Body")
	}
	var h http.Header
	if m.IdempotencyKey != "" {
		h = http.Header{"Idempotency-Key": {m.IdempotencyKey}}
	}
	var r Message
	if _, err := c.do(ctx, opSend, "", nil, h, m, &r, 0); err != nil {
		return nil, err
	}
	return &r, nil
}

// GetMessage reads relayed message id: its status and the provider's
// events. A verification's id is ErrNotFound here.
func (c *Client) GetMessage(ctx context.Context, id string) (*Message, error) {
	if id == "" {
		return nil, errors.New("client: get message: no message id")
	}
	var r Message
	if _, err := c.do(ctx, opGetMessage, id, nil, nil, nil, &r, 0); err != nil {
		return nil, err
	}
	return &r, nil
}

// do sends one request of op and decodes a 2xx answer into out or a
// failure into *Error. extra lengthens the request's timeout (a wait).
func (c *Client) do(ctx context.Context, op operation, id string, q url.Values, h http.Header, body, out any, extra time.Duration) (*http.Response, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout+extra)
		defer cancel()
	}
	u := *c.base
	p := strings.Replace(op.path, "{id}", url.PathEscape(id), 1)
	u.Path = c.base.Path + strings.Replace(op.path, "{id}", id, 1)
	u.RawPath = c.base.EscapedPath() + p
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("client: encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, op.method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", op.method, p, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, c.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: read answer: %w", op.method, p, err)
	}
	over := int64(len(b)) > c.maxBody
	if res.StatusCode/100 != 2 {
		if over {
			b = nil // not the API's error body, whatever it is
		}
		return nil, newError(res, b)
	}
	if over {
		return nil, fmt.Errorf("client: %s %s: answer %d is over %d bytes", op.method, p, res.StatusCode, c.maxBody)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("client: %s %s: answer %d is not the expected JSON: %w", op.method, p, res.StatusCode, err)
	}
	return res, nil
}
