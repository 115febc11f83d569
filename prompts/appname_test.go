package prompts_test

import (
	"strings"
	"testing"

	"github.com/verigate/verigate/prompts"
)

// TestSMSBodyForAnotherApp: a body may name another app than the
// configured one (a Twilio Verify service's friendly name), in every
// locale; CheckAppName refuses names that break the text or its one
// segment.
func TestSMSBodyForAnotherApp(t *testing.T) {
	cat, err := prompts.Load(prompts.Options{AppName: "Verigate", CodeLength: 8})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range cat.Locales() {
		body := cat.SMSBodyFor(l, "Acme Bank", "12345678")
		if !strings.Contains(body, "Acme Bank") || !strings.Contains(body, "12345678") || strings.Contains(body, "Verigate") {
			t.Errorf("%s: %q, want Acme Bank and the code, not the configured app", l, body)
		}
	}
	if err := cat.CheckAppName("Acme Bank", 8); err != nil {
		t.Errorf("Acme Bank: %v", err)
	}
	for _, bad := range []string{"", "{code}", "two\nlines", strings.Repeat("Long name ", 20)} {
		if err := cat.CheckAppName(bad, 8); err == nil {
			t.Errorf("CheckAppName(%q) accepted it", bad)
		}
	}
}
