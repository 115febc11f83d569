package entratest

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// verifyHint checks a hint as a provider would, with the fake's published
// discovery document and keys read by go-jose, not by the fake's code.
func verifyHint(t *testing.T, f *Fake, tid, hint string) (map[string]any, error) {
	t.Helper()
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, f.DiscoveryURL(tid), &disc)
	if disc.Issuer != f.URL+"/"+tid+"/v2.0" || disc.JWKSURI != f.URL+"/"+tid+"/discovery/v2.0/keys" {
		t.Fatalf("discovery = %+v", disc)
	}
	var set jose.JSONWebKeySet
	getJSON(t, disc.JWKSURI, &set)
	jws, err := jose.ParseSignedCompact(hint, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, err
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		return nil, errNoKey
	}
	if len(keys[0].Certificates) != 1 {
		t.Fatalf("published key has %d x5c certificates", len(keys[0].Certificates))
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return nil, err
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c, nil
}

func TestHintVerifiesWithPublishedKeys(t *testing.T) {
	f := New(t, Options{})
	iat := time.Now().Add(-time.Minute).Truncate(time.Second)
	hint, err := f.IssueHint(HintOptions{ObjectID: "951ddb04-b16d-45f3-bbf7-b0fa18fa7aee", Subject: "mBfcvuhSHkDWVgV72x2ruIYdSsPSvcj2R0qfc6mGEAA",
		PreferredUsername: "testuser2@contoso.com", Name: "Test User 2", IssuedAt: iat})
	if err != nil {
		t.Fatal(err)
	}
	c, err := verifyHint(t, f, f.TenantID, hint)
	if err != nil {
		t.Fatalf("hint does not verify: %v", err)
	}
	want := map[string]any{
		"ver": "2.0", "iss": f.Issuer(f.TenantID), "sub": "mBfcvuhSHkDWVgV72x2ruIYdSsPSvcj2R0qfc6mGEAA",
		"aud": f.ClientID, "exp": float64(iat.Unix() - 1), "iat": float64(iat.Unix()), "nbf": float64(iat.Unix()),
		"name": "Test User 2", "preferred_username": "testuser2@contoso.com",
		"oid": "951ddb04-b16d-45f3-bbf7-b0fa18fa7aee", "tid": f.TenantID,
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("claim %s = %v, want %v", k, c[k], v)
		}
	}
	if len(c) != len(want) {
		t.Errorf("claims = %v, want exactly %v", c, want)
	}
	hdr := strings.Split(hint, ".")[0]
	raw, _ := base64.RawURLEncoding.DecodeString(hdr)
	var h map[string]string
	_ = json.Unmarshal(raw, &h)
	if h["typ"] != "JWT" || h["alg"] != "RS256" || h["kid"] != f.KeyID() {
		t.Errorf("header = %v", h)
	}
}

func TestHintVariants(t *testing.T) {
	f := New(t, Options{})
	other, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    HintOptions
	}{
		{"foreign key", HintOptions{SignWith: other}},
		{"unknown kid", HintOptions{KeyID: "nope"}},
		{"HS256 confusion", HintOptions{Alg: "HS256"}},
		{"alg none", HintOptions{Alg: "none"}},
		{"RS512", HintOptions{Alg: "RS512"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hint, err := f.IssueHint(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := verifyHint(t, f, f.TenantID, hint); err == nil {
				t.Fatal("a broken hint verified")
			}
		})
	}
}

func TestRotateKeys(t *testing.T) {
	f := New(t, Options{})
	old := f.KeyID()
	oldHint, _ := f.IssueHint(HintOptions{})
	if err := f.RotateKeys(); err != nil {
		t.Fatal(err)
	}
	if f.KeyID() == old {
		t.Fatal("kid unchanged")
	}
	var set jose.JSONWebKeySet
	getJSON(t, f.JWKSURL(f.TenantID), &set)
	if len(set.Key(old)) != 0 || len(set.Key(f.KeyID())) != 1 {
		t.Fatalf("after rotation the JWKS has %d keys, old published: %v", len(set.Keys), len(set.Key(old)) != 0)
	}
	if _, err := verifyHint(t, f, f.TenantID, oldHint); err == nil {
		t.Error("a hint of the removed key still verifies")
	}
	newHint, _ := f.IssueHint(HintOptions{})
	if _, err := verifyHint(t, f, f.TenantID, newHint); err != nil {
		t.Errorf("a hint of the new key: %v", err)
	}
}

func TestDiscoveryUnknownTenant(t *testing.T) {
	f := New(t, Options{})
	resp, err := http.Get(f.URL + "/not-a-tenant/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestAuthorizeForm(t *testing.T) {
	f := New(t, Options{})
	hint, _ := f.IssueHint(HintOptions{})
	form, err := f.AuthorizeForm(AuthorizeParams{Hint: hint})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"scope": "openid", "response_type": "id_token", "response_mode": "form_post",
		"client_id": f.ClientID, "redirect_uri": f.RedirectURI, "id_token_hint": hint, "claims": DefaultClaims,
	} {
		if form.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, form.Get(k), v)
		}
	}
	for _, k := range []string{"nonce", "state", "client-request-id"} {
		if form.Get(k) == "" {
			t.Errorf("%s empty", k)
		}
	}
	if len(form) != 10 {
		t.Errorf("form has %d fields: %v", len(form), form)
	}
}

func sign(t *testing.T, p *Provider, claims map[string]any, key *rsa.PrivateKey, kid string) string {
	t.Helper()
	tok, err := p.Sign(claims, key, kid)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// post sends a provider's answer to the fake's redirect_uri and returns
// what the fake recorded.
func post(t *testing.T, f *Fake, form url.Values) Result {
	t.Helper()
	resp, err := http.PostForm(f.RedirectURI, form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := f.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted != (resp.StatusCode == http.StatusOK) || r.Accepted != strings.Contains(string(body), "MFA accepted") {
		t.Errorf("page (%d) disagrees with result %+v:\n%s", resp.StatusCode, r, body)
	}
	return r
}

func TestReceiver(t *testing.T) {
	f := New(t, Options{})
	p := NewProvider(t)
	f.SetProviderDiscoveryURL(p.DiscoveryURL)
	other, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	otherCert, err := SelfSigned(other, "other")
	if err != nil {
		t.Fatal(err)
	}

	type request struct {
		form   url.Values
		sub    string
		claims map[string]any
	}
	start := func(t *testing.T) request {
		sub := "mBfcvuhSHkDWVgV72x2ruIYdSsPSvcj2R0qfc6mGEAA"
		hint, err := f.IssueHint(HintOptions{Subject: sub})
		if err != nil {
			t.Fatal(err)
		}
		form, err := f.AuthorizeForm(AuthorizeParams{Hint: hint})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().Unix()
		return request{form: form, sub: sub, claims: map[string]any{
			"iss": p.Issuer, "aud": form.Get("client_id"), "sub": sub, "nonce": form.Get("nonce"),
			"acr": "possessionorinherence", "amr": []string{"tel"}, "iat": now, "exp": now + 300,
		}}
	}

	for _, tc := range []struct {
		name   string
		change func(r *request) // edits the claims
		sign   func(t *testing.T, r request) string
		jwks   func() any // served instead of the right JWKS
		reason string     // "" = accepted
	}{
		{name: "right", reason: ""},
		{name: "aud as one-element array", change: func(r *request) { r.claims["aud"] = []string{r.form.Get("client_id")} }},
		{name: "sms", change: func(r *request) { r.claims["amr"] = []string{"sms"} }},
		{name: "wrong iss", change: func(r *request) { r.claims["iss"] = p.Issuer + "/" }, reason: "iss"},
		{name: "wrong aud", change: func(r *request) { r.claims["aud"] = "someone-else" }, reason: "aud"},
		{name: "two auds", change: func(r *request) { r.claims["aud"] = []string{r.form.Get("client_id"), "x"} }, reason: "aud"},
		{name: "no aud", change: func(r *request) { delete(r.claims, "aud") }, reason: "aud"},
		{name: "wrong sub", change: func(r *request) { r.claims["sub"] = "other" }, reason: "sub"},
		{name: "oid as sub", change: func(r *request) { r.claims["sub"] = "951ddb04-b16d-45f3-bbf7-b0fa18fa7aee" }, reason: "sub"},
		{name: "wrong nonce", change: func(r *request) { r.claims["nonce"] = "x" }, reason: "nonce"},
		{name: "no nonce", change: func(r *request) { delete(r.claims, "nonce") }, reason: "nonce"},
		{name: "acr not requested", change: func(r *request) { r.claims["acr"] = "knowledge" }, reason: "acr"},
		{name: "acr array", change: func(r *request) { r.claims["acr"] = []string{"possessionorinherence"} }, reason: "acr"},
		{name: "no acr", change: func(r *request) { delete(r.claims, "acr") }, reason: "acr"},
		{name: "amr string", change: func(r *request) { r.claims["amr"] = "tel" }, reason: "amr"},
		{name: "two amr", change: func(r *request) { r.claims["amr"] = []string{"tel", "sms"} }, reason: "amr"},
		{name: "empty amr", change: func(r *request) { r.claims["amr"] = []string{} }, reason: "amr"},
		{name: "amr not requested", change: func(r *request) { r.claims["amr"] = []string{"pwd"} }, reason: "amr"},
		{name: "expired", change: func(r *request) { r.claims["exp"] = time.Now().Add(-time.Hour).Unix() }, reason: "expired"},
		{name: "no exp", change: func(r *request) { delete(r.claims, "exp") }, reason: "exp"},
		{name: "iat in future", change: func(r *request) {
			r.claims["iat"] = time.Now().Add(time.Hour).Unix()
			r.claims["exp"] = time.Now().Add(2 * time.Hour).Unix()
		}, reason: "iat"},
		{name: "iat old", change: func(r *request) { r.claims["iat"] = time.Now().Add(-3 * time.Hour).Unix() }, reason: "iat"},
		{name: "no iat", change: func(r *request) { delete(r.claims, "iat") }, reason: "iat"},
		{name: "nbf future", change: func(r *request) { r.claims["nbf"] = time.Now().Add(time.Hour).Unix() }, reason: "nbf"},
		{name: "foreign key", sign: func(t *testing.T, r request) string { return sign(t, p, r.claims, other, "") }, reason: "signature"},
		{name: "unknown kid", sign: func(t *testing.T, r request) string { return sign(t, p, r.claims, nil, "nope") }, reason: "kid"},
		{name: "HS256", sign: func(t *testing.T, r request) string {
			s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, (&jose.SignerOptions{}).WithHeader("kid", p.KeyID))
			b, _ := json.Marshal(r.claims)
			jws, _ := s.Sign(b)
			out, _ := jws.CompactSerialize()
			return out
		}, reason: "id_token"},
		{name: "not a JWS", sign: func(*testing.T, request) string { return "abc" }, reason: "id_token"},
		{name: "no x5c", jwks: func() any {
			return map[string]any{"keys": []map[string]any{{"kty": "RSA", "use": "sig", "kid": p.KeyID,
				"n": base64.RawURLEncoding.EncodeToString(p.Key.N.Bytes()), "e": "AQAB"}}}
		}, reason: "x5c missing"},
		{name: "x5c of another key", jwks: func() any {
			return map[string]any{"keys": []map[string]any{{"kty": "RSA", "use": "sig", "kid": p.KeyID,
				"n": base64.RawURLEncoding.EncodeToString(p.Key.N.Bytes()), "e": "AQAB",
				"x5c": []string{base64.StdEncoding.EncodeToString(otherCert)}}}}
		}, reason: "x5c certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := start(t)
			if tc.change != nil {
				tc.change(&r)
			}
			if tc.jwks != nil {
				defer p.SetJWKS(tc.jwks())()
			}
			var token string
			if tc.sign != nil {
				token = tc.sign(t, r)
			} else {
				token = sign(t, p, r.claims, nil, "")
			}
			res := post(t, f, url.Values{"id_token": {token}, "state": {r.form.Get("state")}})
			if res.State != r.form.Get("state") {
				t.Errorf("state %q", res.State)
			}
			if tc.reason == "" {
				if !res.Accepted || res.Reason != "" {
					t.Fatalf("refused: %s", res.Reason)
				}
				if res.Method != r.claims["amr"].([]string)[0] || res.IDToken["sub"] != r.sub {
					t.Errorf("result %+v", res)
				}
				return
			}
			if res.Accepted || !strings.Contains(res.Reason, tc.reason) {
				t.Fatalf("accepted=%v reason %q, want refused for %q", res.Accepted, res.Reason, tc.reason)
			}
		})
	}

	t.Run("replayed state", func(t *testing.T) {
		r := start(t)
		form := url.Values{"id_token": {sign(t, p, r.claims, nil, "")}, "state": {r.form.Get("state")}}
		if res := post(t, f, form); !res.Accepted {
			t.Fatalf("first post refused: %s", res.Reason)
		}
		if res := post(t, f, form); res.Accepted || res.Reason != "state already answered" {
			t.Fatalf("replay: %+v", res)
		}
	})
	t.Run("unknown state", func(t *testing.T) {
		r := start(t)
		res := post(t, f, url.Values{"id_token": {sign(t, p, r.claims, nil, "")}, "state": {"forged"}})
		if res.Accepted || res.Reason != "unknown state" {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("error", func(t *testing.T) {
		r := start(t)
		res := post(t, f, url.Values{"error": {"access_denied"}, "error_description": {"fraud reported"}, "state": {r.form.Get("state")}})
		if res.Accepted || res.Error != "access_denied" || res.ErrorDescription != "fraud reported" {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("no id_token", func(t *testing.T) {
		r := start(t)
		if res := post(t, f, url.Values{"state": {r.form.Get("state")}}); res.Accepted || res.Reason != "no id_token" {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("amr narrowed by claims", func(t *testing.T) {
		hint, _ := f.IssueHint(HintOptions{Subject: "s1"})
		form, err := f.AuthorizeForm(AuthorizeParams{Hint: hint,
			Claims: `{"id_token":{"acr":{"essential":true,"values":["possession"]},"amr":{"essential":true,"values":["sms"]}}}`})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().Unix()
		c := map[string]any{"iss": p.Issuer, "aud": f.ClientID, "sub": "s1", "nonce": form.Get("nonce"),
			"acr": "possession", "amr": []string{"tel"}, "iat": now, "exp": now + 300}
		if res := post(t, f, url.Values{"id_token": {sign(t, p, c, nil, "")}, "state": {form.Get("state")}}); res.Accepted || !strings.Contains(res.Reason, "amr") {
			t.Fatalf("%+v", res)
		}
	})
	if n := len(f.Results()); n < 30 {
		t.Errorf("Results() has %d results", n)
	}
}

func TestStartPage(t *testing.T) {
	f := New(t, Options{AuthorizeURL: "http://127.0.0.1:1/entra/authorize", Person: HintOptions{PreferredUsername: "alice@contoso.example"}})
	resp, err := http.Get(f.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`action="http://127.0.0.1:1/entra/authorize"`, `name="id_token_hint"`, `name="client-request-id"`, "alice@contoso.example", `id="continue"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("start page lacks %s:\n%s", want, body)
		}
	}
}
