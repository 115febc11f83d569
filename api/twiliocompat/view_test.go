package twiliocompat_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/api/twiliocompat"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/verify"
)

// TestShownNumber: an answer shows the full number only to a request that
// carried it; by SID alone it is masked, a verification started over v1
// included. A verification that has ended is not found, by Fetch as by
// an update or a check.
func TestShownNumber(t *testing.T) {
	svc := verifytest.NewService(t)
	a, err := twiliocompat.New(twiliocompat.Config{Tenants: []twiliocompat.TenantConfig{{
		Name: "acme", Services: []twiliocompat.ServiceConfig{{SID: service}},
	}}}, twiliocompat.Options{Verifier: svc.Service, APIKeys: map[string]string{key: "acme"}})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	a.Register(e)
	base := "/v2/Services/" + service
	do := func(method, path string, form url.Values, want int) (sid, to string) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationForm)
		req.SetBasicAuth("acme", key)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Fatalf("%s %s %v: %d %s, want %d", method, path, form, rec.Code, rec.Body, want)
		}
		var body struct{ SID, To string }
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		return body.SID, body.To
	}
	const number = "+4915123456789"
	masked := verify.MaskNumber(number)
	if masked == number || !strings.HasSuffix(masked, "789") {
		t.Fatalf("MaskNumber(%s) = %s", number, masked)
	}

	sid, to := do("POST", base+"/Verifications", url.Values{"To": {number}, "Channel": {"sms"}}, 201)
	for _, c := range []struct {
		name, method, path string
		form               url.Values
		want               string
	}{
		{"fetch by sid", "GET", base + "/Verifications/" + sid, nil, masked},
		{"check by sid", "POST", base + "/VerificationCheck", url.Values{"VerificationSid": {sid}, "Code": {"000000"}}, masked},
		{"check by To", "POST", base + "/VerificationCheck", url.Values{"To": {number}, "Code": {"000000"}}, number},
	} {
		if _, got := do(c.method, c.path, c.form, 200); got != c.want {
			t.Errorf("%s: to %q, want %q", c.name, got, c.want)
		}
	}
	if to != number {
		t.Errorf("start: to %q, want the client's own %q", to, number)
	}
	if _, got := do("POST", base+"/Verifications/"+sid, url.Values{"Status": {"approved"}}, 200); got != masked {
		t.Errorf("update by sid: to %q, want %q", got, masked)
	}
	// Ended: gone for Fetch as for an update and a check.
	do("GET", base+"/Verifications/"+sid, nil, 404)
	do("POST", base+"/Verifications/"+sid, url.Values{"Status": {"canceled"}}, 404)
	do("POST", base+"/VerificationCheck", url.Values{"VerificationSid": {sid}, "Code": {"000000"}}, 404)

	// Started over v1, whose answers mask the number.
	v, err := svc.Start(context.Background(), verify.StartRequest{Tenant: "acme", To: "+4915123456780", Channel: verify.ChannelSMS})
	if err != nil {
		t.Fatal(err)
	}
	if _, got := do("GET", base+"/Verifications/"+v.ID, nil, 200); got != verify.MaskNumber("+4915123456780") {
		t.Errorf("fetch of a v1 verification: to %q, want it masked", got)
	}
}
