package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/verigate/verigate/api"
	"github.com/verigate/verigate/client"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/store"
)

const (
	keyAcme   = "acme-key-0123456789abcdef"
	keyGlobex = "globex-key-0123456789abcdef"
)

// gateway is the REST API on a real verify.Service (in-memory store and
// limiter, recording SMS sender) behind a real HTTP server.
type gateway struct {
	svc *verifytest.Service
	url string
}

func newGateway(t *testing.T, svcOpts ...verifytest.Option) *gateway {
	t.Helper()
	return newGatewayWith(t, nil, svcOpts...)
}

// newGatewayWith is newGateway with edit applied to the API's configuration.
func newGatewayWith(t *testing.T, edit func(*api.Config), svcOpts ...verifytest.Option) *gateway {
	t.Helper()
	svc := verifytest.NewService(t, svcOpts...)
	cfg := api.Config{
		Service:     svc,
		APIKeys:     map[string]string{keyAcme: "acme", keyGlobex: "globex"},
		Idempotency: store.NewIdempotencyMemory(svc.Clock.Now),
		Logger:      slog.New(slog.DiscardHandler),
		Now:         svc.Clock.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	e, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &gateway{svc: svc, url: srv.URL}
}

// newClient returns a client of g whose every request and answer is
// validated against api/openapi.json.
func (g *gateway) newClient(t *testing.T, key string, opts ...client.Option) *client.Client {
	t.Helper()
	hc := &http.Client{Transport: &validating{t: t, next: http.DefaultTransport}}
	c, err := client.New(g.url, key, append([]client.Option{client.WithHTTPClient(hc)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// validating checks each request against api/openapi.json before sending
// it, and each answer after.
type validating struct {
	t    *testing.T
	next http.RoundTripper
}

var (
	specDoc    *openapi3.T
	specRouter routers.Router
)

func spec(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	if specRouter != nil {
		return specDoc, specRouter
	}
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	specDoc, specRouter = doc, r
	return doc, r
}

func (v *validating) RoundTrip(req *http.Request) (*http.Response, error) {
	t := v.t
	_, router := spec(t)
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	// The document's server is "/": route on the path alone.
	probe := req.Clone(context.Background())
	probe.URL.Scheme, probe.URL.Host, probe.Host = "", "", ""
	probe.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := router.FindRoute(probe)
	if err != nil {
		t.Errorf("the client sent %s %s, which is not in api/openapi.json: %v", req.Method, req.URL.Path, err)
		return v.next.RoundTrip(req)
	}
	in := &openapi3filter.RequestValidationInput{Request: probe, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		t.Errorf("the client's %s %s does not match api/openapi.json: %v\nbody: %s", req.Method, req.URL.Path, err, body)
	}
	res, err := v.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	rb, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(rb))
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
		Body: io.NopCloser(bytes.NewReader(rb)), Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	if err := openapi3filter.ValidateResponse(context.Background(), rin); err != nil {
		t.Errorf("the answer %d to %s %s does not match api/openapi.json: %v\nbody: %s", res.StatusCode, req.Method, req.URL.Path, err, rb)
	}
	return res, nil
}

const number = "+4915123456789"

// TestClientSMSFlow: start, a wrong code, the right one, a second check,
// get, and a check by number, against the real API.
func TestClientSMSFlow(t *testing.T) {
	g := newGateway(t)
	c := g.newClient(t, keyAcme)
	ctx := context.Background()

	s, err := c.Start(ctx, client.StartRequest{To: number, Channel: client.ChannelSMS, Locale: "de", UserID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID == "" || s.Status != client.StatusPending || s.Channel != client.ChannelSMS || s.Resent || s.To != "+49151*****789" || s.Locale != "de" {
		t.Fatalf("start: %+v", s)
	}
	code := g.svc.Sender.LastCode(t, number)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	r, err := c.Check(ctx, s.ID, wrong)
	if err != nil || r.Status != client.StatusPending || r.AttemptsLeft != 4 {
		t.Fatalf("wrong code: %+v %v", r, err)
	}
	r, err = c.Check(ctx, s.ID, code)
	if err != nil || r.Status != client.StatusApproved || r.ID != s.ID {
		t.Fatalf("right code: %+v %v", r, err)
	}
	_, err = c.Check(ctx, s.ID, code)
	var e *client.Error
	if !errors.Is(err, client.ErrNotPending) || !errors.As(err, &e) || e.StatusCode != http.StatusConflict || e.VerificationStatus != client.StatusApproved {
		t.Fatalf("second check: %v", err)
	}
	v, err := c.Get(ctx, s.ID)
	if err != nil || v.Status != client.StatusApproved || len(v.Events) == 0 || v.Route.Channel != client.ChannelSMS || v.Sends != 1 || v.CreatedAt.IsZero() {
		t.Fatalf("get: %+v %v", v, err)
	}

	// By number, and a resend in between: the first code still works.
	s1, err := c.Start(ctx, client.StartRequest{To: "+4915123456780"})
	if err != nil {
		t.Fatal(err)
	}
	first := g.svc.Sender.LastCode(t, "+4915123456780")
	s2, err := c.Start(ctx, client.StartRequest{To: "+4915123456780"})
	if err != nil || !s2.Resent || s2.ID != s1.ID || s2.Sends != 2 {
		t.Fatalf("resend: %+v %v", s2, err)
	}
	r, err = c.CheckNumber(ctx, "+4915123456780", first)
	if err != nil || r.Status != client.StatusApproved || r.ID != s1.ID {
		t.Fatalf("check by number: %+v %v", r, err)
	}
	if _, err := c.CheckNumber(ctx, "+4915123456780", first); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("check by number with none pending: %v, want not_found", err)
	}
}

func TestClientCancel(t *testing.T) {
	g := newGateway(t)
	c := g.newClient(t, keyAcme)
	ctx := context.Background()
	s, err := c.Start(ctx, client.StartRequest{To: number, Channel: client.ChannelCall, CallMode: client.CallModeApprove})
	if err != nil {
		t.Fatal(err)
	}
	if s.Channel != client.ChannelCall || s.CallMode != client.CallModeApprove {
		t.Fatalf("start a call: %+v", s)
	}
	v, err := c.Cancel(ctx, s.ID)
	if err != nil || v.Status != client.StatusCanceled || v.ID != s.ID {
		t.Fatalf("cancel: %+v %v", v, err)
	}
	_, err = c.Cancel(ctx, s.ID)
	var e *client.Error
	if !errors.As(err, &e) || e.Code != client.CodeNotPending || e.VerificationStatus != client.StatusCanceled {
		t.Fatalf("second cancel: %v", err)
	}
	// Another tenant does not see it.
	if _, err := g.newClient(t, keyGlobex).Get(ctx, s.ID); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("another tenant's get: %v, want not_found", err)
	}
}

// TestClientErrors: each failure arrives as an *Error with the API's
// code, message, HTTP status and Retry-After.
func TestClientErrors(t *testing.T) {
	g := newGateway(t, verifytest.WithPolicies(ratelimit.Policy{Name: "number_sms", Scope: ratelimit.ScopeNumber, Channel: "sms", Limit: 1, Window: 10 * time.Minute}))
	ctx := context.Background()
	c := g.newClient(t, keyAcme)
	if _, err := c.Start(ctx, client.StartRequest{To: number}); err != nil {
		t.Fatal(err)
	}
	bad := g.newClient(t, "not-a-key-of-this-gateway")
	tests := []struct {
		name   string
		call   func() error
		status int
		code   string
		retry  bool
		is     error
	}{
		{"unauthorized", func() error { _, err := bad.Get(ctx, "VE00"); return err }, 401, client.CodeUnauthorized, false, client.ErrUnauthorized},
		{"invalid number", func() error { _, err := c.Start(ctx, client.StartRequest{To: "12"}); return err }, 400, client.CodeInvalidNumber, false, client.ErrInvalidNumber},
		{"invalid request", func() error {
			_, err := c.Start(ctx, client.StartRequest{To: number, ClientIP: "not-an-address"})
			return err
		}, 400, client.CodeInvalidRequest, false, client.ErrInvalidRequest},
		{"not found", func() error { _, err := c.Get(ctx, "VE0123456789abcdef0123456789abcdef"); return err }, 404, client.CodeNotFound, false, client.ErrNotFound},
		{"rate limited", func() error { _, err := c.Start(ctx, client.StartRequest{To: number}); return err }, 429, client.CodeRateLimited, true, client.ErrRateLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T), want *client.Error", err, err)
			}
			if e.StatusCode != tt.status || e.Code != tt.code || e.Message == "" || (e.RetryAfter > 0) != tt.retry || !errors.Is(err, tt.is) {
				t.Fatalf("error %+v, want %d %s retry %v", e, tt.status, tt.code, tt.retry)
			}
			if !strings.Contains(err.Error(), tt.code) {
				t.Errorf("%q does not name the code %s", err, tt.code)
			}
			if strings.Contains(err.Error(), keyAcme) {
				t.Error("the error shows the key")
			}
		})
	}
}

// TestClientRetryAfter: the second send to one number within the limit
// is refused with the API's message and a Retry-After of the window's rest.
func TestClientStartRateLimitedRetryAfter(t *testing.T) {
	g := newGateway(t, verifytest.WithPolicies(ratelimit.Policy{Name: "number_sms", Scope: ratelimit.ScopeNumber, Channel: "sms", Limit: 1, Window: 10 * time.Minute}))
	c := g.newClient(t, keyAcme)
	ctx := context.Background()
	if _, err := c.Start(ctx, client.StartRequest{To: number}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Start(ctx, client.StartRequest{To: number})
	var e *client.Error
	if !errors.As(err, &e) || e.RetryAfter != 10*time.Minute || !strings.Contains(e.Message, "limit on text verification codes") {
		t.Fatalf("%+v", err)
	}
}

func TestClientStartIdempotencyKey(t *testing.T) {
	g := newGateway(t)
	c := g.newClient(t, keyAcme)
	ctx := context.Background()
	req := client.StartRequest{To: number, IdempotencyKey: "3f1c9a55-idem"}
	first, err := c.Start(ctx, req)
	if err != nil || first.Replayed {
		t.Fatalf("first: %+v %v", first, err)
	}
	again, err := c.Start(ctx, req)
	if err != nil || !again.Replayed || again.ID != first.ID || again.Sends != 1 || again.Resent {
		t.Fatalf("replay: %+v %v", again, err)
	}
	if n := len(g.svc.Sender.Messages()); n != 1 {
		t.Fatalf("%d messages sent, want 1: the replay must not send", n)
	}
	req.Locale = "de"
	if _, err := c.Start(ctx, req); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("the key with another body: %v, want invalid_request", err)
	}
}

// TestClientAnswersNotFromTheAPI: a proxy's page, an answer over the
// limit and a wrong base URL fail plainly.
func TestClientAnswersNotFromTheAPI(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/verifications/big":
			w.Write(bytes.Repeat([]byte(" "), 2048))
		case "/v1/verifications/busy":
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "upstream down")
		default:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html>"+strings.Repeat("x", 5000)+"</html>")
		}
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, keyAcme, client.WithMaxResponseBytes(1024))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Get(ctx, "big"); err == nil || !strings.Contains(err.Error(), "over 1024 bytes") {
		t.Errorf("an answer over the limit: %v", err)
	}
	_, err = c.Get(ctx, "busy")
	var e *client.Error
	if !errors.As(err, &e) || e.StatusCode != 502 || e.Code != "" || !strings.Contains(e.Message, "upstream down") || e.RetryAfter < 80*time.Second {
		t.Errorf("a proxy's text: %+v", err)
	}
	_, err = c.Get(ctx, "page")
	if !errors.As(err, &e) || e.StatusCode != 502 || strings.Contains(e.Message, "html") {
		t.Errorf("a proxy's page: %+v", err)
	}
	for _, base := range []string{"", "ftp://x", "localhost:8080", "http://"} {
		if _, err := client.New(base, keyAcme); err == nil {
			t.Errorf("New(%q) accepted", base)
		}
	}
	if _, err := client.New(srv.URL, ""); err == nil {
		t.Error("New without a key accepted")
	}
}

// TestClientPathPrefixAndEscaping: a base URL with a path prefix (a
// reverse proxy's) is kept, and an id cannot leave its path segment.
func TestClientPathPrefixAndEscaping(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.EscapedPath())
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"code":"not_found","message":"verification not found"}}`)
	}))
	defer srv.Close()
	c, err := client.New(srv.URL+"/verigate/", keyAcme)
	if err != nil {
		t.Fatal(err)
	}
	c.Cancel(context.Background(), "../../x?y")
	if want := []string{"/verigate/v1/verifications/..%2F..%2Fx%3Fy/cancel"}; len(got) != 1 || got[0] != want[0] {
		t.Fatalf("paths %q, want %q", got, want)
	}
}
