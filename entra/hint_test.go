package entra

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
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
