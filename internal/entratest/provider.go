package entratest

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Provider is the smallest EAM provider that satisfies the reference:
// discovery, a JWKS with x5c, RS256 id_tokens. It exists to test the fake
// itself and the plumbing around it (a browser's form_post), never the
// gateway's provider.
type Provider struct {
	Issuer       string // http://127.0.0.1:port/entra
	DiscoveryURL string // Issuer + /.well-known/openid-configuration
	Key          *rsa.PrivateKey
	KeyID        string

	mu   sync.Mutex
	jwks any // what the jwks_uri serves
}

// NewProvider starts a Provider that stops when the test ends.
func NewProvider(t testing.TB) *Provider {
	t.Helper()
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := SelfSigned(key, "provider")
	if err != nil {
		t.Fatal(err)
	}
	sk := &signingKey{priv: key, cert: cert, kid: "provider-key-1"}
	p := &Provider{Key: key, KeyID: sk.kid}
	p.jwks = map[string]any{"keys": []jwk{sk.jwk("")}}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p.Issuer = srv.URL + "/entra"
	p.DiscoveryURL = p.Issuer + "/.well-known/openid-configuration"
	mux.HandleFunc("GET /entra/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer": p.Issuer, "authorization_endpoint": p.Issuer + "/authorize", "jwks_uri": p.Issuer + "/jwks",
			"response_types_supported": []string{"id_token"}, "response_modes_supported": []string{"form_post"},
			"scopes_supported": []string{"openid"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"}, "claim_types_supported": []string{"normal"},
		})
	})
	mux.HandleFunc("GET /entra/jwks", func(w http.ResponseWriter, _ *http.Request) {
		p.mu.Lock()
		v := p.jwks
		p.mu.Unlock()
		writeJSON(w, v)
	})
	return p
}

// SetJWKS replaces what the jwks_uri serves (a broken key set) and returns
// the function that puts the right one back.
func (p *Provider) SetJWKS(v any) (restore func()) {
	p.mu.Lock()
	saved := p.jwks
	p.jwks = v
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		p.jwks = saved
		p.mu.Unlock()
	}
}

// Sign makes an RS256 id_token of claims with key and kid (the provider's
// own when nil or empty).
func (p *Provider) Sign(claims map[string]any, key *rsa.PrivateKey, kid string) (string, error) {
	if key == nil {
		key = p.Key
	}
	if kid == "" {
		kid = p.KeyID
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return "", fmt.Errorf("entratest: provider signer: %w", err)
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("entratest: provider claims: %w", err)
	}
	jws, err := s.Sign(b)
	if err != nil {
		return "", fmt.Errorf("entratest: provider sign: %w", err)
	}
	return jws.CompactSerialize()
}

// Claims are the id_token claims that answer an authorize form rightly,
// with amr [method].
func (p *Provider) Claims(form url.Values, method string) map[string]any {
	now := time.Now().Unix()
	return map[string]any{
		"iss": p.Issuer, "aud": form.Get("client_id"), "sub": unverifiedSubject(form.Get("id_token_hint")),
		"nonce": form.Get("nonce"), "acr": "possessionorinherence", "amr": []string{method},
		"iat": now, "exp": now + 300,
	}
}

// Answer is the form_post body that answers an authorize form rightly.
func (p *Provider) Answer(form url.Values, method string) (url.Values, error) {
	tok, err := p.Sign(p.Claims(form, method), nil, "")
	if err != nil {
		return nil, err
	}
	return url.Values{"id_token": {tok}, "state": {form.Get("state")}}, nil
}
