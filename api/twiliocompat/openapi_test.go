package twiliocompat_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/api/twiliocompat"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/verify"
)

const (
	service = "VA0123456789abcdef0123456789abcdef"
	key     = "AcmeVerifyKey0123456789"
)

// TestOpenAPI: the document is valid, names every route the API
// registers, and every answer of a walk through the operations, errors
// included, matches it.
func TestOpenAPI(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(twiliocompat.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}

	svc := verifytest.NewService(t)
	a, err := twiliocompat.New(twiliocompat.Config{Tenants: []twiliocompat.TenantConfig{{
		Name: "acme", Services: []twiliocompat.ServiceConfig{{SID: service, FriendlyName: "Acme"}},
	}}}, twiliocompat.Options{Verifier: svc.Service, APIKeys: map[string]string{key: "acme"}})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	a.Register(e)
	for _, r := range e.Routes() {
		path := strings.NewReplacer(":service", "{ServiceSid}", ":sid", "{Sid}").Replace(r.Path)
		if !strings.HasPrefix(path, "/v2/Services/") || r.Method == echo.RouteNotFound {
			continue
		}
		if item := doc.Paths.Find(path); item == nil {
			t.Errorf("route %s %s is not in openapi.json", r.Method, path)
		}
	}

	do := func(method, path string, form url.Values, wantStatus int) []byte {
		t.Helper()
		body := form.Encode()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationForm)
		req.SetBasicAuth("acme", key)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != wantStatus {
			t.Fatalf("%s %s: %d %s, want %d", method, path, rec.Code, rec.Body, wantStatus)
		}
		vreq := httptest.NewRequest(method, path, strings.NewReader(body))
		vreq.Header.Set(echo.HeaderContentType, echo.MIMEApplicationForm)
		route, params, err := router.FindRoute(vreq)
		if err != nil {
			t.Fatalf("%s %s: not in the document: %v", method, path, err)
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route},
			Status:                 rec.Code, Header: rec.Header(),
			Body:    io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			t.Fatalf("%s %s: response %d does not match openapi.json: %v\n%s", method, path, rec.Code, err, rec.Body)
		}
		return rec.Body.Bytes()
	}
	base := "/v2/Services/" + service
	const to = "+4915123456789"
	created := do("POST", base+"/Verifications", url.Values{"To": {to}, "Channel": {"sms"}}, 201)
	sid := string(bytes.SplitN(bytes.SplitN(created, []byte(`"sid":"`), 2)[1], []byte(`"`), 2)[0])
	do("POST", base+"/VerificationCheck", url.Values{"To": {to}, "Code": {"0000"}}, 200)
	do("GET", base+"/Verifications/"+sid, nil, 200)
	do("POST", base+"/VerificationCheck", url.Values{"VerificationSid": {sid}, "Code": {svc.Sender.LastCode(t, to)}}, 200)
	do("GET", base+"/Verifications/"+sid, nil, 404)
	do("POST", base+"/Verifications/"+sid, url.Values{"Status": {"canceled"}}, 404)
	do("POST", base+"/Verifications", url.Values{"To": {"+4915123456780"}, "Channel": {"sms"}, "CustomCode": {"1234"}}, 400)
	created = do("POST", base+"/Verifications", url.Values{"To": {"+4915123456780"}, "Channel": {"call"}}, 201)
	sid = string(bytes.SplitN(bytes.SplitN(created, []byte(`"sid":"`), 2)[1], []byte(`"`), 2)[0])
	// A Twilio call reads the code aloud: Verigate's code mode.
	if calls := svc.Caller.Calls(); len(calls) != 1 || calls[0].Mode != verify.CallModeCode || len(calls[0].Code) != 6 {
		t.Errorf("calls %+v: want one in code mode carrying the code", calls)
	}
	do("POST", base+"/Verifications/"+sid, url.Values{"Status": {"approved"}}, 200)
	do("POST", base+"/VerificationCheck", url.Values{"Code": {"1234"}}, 400)
	do("POST", base+"/Verifications", url.Values{"To": {to}, "Channel": {"sms"}, "x": {strings.Repeat("y", twiliocompat.MaxBody)}}, 413)
}

func TestAuth(t *testing.T) {
	svc := verifytest.NewService(t)
	a, err := twiliocompat.New(twiliocompat.Config{Tenants: []twiliocompat.TenantConfig{{
		Name: "acme", Services: []twiliocompat.ServiceConfig{{SID: service}},
	}}}, twiliocompat.Options{Verifier: svc.Service, APIKeys: map[string]string{key: "acme", "GlobexVerifyKey0123456789": "globex"}})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	a.Register(e)
	for _, c := range []struct {
		name       string
		user, pass string
		basic      bool
		want       int
	}{
		{"tenant name", "acme", key, true, 201},
		{"no credentials", "", "", false, 401},
		{"wrong key", "acme", "WrongVerifyKey0123456789", true, 401},
		{"another tenant's key", "acme", "GlobexVerifyKey0123456789", true, 401},
		{"a tenant the API does not list", "globex", "GlobexVerifyKey0123456789", true, 401},
	} {
		req := httptest.NewRequest("POST", "/v2/Services/"+service+"/Verifications", strings.NewReader("To=%2B4915123456701&Channel=sms"))
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationForm)
		if c.basic {
			req.SetBasicAuth(c.user, c.pass)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != c.want || (c.want == http.StatusUnauthorized && !strings.Contains(rec.Body.String(), `"code":20003`)) {
			t.Errorf("%s: %d %s, want %d", c.name, rec.Code, rec.Body, c.want)
		}
	}
	if _, err := twiliocompat.New(twiliocompat.Config{Tenants: []twiliocompat.TenantConfig{{
		Name: "initech", Services: []twiliocompat.ServiceConfig{{SID: service}},
	}}}, twiliocompat.Options{Verifier: svc.Service, APIKeys: map[string]string{key: "acme"}}); err == nil || !strings.Contains(err.Error(), "no API key") {
		t.Errorf("a tenant without an API key: %v, want an error naming it", err)
	}
}
