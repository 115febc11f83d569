package entra

import (
	"context"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/internal/entratest"
	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/internal/testbuf"
)

// countingTransport counts the provider's requests to the fake Entra by
// path kind.
type countingTransport struct {
	discovery, jwks atomic.Int64
	mu              sync.Mutex
	tenants         map[string]bool // tenants whose metadata was asked for
	missing         atomic.Value    // string: tenants with this prefix are answered 404 (not Entra's)
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	c.mu.Lock()
	if c.tenants == nil {
		c.tenants = map[string]bool{}
	}
	c.tenants[parts[0]] = true
	c.mu.Unlock()
	if strings.HasSuffix(r.URL.Path, "/openid-configuration") {
		c.discovery.Add(1)
	} else {
		c.jwks.Add(1)
	}
	if p, _ := c.missing.Load().(string); p != "" && strings.HasPrefix(parts[0], p) {
		return &http.Response{StatusCode: http.StatusNotFound, Status: "404 Not Found", Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) asked(tid string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tenants[tid]
}

// clock is the provider's clock: real time plus an offset the test moves
// (the fake Entra signs hints with real time).
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) Advance(d time.Duration) { c.off.Add(int64(d)) }

type harness struct {
	t     *testing.T
	fake  *entratest.Fake
	p     *Provider
	srv   *httptest.Server
	log   *testbuf.Buffer
	http  *countingTransport
	clock *clock
}

func newHarness(t *testing.T, edit func(*Config), opts Options) *harness {
	t.Helper()
	h := &harness{t: t, fake: entratest.New(t, entratest.Options{}), log: &testbuf.Buffer{}, http: &countingTransport{}, clock: &clock{}}
	e := echo.New()
	h.srv = httptest.NewServer(e)
	t.Cleanup(h.srv.Close)
	cfg := Config{
		Apps:         []App{{ClientID: h.fake.ClientID}},
		Authority:    h.fake.URL,
		RedirectURIs: []string{h.fake.RedirectURI},
	}
	if edit != nil {
		edit(&cfg)
	}
	opts.HTTPClient = &http.Client{Transport: h.http, Timeout: 10 * time.Second}
	opts.Logger = slog.New(slog.NewTextHandler(h.log, nil))
	opts.Now = h.clock.Now
	p, err := New(context.Background(), cfg, h.srv.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	p.Register(e)
	h.p = p
	h.fake.SetProviderDiscoveryURL(h.srv.URL + DiscoveryPath)
	return h
}

func (h *harness) form(p entratest.AuthorizeParams) url.Values {
	h.t.Helper()
	f, err := h.fake.AuthorizeForm(p)
	if err != nil {
		h.t.Fatal(err)
	}
	return f
}

func (h *harness) hint(o entratest.HintOptions) string {
	h.t.Helper()
	s, err := h.fake.IssueHint(o)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func postRequest(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, AuthorizePath, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func (h *harness) authorize(f url.Values) (*Request, error) {
	return h.p.Authorize(context.Background(), postRequest(f.Encode()))
}

var inputRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
var actionRE = regexp.MustCompile(`<form id="entra-post" method="post" action="([^"]*)">`)

// submit does what the browser does with the page: posts its fields to
// its action.
func submit(t *testing.T, page string) url.Values {
	t.Helper()
	m := actionRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form in the page:\n%s", page)
	}
	fields := url.Values{}
	for _, in := range inputRE.FindAllStringSubmatch(page, -1) {
		fields.Add(html.UnescapeString(in[1]), html.UnescapeString(in[2]))
	}
	resp, err := http.PostForm(html.UnescapeString(m[1]), fields)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return fields
}

func (h *harness) result() entratest.Result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := h.fake.Wait(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func TestDiscovery(t *testing.T) {
	h := newHarness(t, nil, Options{})
	resp, err := http.Get(h.srv.URL + DiscoveryPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
		t.Fatalf("status %d, Content-Length %q for %d bytes", resp.StatusCode, resp.Header.Get("Content-Length"), len(body))
	}
	if !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
		t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	var d map[string]any
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"issuer":                                h.srv.URL + "/entra",
		"authorization_endpoint":                h.srv.URL + "/entra/authorize",
		"jwks_uri":                              h.srv.URL + "/entra/jwks",
		"response_types_supported":              []any{"id_token"},
		"response_modes_supported":              []any{"form_post"},
		"scopes_supported":                      []any{"openid"},
		"subject_types_supported":               []any{"public"},
		"id_token_signing_alg_values_supported": []any{"RS256"},
		"claim_types_supported":                 []any{"normal"},
		"grant_types_supported":                 []any{"implicit"},
	}
	for k, v := range want {
		g, _ := json.Marshal(d[k])
		w, _ := json.Marshal(v)
		if string(g) != string(w) {
			t.Errorf("%s = %s, want %s", k, g, w)
		}
	}
}

func TestJWKS(t *testing.T) {
	h := newHarness(t, nil, Options{})
	resp, err := http.Get(h.srv.URL + JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
		t.Fatalf("status %d, Content-Length %q", resp.StatusCode, resp.Header.Get("Content-Length"))
	}
	var set struct {
		Keys []struct {
			Kty, Use, Kid, X5t, N, E, Alg string
			X5c                           []string
		}
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("%d keys published at start, want 1", len(set.Keys))
	}
	k := set.Keys[0]
	if k.Kty != "RSA" || k.Use != "sig" || k.Alg != "RS256" || k.Kid == "" || k.Kid != k.X5t || len(k.X5c) != 1 {
		t.Fatalf("key %+v", k)
	}
	der, err := base64.StdEncoding.DecodeString(k.X5c[0])
	if err != nil {
		t.Fatalf("x5c is not standard base64: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("x5c is not a certificate: %v", err)
	}
	sum := sha1.Sum(der)
	if k.X5t != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Error("x5t is not the SHA-1 of the x5c certificate")
	}
	n, _ := base64.RawURLEncoding.DecodeString(k.N)
	e, _ := base64.RawURLEncoding.DecodeString(k.E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if !cert.PublicKey.(*rsa.PublicKey).Equal(pub) {
		t.Error("the x5c certificate holds another key than n/e")
	}
}

// TestFlow: Entra's authorize request is accepted, and the id_token the
// provider posts back passes the fake Entra's checks, for a call and a text.
func TestFlow(t *testing.T) {
	h := newHarness(t, nil, Options{})
	for _, m := range []Method{MethodTel, MethodSMS} {
		req, err := h.authorize(h.form(entratest.AuthorizeParams{}))
		if err != nil {
			t.Fatal(err)
		}
		if req.Hint.TenantID != h.fake.TenantID || req.Hint.ObjectID == "" || req.Hint.Subject == "" || req.ClientRequestID == "" {
			t.Errorf("request %+v", req)
		}
		if strings.Join(req.ACR, ",") != "possessionorinherence" || len(req.AMR) != 13 {
			t.Errorf("acr %v amr %v", req.ACR, req.AMR)
		}
		rec := httptest.NewRecorder()
		if err := h.p.Approve(context.Background(), rec, req, m); err != nil {
			t.Fatal(err)
		}
		submit(t, rec.Body.String())
		res := h.result()
		if !res.Accepted || res.Method != string(m) || res.IDToken["acr"] != "possessionorinherence" {
			t.Errorf("%s: fake Entra did not accept: %+v", m, res)
		}
	}
	if n := h.http.discovery.Load(); n != 1 {
		t.Errorf("tenant discovery fetched %d times for two hints, want 1 (cached)", n)
	}
}

func TestHintChecks(t *testing.T) {
	other, err := entratest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	const otherTenant = "00000000-1111-2222-3333-444444444444"
	cases := []struct {
		name   string
		hint   entratest.HintOptions
		reason string
	}{
		{"bad signature", entratest.HintOptions{SignWith: other}, "signature"},
		{"other tenant", entratest.HintOptions{TenantID: otherTenant}, "tenant not allowed"},
		{"tid not a GUID", entratest.HintOptions{Extra: map[string]any{"tid": "contoso.com"}}, "tid is not a tenant id"},
		{"wrong aud", entratest.HintOptions{Audience: "11111111-2222-3333-4444-555555555555"}, "aud"},
		{"wrong iss", entratest.HintOptions{Issuer: "https://sts.windows.net/x/"}, "iss"},
		{"tid other than iss", entratest.HintOptions{Extra: map[string]any{"tid": otherTenant}}, "tenant not allowed"},
		{"no oid", entratest.HintOptions{Omit: []string{"oid"}}, "oid missing"},
		{"no sub", entratest.HintOptions{Omit: []string{"sub"}}, "sub missing"},
		{"no iat", entratest.HintOptions{Omit: []string{"iat"}}, "iat missing"},
		{"too old", entratest.HintOptions{IssuedAt: time.Now().Add(-11 * time.Minute)}, "too old"},
		{"from the future", entratest.HintOptions{IssuedAt: time.Now().Add(10 * time.Minute)}, "future"},
		{"alg none", entratest.HintOptions{Alg: "none"}, "not RS256"},
		{"alg HS256", entratest.HintOptions{Alg: "HS256"}, "not RS256"},
		{"alg PS256", entratest.HintOptions{Alg: "PS256"}, "not RS256"},
		{"unknown kid", entratest.HintOptions{KeyID: "not-a-key"}, "unknown key"},
	}
	h := newHarness(t, func(c *Config) { c.Apps[0].Tenants = nil }, Options{})
	// The tenant list is set after the fake's tenant is known.
	h.p.apps[h.fake.ClientID].Tenants = []string{h.fake.TenantID}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hint := h.hint(tc.hint)
			_, err := h.authorize(h.form(entratest.AuthorizeParams{Hint: hint}))
			var ae *AuthorizeError
			if !errors.As(err, &ae) {
				t.Fatalf("accepted (%v)", err)
			}
			if ae.Request == nil || !strings.Contains(ae.Reason, tc.reason) {
				t.Errorf("reason %q (request %v), want %q with a trusted request", ae.Reason, ae.Request != nil, tc.reason)
			}
			if strings.Contains(h.log.String(), hint) {
				t.Error("the hint was logged")
			}
		})
	}
	if h.http.asked(otherTenant) {
		t.Error("metadata of a tenant the app does not list was fetched")
	}
	// And the same fake's good hint passes: the refusals were the changes.
	if _, err := h.authorize(h.form(entratest.AuthorizeParams{})); err != nil {
		t.Errorf("a good hint refused: %v", err)
	}
	if l := h.log.String(); !strings.Contains(l, "tid="+otherTenant) || !strings.Contains(l, "tid="+h.fake.TenantID) {
		t.Errorf("refusals do not name the tenant:\n%s", l)
	}
	if !regexp.MustCompile(`reason="[^"]+" .*client_request_id=[0-9a-f-]{36}`).MatchString(h.log.String()) {
		t.Errorf("refusals not logged with reason and client-request-id:\n%s", h.log.String())
	}
}

// TestUnknownKid: Entra's keys rolled over; the provider refetches the
// tenant's keys on an unknown kid, but at most once a minute.
func TestUnknownKid(t *testing.T) {
	h := newHarness(t, nil, Options{})
	if _, err := h.authorize(h.form(entratest.AuthorizeParams{})); err != nil {
		t.Fatal(err)
	}
	if n := h.http.jwks.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches, want 1", n)
	}
	if err := h.fake.RotateKeys(); err != nil {
		t.Fatal(err)
	}
	// Within the minute: no refetch, the new kid is refused.
	if _, err := h.authorize(h.form(entratest.AuthorizeParams{})); err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Fatalf("a kid unknown within the minute: %v", err)
	}
	if n := h.http.jwks.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches, want 1 (a refetch at most once a minute)", n)
	}
	h.clock.Advance(61 * time.Second)
	if _, err := h.authorize(h.form(entratest.AuthorizeParams{})); err != nil {
		t.Fatalf("after the minute, the rolled-over key: %v", err)
	}
	if n := h.http.jwks.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches, want 2", n)
	}
	for range 3 {
		h.authorize(h.form(entratest.AuthorizeParams{Hint: h.hint(entratest.HintOptions{KeyID: "forged"})}))
	}
	if n := h.http.jwks.Load(); n != 2 {
		t.Errorf("forged kids caused %d fetches within a minute, want none", n-2)
	}
	h.clock.Advance(61 * time.Second)
	h.authorize(h.form(entratest.AuthorizeParams{Hint: h.hint(entratest.HintOptions{KeyID: "forged"})}))
	if n := h.http.jwks.Load(); n != 3 {
		t.Errorf("%d JWKS fetches, want 3", n)
	}
}

func TestAuthorizeUntrusted(t *testing.T) {
	h := newHarness(t, nil, Options{})
	good := func() url.Values { return h.form(entratest.AuthorizeParams{}) }
	cases := map[string]func() *http.Request{
		"GET": func() *http.Request {
			return httptest.NewRequest(http.MethodGet, AuthorizePath+"?"+good().Encode(), nil)
		},
		"not a form": func() *http.Request {
			r := postRequest(good().Encode())
			r.Header.Set("Content-Type", "application/json")
			return r
		},
		"body too large": func() *http.Request {
			f := good()
			f.Set("padding", strings.Repeat("x", 64<<10))
			return postRequest(f.Encode())
		},
		"unknown client_id": func() *http.Request {
			f := good()
			f.Set("client_id", "someone-else")
			return postRequest(f.Encode())
		},
		"client_id twice": func() *http.Request {
			f := good()
			f.Add("client_id", "someone-else")
			return postRequest(f.Encode())
		},
		"redirect_uri elsewhere": func() *http.Request {
			f := good()
			f.Set("redirect_uri", "https://attacker.example/common/federation/externalauthprovider")
			return postRequest(f.Encode())
		},
		"redirect_uri missing": func() *http.Request {
			f := good()
			f.Del("redirect_uri")
			return postRequest(f.Encode())
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := h.p.Authorize(context.Background(), mk())
			var ae *AuthorizeError
			if !errors.As(err, &ae) {
				t.Fatalf("accepted (%v)", err)
			}
			if ae.Request != nil {
				t.Errorf("refused (%s) with a request to post back to: the redirect is not trusted", ae.Reason)
			}
		})
	}
	// A form the caller parsed already (within its own bound) is read as parsed.
	pre := postRequest(good().Encode())
	if err := pre.ParseForm(); err != nil {
		t.Fatal(err)
	}
	pre.PostForm.Set("client_id", "someone-else")
	if _, err := h.p.Authorize(context.Background(), pre); err == nil || !strings.Contains(err.Error(), "unknown client_id") {
		t.Errorf("a parsed form: %v", err)
	}
	if n := h.http.discovery.Load(); n != 0 {
		t.Errorf("untrusted requests fetched Entra's metadata %d times", n)
	}
	// Entra's published endpoints are accepted (the hint is then checked).
	for _, r := range EntraRedirectURIs {
		f := good()
		f.Set("redirect_uri", r)
		req, err := h.authorize(f)
		if err != nil || req.RedirectURI != r {
			t.Errorf("%s: %v", r, err)
		}
	}
}

func TestAuthorizeTrusted(t *testing.T) {
	h := newHarness(t, nil, Options{})
	cases := []struct {
		name   string
		edit   func(f url.Values)
		reason string
	}{
		{"scope without openid", func(f url.Values) { f.Set("scope", "profile") }, "scope"},
		{"response_type code", func(f url.Values) { f.Set("response_type", "code") }, "response_type"},
		{"response_mode query", func(f url.Values) { f.Set("response_mode", "query") }, "response_mode"},
		{"no hint", func(f url.Values) { f.Del("id_token_hint") }, "id_token_hint missing"},
		{"claims not JSON", func(f url.Values) { f.Set("claims", "{") }, "claims malformed"},
		{"acr not met by a phone", func(f url.Values) {
			f.Set("claims", `{"id_token":{"acr":{"essential":true,"values":["knowledge","inherence","knowledgeorinherence"]}}}`)
		}, "acr"},
		{"amr without tel or sms", func(f url.Values) {
			f.Set("claims", `{"id_token":{"amr":{"essential":true,"values":["fido","otp"]}}}`)
		}, "amr"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := h.form(entratest.AuthorizeParams{State: "st-" + tc.name})
			tc.edit(f)
			_, err := h.authorize(f)
			var ae *AuthorizeError
			if !errors.As(err, &ae) {
				t.Fatalf("accepted (%v)", err)
			}
			if ae.Request == nil || ae.Request.State != "st-"+tc.name || !strings.Contains(ae.Reason, tc.reason) {
				t.Fatalf("reason %q, request %+v", ae.Reason, ae.Request)
			}
			// The refusal goes back to Entra as access_denied with the state.
			rec := httptest.NewRecorder()
			if err := h.p.Deny(context.Background(), rec, ae.Request, ErrorAccessDenied, "refused: "+ae.Reason); err != nil {
				t.Fatal(err)
			}
			fields := submit(t, rec.Body.String())
			if fields.Has("id_token") || fields.Get("error") != "access_denied" || fields.Get("state") != "st-"+tc.name {
				t.Errorf("posted %v", fields)
			}
			if res := h.result(); res.Accepted || res.Error != "access_denied" {
				t.Errorf("fake Entra: %+v", res)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	h := newHarness(t, nil, Options{})
	f := h.form(entratest.AuthorizeParams{})
	if _, err := h.authorize(f); err != nil {
		t.Fatal(err)
	}
	_, err := h.authorize(f)
	var ae *AuthorizeError
	if !errors.As(err, &ae) || !strings.Contains(ae.Reason, "replayed") {
		t.Fatalf("the same hint twice: %v", err)
	}
	// The same signed hint written another way: the JWS parser would
	// verify each, so each must be refused, not counted as a new hint.
	hint := f.Get("id_token_hint")
	for name, alt := range hintSpellings(t, hint) {
		g := h.form(entratest.AuthorizeParams{})
		g.Set("id_token_hint", alt)
		_, err := h.authorize(g)
		if !errors.As(err, &ae) || !strings.Contains(ae.Reason, "replayed") && !strings.Contains(ae.Reason, "malformed") {
			t.Errorf("%s: %v, want refused as replayed or malformed", name, err)
		}
	}
}

// hintSpellings are other spellings of one compact JWS that decode to the
// same bytes: a line break inside, and a signature whose unused trailing
// bits are set.
func hintSpellings(t *testing.T, hint string) map[string]string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, hint[len(hint)-1])
	sig := hint[strings.LastIndexByte(hint, '.')+1:]
	if len(sig)%4 == 0 || last < 0 {
		t.Fatalf("signature %d chars: no trailing bits to set", len(sig))
	}
	return map[string]string{
		"newline":       hint[:10] + "\n" + hint[10:],
		"carriage":      hint[:10] + "\r\n" + hint[10:],
		"trailing bits": hint[:len(hint)-1] + string(alphabet[last^1]),
	}
}

// TestCanonicalHint: a hint spelled another way is refused before any
// replay check, even the first time.
func TestCanonicalHint(t *testing.T) {
	h := newHarness(t, nil, Options{})
	hint := h.hint(entratest.HintOptions{})
	if !canonicalHint(hint) {
		t.Fatal("Entra's hint refused")
	}
	for name, alt := range hintSpellings(t, hint) {
		if canonicalHint(alt) {
			t.Errorf("%s: accepted", name)
		}
		if hintID(alt) != hintID(hint) && name == "trailing bits" {
			t.Errorf("%s: another replay key", name)
		}
		f := h.form(entratest.AuthorizeParams{})
		f.Set("id_token_hint", alt)
		var ae *AuthorizeError
		if _, err := h.authorize(f); !errors.As(err, &ae) || !strings.Contains(ae.Reason, "malformed") {
			t.Errorf("%s: %v, want malformed", name, err)
		}
	}
	for _, bad := range []string{"a.b", "a.b.c.d", "YR.YQ.YQ", "YQ==.YQ.YQ", "YQ.Y+.YQ"} {
		if canonicalHint(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestTwoGatewaysOnRedis: gateways sharing Redis sign with one key and
// refuse a hint another gateway has seen.
func TestTwoGatewaysOnRedis(t *testing.T) {
	c := redistest.Client(t)
	prefix := redistest.Prefix(t)
	secret := []byte("the gateways' shared secret, 32b")
	h := newHarness(t, nil, Options{Redis: c, RedisPrefix: prefix, Secret: secret})
	cfg := h.p.cfg
	second, err := New(context.Background(), cfg, h.srv.URL, Options{Redis: c, RedisPrefix: prefix, Secret: secret, HTTPClient: &http.Client{Transport: h.http}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// The private keys are sealed in Redis: no PKCS #8 in clear, and a
	// gateway with another secret cannot sign with them.
	raw, err := c.Get(context.Background(), prefix+RedisKeysKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), `"key"`) || !strings.Contains(string(raw), `"sealed"`) {
		t.Errorf("signing keys stored in clear: %.80s…", raw)
	}
	stranger, err := New(context.Background(), cfg, h.srv.URL, Options{Redis: c, RedisPrefix: prefix, Secret: []byte("another secret of 32 bytes, too."), HTTPClient: &http.Client{Transport: h.http}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil {
		if _, err = stranger.JWKS(context.Background()); err == nil {
			t.Error("a gateway with another secret read the sealed keys")
		}
	}
	j1, _ := h.p.JWKS(context.Background())
	j2, _ := second.JWKS(context.Background())
	if string(j1) != string(j2) {
		t.Error("two gateways on one Redis publish different keys")
	}
	f := h.form(entratest.AuthorizeParams{})
	if _, err := h.authorize(f); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Authorize(context.Background(), postRequest(f.Encode())); err == nil || !strings.Contains(err.Error(), "replayed") {
		t.Errorf("a hint seen by one gateway, on the other: %v", err)
	}
	// A token signed by the second gateway passes Entra's checks against
	// the first gateway's discovery and JWKS.
	req, err := second.Authorize(context.Background(), postRequest(h.form(entratest.AuthorizeParams{}).Encode()))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := second.Approve(context.Background(), rec, req, MethodTel); err != nil {
		t.Fatal(err)
	}
	submit(t, rec.Body.String())
	if res := h.result(); !res.Accepted {
		t.Errorf("fake Entra refused the second gateway's token: %s", res.Reason)
	}
}

func TestACRNegotiation(t *testing.T) {
	h := newHarness(t, nil, Options{})
	cases := []struct {
		claims string
		method Method
		acr    string // "" when Approve must refuse
	}{
		{`{"id_token":{"acr":{"essential":true,"values":["knowledge","knowledgeorpossession","possession"]}}}`, MethodTel, "knowledgeorpossession"},
		{`{"id_token":{"acr":{"essential":true,"value":"possession"}}}`, MethodSMS, "possession"},
		{`{"id_token":{"amr":{"essential":true,"values":["sms"]}}}`, MethodSMS, "possession"},
		{`{"id_token":{"amr":{"essential":true,"values":["sms"]}}}`, MethodTel, ""},
		{`{"id_token":{"acr":{"values":["knowledgeorpossessionorinherence"]},"amr":{"values":["tel","otp"]}}}`, MethodTel, "knowledgeorpossessionorinherence"},
	}
	for i, tc := range cases {
		req, err := h.authorize(h.form(entratest.AuthorizeParams{Claims: tc.claims}))
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		rec := httptest.NewRecorder()
		err = h.p.Approve(context.Background(), rec, req, tc.method)
		if tc.acr == "" {
			if err == nil || strings.Contains(rec.Body.String(), "id_token") {
				t.Errorf("%d: %s signed although amr %v was requested", i, tc.method, req.AMR)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		submit(t, rec.Body.String())
		res := h.result()
		if !res.Accepted || res.IDToken["acr"] != tc.acr {
			t.Errorf("%d: acr %v, accepted %v (%s); want acr %s", i, res.IDToken["acr"], res.Accepted, res.Reason, tc.acr)
		}
	}
}

func TestChooseACR(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "possession"},
		{"knowledge", ""},
		{"knowledge,inherence,knowledgeorinherence", ""},
		{"inherence,possessionorinherence", "possessionorinherence"},
		{"possession,knowledgeorpossession", "possession"},
	} {
		var in []string
		if tc.in != "" {
			in = strings.Split(tc.in, ",")
		}
		if got := chooseACR(in); got != tc.want {
			t.Errorf("chooseACR(%v) = %q, want %q", in, got, tc.want)
		}
	}
}

func TestPostPage(t *testing.T) {
	h := newHarness(t, nil, Options{})
	req, err := h.authorize(h.form(entratest.AuthorizeParams{State: ""}))
	if err != nil {
		t.Fatal(err)
	}
	req.State = "" // state omitted when Entra sent none
	rec := httptest.NewRecorder()
	if err := h.p.Approve(context.Background(), rec, req, MethodTel); err != nil {
		t.Fatal(err)
	}
	page := rec.Body.String()
	hdr := rec.Header()
	csp := hdr.Get("Content-Security-Policy")
	m := regexp.MustCompile(`script-src 'nonce-([A-Za-z0-9_-]+)'`).FindStringSubmatch(csp)
	if m == nil || !strings.Contains(page, `<script nonce="`+m[1]+`">`) {
		t.Errorf("CSP %q does not allow the page's script by nonce", csp)
	}
	u, _ := url.Parse(h.fake.RedirectURI)
	for _, want := range []string{"default-src 'none'", "form-action " + u.Scheme + "://" + u.Host, "base-uri 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %s", csp, want)
		}
	}
	if hdr.Get("Cache-Control") != "no-store" || hdr.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("headers %v", hdr)
	}
	if !strings.Contains(page, "<noscript>") || !strings.Contains(page, `<button type="submit">`) {
		t.Error("no button for browsers without script")
	}
	if strings.Contains(page, `name="state"`) {
		t.Error("state posted although Entra sent none")
	}
	// A state that tries to break out of the attribute stays a value.
	req.State = `"><script>alert(1)</script>`
	rec = httptest.NewRecorder()
	if err := h.p.Deny(context.Background(), rec, req, ErrorTemporarilyUnavailable, "Try again\r\nlater é"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(rec.Body.String(), "<script>alert") || strings.Contains(rec.Body.String(), "id_token") {
		t.Errorf("deny page:\n%s", rec.Body.String())
	}
	if err := h.p.Deny(context.Background(), httptest.NewRecorder(), req, "server_error", ""); err == nil {
		t.Error("an error code other than access_denied/temporarily_unavailable was posted")
	}
	if err := h.p.Deny(context.Background(), httptest.NewRecorder(), nil, ErrorAccessDenied, ""); err == nil {
		t.Error("denied without a trusted request")
	}
}

func TestApproveRefuses(t *testing.T) {
	h := newHarness(t, nil, Options{})
	req, err := h.authorize(h.form(entratest.AuthorizeParams{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.p.Approve(context.Background(), httptest.NewRecorder(), req, Method("otp")); err == nil {
		t.Error("signed amr otp")
	}
	if err := h.p.Approve(context.Background(), httptest.NewRecorder(), &Request{ClientID: "x", RedirectURI: h.fake.RedirectURI}, MethodTel); err == nil {
		t.Error("signed a request without a validated hint")
	}
	h.clock.Advance(11 * time.Minute)
	if err := h.p.Approve(context.Background(), httptest.NewRecorder(), req, MethodTel); err == nil {
		t.Error("signed after the flow's lifetime")
	}
}

func TestNewRefuses(t *testing.T) {
	ctx := context.Background()
	if _, err := New(ctx, Config{}, "https://gw.example", Options{}); err == nil {
		t.Error("built without apps")
	}
	if _, err := New(ctx, Config{Apps: []App{{ClientID: "a"}}}, "gw.example", Options{}); err == nil {
		t.Error("built with a relative public URL")
	}
	if _, err := New(ctx, Config{Apps: []App{{ClientID: "a"}}, CallMode: "x"}, "https://gw.example", Options{}); err == nil {
		t.Error("built from an invalid config")
	}
}
