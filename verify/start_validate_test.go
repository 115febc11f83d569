package verify_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/verify"
)

// TestStartValidates: Start refuses a locale that is not a language tag
// and a client IP that is not an address, naming the field, so that every
// front end refuses the same requests; it sends nothing for them.
func TestStartValidates(t *testing.T) {
	svc := verifytest.NewService(t)
	for _, tt := range []struct {
		name       string
		locale, ip string
		field      string // "" when valid
	}{
		{"valid", "pt-BR", "2001:db8::1", ""},
		{"no locale, no ip", "", "", ""},
		{"underscore locale", "pt_BR", "192.0.2.1", ""},
		{"locale with a space", "en US", "", "locale"},
		{"locale too long", strings.Repeat("a", verify.MaxLocale+1), "", "locale"},
		{"locale at the bound", strings.Repeat("a", verify.MaxLocale), "", ""},
		{"ip", "en", "1.2.3", "client_ip"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(svc.Sender.Messages())
			_, err := svc.Start(context.Background(), verify.StartRequest{Tenant: "acme", To: "+4915123456789", Locale: tt.locale, ClientIP: tt.ip})
			var in *verify.InputError
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("Start: %v", err)
			case tt.field == "":
				return
			case !errors.As(err, &in) || !errors.Is(err, verify.ErrInvalidRequest) || in.Field != tt.field:
				t.Fatalf("Start: %v, want an InputError about %s", err, tt.field)
			case !strings.HasPrefix(err.Error(), tt.field+" "):
				t.Errorf("error %q does not name %s", err, tt.field)
			}
			if after := len(svc.Sender.Messages()); after != before {
				t.Errorf("%d messages sent for a refused start", after-before)
			}
		})
	}
}
