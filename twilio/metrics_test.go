package twilio

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Every refusal of signed counts under its reason, and a request that
// passes counts none.
func TestSignatureFailuresCounted(t *testing.T) {
	w, err := NewWebhooks(validConfig(), nopReporter{}, WithTexts(testTexts{}))
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	w.Register(e.Group(PathPrefix))
	post := func(sig, body string) int {
		req := httptest.NewRequest(http.MethodPost, PathPrefix+RouteSMSStatus, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if sig != "" {
			req.Header.Set(SignatureHeader, sig)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec.Code
	}
	valid := strings.Repeat("A", signatureLen)
	tests := []struct {
		name, sig, reason string
		body              string
	}{
		{"missing", "", "missing", "MessageStatus=delivered"},
		{"malformed", "short", "malformed", "MessageStatus=delivered"},
		{"bad signature", valid, "invalid", "MessageStatus=delivered"},
		{"too large", valid, "too_large", "a=" + strings.Repeat("x", MaxWebhookBody+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := testutil.ToFloat64(w.refused.WithLabelValues(tt.reason))
			if code := post(tt.sig, tt.body); code < 400 {
				t.Fatalf("status %d, want a refusal", code)
			}
			if got := testutil.ToFloat64(w.refused.WithLabelValues(tt.reason)) - before; got != 1 {
				t.Errorf("%s counted %v times, want 1", tt.reason, got)
			}
		})
	}
	if n := testutil.CollectAndCount(w, "verigate_twilio_webhook_signature_failures_total"); n != 4 {
		t.Errorf("%d series, want one per reason (4)", n)
	}
}
