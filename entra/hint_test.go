package entra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/verigate/verigate/internal/entratest"
)

// TestEntraMetadataChecks: a tenant's discovery document and JWKS are
// taken only as Entra serves them; anything else is "unavailable", never
// a key.
func TestEntraMetadataChecks(t *testing.T) {
	const tid = "14c2f153-90a7-4689-9db7-9543bf084dad"
	key := testRSAKeys(t)[0]
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Use: "sig", Algorithm: "RS256"}}})
	cases := []struct {
		name string
		// serve answers the discovery document; base is the server's URL.
		discovery func(base string) (int, string)
		jwks      string
		ok        bool
	}{
		{"as Entra serves it", func(b string) (int, string) {
			return 200, `{"issuer":"` + b + `/` + tid + `/v2.0","jwks_uri":"` + b + `/` + tid + `/discovery/v2.0/keys"}`
		}, string(jwks), true},
		{"other issuer", func(b string) (int, string) {
			return 200, `{"issuer":"https://sts.windows.net/` + tid + `/","jwks_uri":"` + b + `/keys"}`
		}, string(jwks), false},
		{"jwks_uri on another host", func(b string) (int, string) {
			return 200, `{"issuer":"` + b + `/` + tid + `/v2.0","jwks_uri":"http://198.51.100.7/keys"}`
		}, string(jwks), false},
		{"status 500", func(b string) (int, string) { return 500, `{}` }, string(jwks), false},
		{"discovery too large", func(b string) (int, string) {
			return 200, `{"issuer":"` + b + `/` + tid + `/v2.0","jwks_uri":"` + b + `/keys","pad":"` + strings.Repeat("x", maxDiscoveryBody) + `"}`
		}, string(jwks), false},
		{"no RSA key", func(b string) (int, string) {
			return 200, `{"issuer":"` + b + `/` + tid + `/v2.0","jwks_uri":"` + b + `/keys"}`
		}, `{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"k1"}]}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var base string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/openid-configuration") {
					code, body := tc.discovery(base)
					w.WriteHeader(code)
					io.WriteString(w, body)
					return
				}
				io.WriteString(w, tc.jwks)
			}))
			defer srv.Close()
			base = srv.URL
			m, err := newEntraMetadata(srv.URL, srv.Client(), time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			k, err := m.key(context.Background(), tid, "k1")
			if tc.ok {
				if err != nil || !k.Equal(&key.PublicKey) {
					t.Fatalf("key %v, err %v", k != nil, err)
				}
				return
			}
			var me *metadataError
			if !errors.As(err, &me) || k != nil {
				t.Fatalf("key %v, err %v; want a metadata error", k != nil, err)
			}
		})
	}
}

func TestParseClaims(t *testing.T) {
	acr, amr, err := parseClaims(`{"id_token":{"acr":{"essential":true,"values":["possessionorinherence"]},"amr":{"essential":true,"values":["sms","tel"]}},"userinfo":{}}`)
	if err != nil || strings.Join(acr, ",") != "possessionorinherence" || strings.Join(amr, ",") != "sms,tel" {
		t.Errorf("acr %v amr %v err %v", acr, amr, err)
	}
	for _, bad := range []string{
		"[1]",
		`{"id_token":{"acr":{"values":"possession"}}}`,
		`{"id_token":{"amr":{"values":[` + strings.Repeat(`"tel",`, maxClaimValues) + `"sms"]}}}`,
		`{"pad":"` + strings.Repeat("x", maxClaimsParam) + `"}`,
	} {
		if _, _, err := parseClaims(bad); err == nil {
			t.Errorf("%.40s… accepted", bad)
		}
	}
}

// TestUncachedTenantFetches: hints naming strangers' tenants (an app
// without a tenant list) cause a bounded number of fetches, a failed
// tenant is not refetched for negativeTTL, and they never evict a tenant
// whose keys are known.
func TestUncachedTenantFetches(t *testing.T) {
	h := newHarness(t, nil, Options{})
	if !strings.Contains(h.log.String(), "app lists no tenants") {
		t.Errorf("no warning for an app without tenants:\n%s", h.log.String())
	}
	if _, err := h.authorize(h.form(entratest.AuthorizeParams{})); err != nil {
		t.Fatal(err)
	}
	m := h.p.entra
	h.http.missing.Store("00000000-0000-4000-8000-")
	base := h.http.discovery.Load()
	ctx := context.Background()
	tids := make([]string, 100)
	for i := range tids {
		tids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		var me *metadataError
		if _, err := m.key(ctx, tids[i], "k1"); !errors.As(err, &me) {
			t.Fatalf("tenant %s: %v", tids[i], err)
		}
	}
	if n := h.http.discovery.Load() - base; n > newTenantBurst+2 {
		t.Errorf("%d fetches for 100 unknown tenants at once, want at most %v", n, newTenantBurst+2)
	}
	// A failed tenant is not asked again within negativeTTL, even with
	// tokens to spare.
	h.clock.Advance(time.Minute)
	before := h.http.discovery.Load()
	m.key(ctx, tids[0], "k1")
	if n := h.http.discovery.Load(); n != before {
		t.Errorf("a failed tenant refetched after a minute")
	}
	h.clock.Advance(negativeTTL)
	m.key(ctx, tids[0], "k1")
	if n := h.http.discovery.Load(); n != before+1 {
		t.Errorf("a failed tenant not refetched after %s", negativeTTL)
	}
	// Fill the cache with strangers' tenants: the known one stays.
	for i := range maxTenants + 10 {
		m.tenant(fmt.Sprintf("00000000-0000-4000-9000-%012d", i), h.clock.Now().Add(time.Duration(i)))
	}
	before = h.http.discovery.Load()
	if _, err := h.authorize(h.form(entratest.AuthorizeParams{})); err != nil {
		t.Fatalf("the cached tenant after the flood: %v", err)
	}
	if n := h.http.discovery.Load(); n != before {
		t.Errorf("the cached tenant was evicted and refetched")
	}
}
