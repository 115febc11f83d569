package twiliocompat_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/api/twiliocompat"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/verify"
)

// brokenVerifier is a verify.Service whose store is down: every start and
// fetch fails as a Redis outage would.
type brokenVerifier struct {
	*verify.Service
	err error
}

func (b brokenVerifier) Start(context.Context, verify.StartRequest) (*verify.Verification, error) {
	return nil, b.err
}

func (b brokenVerifier) Get(context.Context, string, string) (*verify.Verification, error) {
	return nil, b.err
}

// TestUnavailableIsLogged: a 503 tells the client nothing of its cause, so
// the cause is logged, once per request, without the number.
func TestUnavailableIsLogged(t *testing.T) {
	var logs bytes.Buffer
	outage := fmt.Errorf("store: save: %w", errors.New("dial tcp 127.0.0.1:6379: connect: connection refused"))
	a, err := twiliocompat.New(twiliocompat.Config{Tenants: []twiliocompat.TenantConfig{{
		Name: "acme", Services: []twiliocompat.ServiceConfig{{SID: service}},
	}}}, twiliocompat.Options{
		Verifier: brokenVerifier{verifytest.NewService(t).Service, outage},
		APIKeys:  map[string]string{key: "acme"},
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	a.Register(e)
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/v2/Services/" + service + "/Verifications", "To=%2B4915123456789&Channel=sms"},
		{"GET", "/v2/Services/" + service + "/Verifications/VE0123456789abcdef0123456789abcdef", ""},
	} {
		logs.Reset()
		req := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationForm)
		req.SetBasicAuth("acme", key)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != 503 || strings.Contains(rec.Body.String(), "connection refused") {
			t.Errorf("%s %s: %d %s, want a 503 that does not show the cause", r.method, r.path, rec.Code, rec.Body)
		}
		got := logs.String()
		if strings.Count(got, "connection refused") != 1 || strings.Count(got, "\n") != 1 {
			t.Errorf("%s %s: log %q, want one line with the cause", r.method, r.path, got)
		}
		if strings.Contains(got, "15123456789") {
			t.Errorf("%s %s: log %q shows the number", r.method, r.path, got)
		}
	}
}
