package twiliocompat_test

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/labstack/echo/v4"
	"github.com/twilio/twilio-go/client"

	"github.com/verigate/verigate/api/twiliocompat"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/verify"
)

const account = "AC0123456789abcdef0123456789abcdef"

func messagesAPI(t *testing.T) (*echo.Echo, *verifytest.Service) {
	t.Helper()
	svc := verifytest.NewService(t)
	a, err := twiliocompat.New(twiliocompat.Config{Tenants: []twiliocompat.TenantConfig{{
		Name: "acme", AccountSID: account, Services: []twiliocompat.ServiceConfig{{SID: service}},
	}}}, twiliocompat.Options{Verifier: svc.Service, APIKeys: map[string]string{key: "acme", "GlobexVerifyKey0123456789": "globex"}})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	a.RegisterMessages(e)
	return e, svc
}

// TestMessages: the Messages API relays through Relay, answers as the
// document says, and refuses what Twilio refuses with Twilio's codes.
func TestMessages(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(twiliocompat.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	e, svc := messagesAPI(t)
	for _, r := range e.Routes() {
		if r.Method == echo.RouteNotFound {
			continue
		}
		if item := doc.Paths.Find(strings.Replace(r.Path, ":account", "{AccountSid}", 1)); item == nil {
			t.Errorf("route %s %s is not in openapi.json", r.Method, r.Path)
		}
	}
	for _, tc := range []struct {
		name, user, pass, path string
		form                   url.Values
		status, code           int
	}{
		{"sms", account, key, account, url.Values{"To": {"+4915123456789"}, "From": {"+15005550006"}, "Body": {"Your code is 482913"}}, 201, 0},
		{"tenant name, no account SID needed", "globex", "GlobexVerifyKey0123456789", "globex", url.Values{"To": {"+4915123456788"}, "MessagingServiceSid": {"MG1"}, "Body": {"code 1234"}}, 201, 0},
		{"wrong key", account, "WrongVerifyKey0123456789", account, url.Values{"To": {"+4915123456789"}, "From": {"x"}, "Body": {"1234"}}, 401, 20003},
		{"another account's path", account, key, "AC99999999999999999999999999999999", url.Values{"To": {"+4915123456789"}, "From": {"x"}, "Body": {"1234"}}, 401, 20003},
		{"no To", account, key, account, url.Values{"From": {"x"}, "Body": {"1234"}}, 400, 21604},
		{"no Body", account, key, account, url.Values{"To": {"+4915123456789"}, "From": {"x"}}, 400, 21602},
		{"no From", account, key, account, url.Values{"To": {"+4915123456789"}, "Body": {"1234"}}, 400, 21603},
		{"media", account, key, account, url.Values{"To": {"+4915123456789"}, "From": {"x"}, "Body": {"1234"}, "MediaUrl": {"https://x/y.png"}}, 400, 21620},
		{"long", account, key, account, url.Values{"To": {"+4915123456789"}, "From": {"x"}, "Body": {strings.Repeat("a", verify.MaxMessageBody+1)}}, 400, 21617},
		{"bad To", account, key, account, url.Values{"To": {"12"}, "From": {"x"}, "Body": {"1234"}}, 400, 21211},
	} {
		path := "/2010-04-01/Accounts/" + tc.path + "/Messages.json"
		req := httptest.NewRequest("POST", path, strings.NewReader(tc.form.Encode()))
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationForm)
		req.SetBasicAuth(tc.user, tc.pass)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != tc.status || (tc.code != 0 && !strings.Contains(rec.Body.String(), `"code":`+strconv.Itoa(tc.code))) {
			t.Errorf("%s: %d %s, want %d %d", tc.name, rec.Code, rec.Body, tc.status, tc.code)
			continue
		}
		vreq := httptest.NewRequest("POST", path, strings.NewReader(tc.form.Encode()))
		vreq.Header.Set(echo.HeaderContentType, echo.MIMEApplicationForm)
		route, params, err := router.FindRoute(vreq)
		if err != nil {
			t.Fatalf("%s: not in the document: %v", path, err)
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route},
			Status:                 rec.Code, Header: rec.Header(),
			Body:    io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			t.Errorf("%s: response %d does not match openapi.json: %v\n%s", tc.name, rec.Code, err, rec.Body)
		}
	}
	msgs := svc.Sender.Messages()
	if len(msgs) != 2 || msgs[0].Body != "Your code is 482913" || !msgs[0].Relayed {
		t.Errorf("sent %+v", msgs)
	}
}

// TestStatusCallbacks: a message's end is written as Twilio's status
// callback, which twilio-go's RequestValidator accepts under the sending
// key and no other.
func TestStatusCallbacks(t *testing.T) {
	sc := twiliocompat.NewStatusCallbacks(map[string]string{key: "acme", "GlobexVerifyKey0123456789": "globex"})
	const cb = "https://idp.example/twilio/status?x=1"
	v := &verify.Verification{ID: "VE0123456789abcdef0123456789abcdef", To: "+4915123456789", Kind: verify.KindMessage,
		Status: verify.StatusUndelivered, CallbackURL: cb,
		CallbackFormat: twiliocompat.CallbackFormat + ":" + url.Values{"k": {twiliocompat.KeyID(key)}, "a": {account}, "f": {"+15005550006"}}.Encode()}
	body, ct, header, err := sc.Notice(v)
	if err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || ct != echo.MIMEApplicationForm {
		t.Fatalf("body %q (%s): %v", body, ct, err)
	}
	want := map[string]string{"MessageSid": "SM0123456789abcdef0123456789abcdef", "MessageStatus": "undelivered", "SmsStatus": "undelivered",
		"To": "+4915123456789", "From": "+15005550006", "AccountSid": account, "ApiVersion": "2010-04-01", "ErrorCode": "30003"}
	params := map[string]string{}
	for k := range form {
		params[k] = form.Get(k)
	}
	for k, w := range want {
		if params[k] != w {
			t.Errorf("%s = %q, want %q", k, params[k], w)
		}
	}
	sig := header["X-Twilio-Signature"]
	if rv := client.NewRequestValidator(key); !rv.Validate(cb, params, sig) {
		t.Error("twilio-go's RequestValidator refuses the signature")
	}
	if rv := client.NewRequestValidator("GlobexVerifyKey0123456789"); rv.Validate(cb, params, sig) {
		t.Error("another key validates the signature")
	}
	v.CallbackFormat = twiliocompat.CallbackFormat + ":k=0000"
	if _, _, _, err := sc.Notice(v); err == nil {
		t.Error("a message whose key is gone was signed")
	}
}
