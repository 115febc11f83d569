package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verigate/verigate/api"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/store"
)

// Two tenants and their keys.
const (
	keyAcme   = "acme-key-0123456789abcdef"
	keyGlobex = "globex-key-0123456789abcdef"
)

// env is the API on a verifytest.Service, with every response checked
// against the OpenAPI document.
type env struct {
	t     testing.TB
	e     *echo.Echo
	svc   *verifytest.Service
	reg   *prometheus.Registry
	ready map[string]api.ReadyCheck
}

type envOption func(*api.Config)

func newEnv(t testing.TB, opts []envOption, svcOpts ...verifytest.Option) *env {
	t.Helper()
	svc := verifytest.NewService(t, svcOpts...)
	reg := prometheus.NewRegistry()
	cfg := api.Config{
		Service:     svc,
		APIKeys:     map[string]string{keyAcme: "acme", keyGlobex: "globex"},
		Idempotency: store.NewIdempotencyMemory(svc.Clock.Now),
		Registry:    reg,
		Logger:      slog.New(slog.DiscardHandler),
		Now:         svc.Clock.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	e, err := api.New(cfg)
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	return &env{t: t, e: e, svc: svc, reg: reg, ready: cfg.Ready}
}

// result is one response, decoded loosely.
type result struct {
	Code   int
	Header http.Header
	Body   []byte
}

func (r result) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %v: %s", r.Code, err, r.Body)
	}
	return m
}

// errCode returns error.code of an error response.
func (r result) errCode(t testing.TB) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (r result) errField(t testing.TB, f string) any {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	return e[f]
}

type header struct{ k, v string }

// do sends one request with the key (none if "") and validates the response.
func (en *env) do(method, path, key, body string, hs ...header) result {
	en.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for _, h := range hs {
		if h.k == "Content-Length" && h.v == "" {
			req.ContentLength = -1 // as a chunked upload arrives
			continue
		}
		req.Header.Set(h.k, h.v)
	}
	rec := httptest.NewRecorder()
	en.e.ServeHTTP(rec, req)
	res := result{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	validateResponse(en.t, method, path, body, res)
	return res
}

var (
	specDoc    *openapi3.T
	specRouter routers.Router
)

func spec(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	if specDoc != nil {
		return specDoc, specRouter
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("openapi router: %v", err)
	}
	specDoc, specRouter = doc, r
	return doc, r
}

// validateResponse checks res against the OpenAPI document: the operation's
// response for its status, or the Error schema for paths and methods the
// document does not have (404 and 405 from Echo).
func validateResponse(t testing.TB, method, path, body string, res result) {
	t.Helper()
	doc, router := spec(t)
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	route, params, err := router.FindRoute(req)
	if err != nil {
		if res.Code != http.StatusNotFound && res.Code != http.StatusMethodNotAllowed {
			t.Fatalf("%s %s answered %d but is not in the OpenAPI document: %v", method, path, res.Code, err)
		}
		var v any
		if err := json.Unmarshal(res.Body, &v); err != nil {
			t.Fatalf("%s %s: %d body is not JSON: %s", method, path, res.Code, res.Body)
		}
		if err := doc.Components.Schemas["Error"].Value.VisitJSON(v); err != nil {
			t.Fatalf("%s %s: %d body does not match the Error schema: %v", method, path, res.Code, err)
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 res.Code,
		Header:                 res.Header,
		Body:                   io.NopCloser(bytes.NewReader(res.Body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Fatalf("%s %s: response %d does not match the OpenAPI document: %v\nbody: %s", method, path, res.Code, err, res.Body)
	}
}

// start starts a verification for acme and returns its id.
func (en *env) start(key, body string) (string, result) {
	en.t.Helper()
	res := en.do("POST", "/v1/verifications", key, body)
	if res.Code != http.StatusCreated && res.Code != http.StatusOK {
		en.t.Fatalf("start %s: %d %s", body, res.Code, res.Body)
	}
	id, _ := res.json(en.t)["id"].(string)
	return id, res
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
