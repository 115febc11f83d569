package entratest

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"math/big"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// maxBody bounds what the fake reads from a post or from the provider.
const maxBody = 1 << 20

// tenantPattern is what the fake accepts as a tenant segment: a GUID or
// one of Entra's aliases.
var tenantPattern = regexp.MustCompile(`^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|common|organizations)$`)

// The reference's supported acr and amr values.
var (
	supportedACR = []string{"possessionorinherence", "knowledgeorpossession", "knowledgeorinherence",
		"knowledgeorpossessionorinherence", "knowledge", "possession", "inherence"}
	supportedAMR = []string{"face", "fido", "fpt", "hwk", "iris", "otp", "pop", "retina", "sc", "sms", "swk", "tel", "vbm"}
)

func (f *Fake) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tid}/v2.0/.well-known/openid-configuration", f.serveDiscovery)
	mux.HandleFunc("GET /{tid}/discovery/v2.0/keys", f.serveKeys)
	mux.HandleFunc("POST "+RedirectPath, f.serveRedirect)
	mux.HandleFunc("GET /{$}", f.serveStart)
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(b) // net/http sets Content-Length for a single small write
}

func (f *Fake) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	tid := r.PathValue("tid")
	if !tenantPattern.MatchString(tid) {
		w.WriteHeader(http.StatusBadRequest)
		writeJSON(w, map[string]any{"error": "invalid_tenant", "error_description": "AADSTS90002: Tenant '" + tid + "' not found."})
		return
	}
	issuer := f.Issuer(tid)
	if tid == "common" || tid == "organizations" {
		issuer = f.URL + "/{tenantid}/v2.0" // literally, as Entra publishes it
	}
	writeJSON(w, map[string]any{
		"token_endpoint":                        f.URL + "/" + tid + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              f.JWKSURL(tid),
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                issuer,
		"request_uri_parameter_supported":       false,
		"userinfo_endpoint":                     "https://graph.microsoft.com/oidc/userinfo",
		"authorization_endpoint":                f.URL + "/" + tid + "/oauth2/v2.0/authorize",
		"end_session_endpoint":                  f.URL + "/" + tid + "/oauth2/v2.0/logout",
		"claims_supported": []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
			"cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce",
			"preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"},
		"tenant_region_scope":           "EU",
		"cloud_instance_name":           "microsoftonline.com",
		"cloud_graph_host_name":         "graph.windows.net",
		"msgraph_host":                  "graph.microsoft.com",
		"rbac_url":                      "https://pas.windows.net",
		"kerberos_endpoint":             f.URL + "/" + tid + "/kerberos",
		"frontchannel_logout_supported": true,
		"http_logout_supported":         true,
	})
}

func (f *Fake) serveKeys(w http.ResponseWriter, r *http.Request) {
	tid := r.PathValue("tid")
	if !tenantPattern.MatchString(tid) {
		http.Error(w, "unknown tenant", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	keys := make([]jwk, 0, len(f.keys))
	for _, k := range f.keys {
		keys = append(keys, k.jwk(f.URL+"/{tenantid}/v2.0"))
	}
	f.mu.Unlock()
	writeJSON(w, map[string]any{"keys": keys})
}

var startPage = template.Must(template.New("start").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fake Microsoft Entra ID</title></head>
<body>
<h1>Fake Microsoft Entra ID</h1>
{{if .Action}}
<p>Sign in as {{.User}} (tenant {{.Tenant}}), then verify with the external method.</p>
<form method="post" action="{{.Action}}" id="authorize">
{{range $k, $v := .Form}}{{range $v}}<input type="hidden" name="{{$k}}" value="{{.}}">
{{end}}{{end}}<button type="submit" id="continue">Verify with the external method</button>
</form>
{{else}}
<p>No authorize URL is set: start the fake with the provider's authorize URL.</p>
{{end}}
</body></html>
`))

// serveStart is the page a person starts from: a fresh authorize form for
// the configured person, posted to the provider by a button.
func (f *Fake) serveStart(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	action, person := f.authorizeURL, f.person
	f.mu.Unlock()
	data := struct {
		Action, User, Tenant string
		Form                 map[string][]string
	}{Action: action}
	if action != "" {
		if person.TenantID == "" {
			person.TenantID = f.TenantID
		}
		hint, err := f.IssueHint(person)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		form, err := f.AuthorizeForm(AuthorizeParams{Hint: hint})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		data.Form = form
		data.User = person.PreferredUsername
		if data.User == "" {
			data.User = "user@contoso.example"
		}
		data.Tenant = person.TenantID
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = startPage.Execute(w, data)
}

var resultPage = template.Must(template.New("result").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fake Microsoft Entra ID: {{if .Accepted}}accepted{{else}}refused{{end}}</title></head>
<body>
{{if .Accepted}}<h1 id="outcome">MFA accepted</h1><p>Method: <span id="method">{{.Method}}</span></p>
{{else}}<h1 id="outcome">MFA refused</h1><p id="reason">{{.Reason}}</p>{{if .Error}}<p>Error: <span id="error">{{.Error}}</span> {{.ErrorDescription}}</p>{{end}}
{{end}}</body></html>
`))

// serveRedirect is Entra's redirect_uri: the provider's form_post lands
// here, is checked, recorded, and answered with a page saying the outcome.
func (f *Fake) serveRedirect(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	res := Result{}
	if err := r.ParseForm(); err != nil {
		res.Reason = "unreadable form: " + err.Error()
	} else {
		res = f.check(r.Context(), r.PostForm)
	}
	f.record(res)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !res.Accepted {
		w.WriteHeader(http.StatusBadRequest)
	}
	_ = resultPage.Execute(w, res)
}

// check validates one answer from the provider.
func (f *Fake) check(ctx context.Context, form map[string][]string) Result {
	get := func(k string) string {
		if v := form[k]; len(v) == 1 {
			return v[0]
		}
		return ""
	}
	res := Result{State: get("state"), Error: get("error"), ErrorDescription: get("error_description")}
	f.mu.Lock()
	p := f.pending[res.State]
	replay := p != nil && p.used
	if p != nil {
		p.used = true
	}
	f.mu.Unlock()
	token := get("id_token")
	switch {
	case p == nil:
		res.Reason = "unknown state"
		return res
	case replay:
		res.Reason = "state already answered"
		return res
	case res.Error != "":
		res.Reason = "provider returned error " + res.Error
		if token != "" {
			res.Reason += " beside an id_token"
		}
		return res
	case token == "":
		res.Reason = "no id_token"
		return res
	}
	claims, issuer, err := f.verify(ctx, token)
	if err != nil {
		res.Reason = err.Error()
		return res
	}
	res.IDToken = claims
	if reason := checkClaims(claims, p, issuer, time.Now()); reason != "" {
		res.Reason = reason
		return res
	}
	res.Accepted = true
	res.Method = claims["amr"].([]any)[0].(string)
	return res
}

// verify fetches the provider's discovery document and keys (as Entra
// does, though Entra caches them for a day) and checks the signature. It
// returns the claims and the provider's issuer.
func (f *Fake) verify(ctx context.Context, token string) (map[string]any, string, error) {
	f.mu.Lock()
	discURL := f.providerDisc
	f.mu.Unlock()
	if discURL == "" {
		return nil, "", errors.New("no provider discovery URL configured")
	}
	var disc struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := f.getJSON(ctx, discURL, &disc); err != nil {
		return nil, "", fmt.Errorf("provider discovery: %w", err)
	}
	if disc.Issuer == "" || disc.JWKSURI == "" {
		return nil, "", errors.New("provider discovery: issuer or jwks_uri missing")
	}
	if !slices.Contains(disc.Algs, "RS256") {
		return nil, "", errors.New("provider discovery: RS256 not in id_token_signing_alg_values_supported")
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := f.getJSON(ctx, disc.JWKSURI, &set); err != nil {
		return nil, "", fmt.Errorf("provider jwks: %w", err)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, "", fmt.Errorf("id_token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, "", errors.New("id_token: not exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	var key *jwk
	for i := range set.Keys {
		if set.Keys[i].Kid == kid || (kid == "" && len(set.Keys) == 1) {
			key = &set.Keys[i]
			break
		}
	}
	if key == nil {
		return nil, "", fmt.Errorf("id_token: %w (kid %q)", errNoKey, kid)
	}
	pub, err := key.publicKey()
	if err != nil {
		return nil, "", fmt.Errorf("provider jwks: kid %q: %w", key.Kid, err)
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return nil, "", fmt.Errorf("id_token: signature: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, "", fmt.Errorf("id_token: claims: %w", err)
	}
	return claims, disc.Issuer, nil
}

// publicKey is the RSA key of a provider's JWK, which must carry x5c
// whose first certificate holds that same key.
func (k *jwk) publicKey() (*rsa.PublicKey, error) {
	if k.Kty != "RSA" {
		return nil, fmt.Errorf("kty %q, not RSA", k.Kty)
	}
	if k.Use != "" && k.Use != "sig" {
		return nil, fmt.Errorf("use %q, not sig", k.Use)
	}
	n, err := base64.RawURLEncoding.DecodeString(k.N)
	if err != nil || len(n) == 0 {
		return nil, errors.New("n unreadable")
	}
	e, err := base64.RawURLEncoding.DecodeString(k.E)
	if err != nil || len(e) == 0 || len(e) > 4 {
		return nil, errors.New("e unreadable")
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if len(k.X5c) == 0 {
		return nil, errors.New("x5c missing")
	}
	der, err := base64.StdEncoding.DecodeString(k.X5c[0])
	if err != nil {
		return nil, fmt.Errorf("x5c: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("x5c: %w", err)
	}
	certKey, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !certKey.Equal(pub) {
		return nil, errors.New("x5c certificate's key differs from n/e")
	}
	return pub, nil
}

func (f *Fake) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if len(body) > maxBody {
		return fmt.Errorf("GET %s: body over %d bytes", u, maxBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// checkClaims applies the reference's rules for the provider's id_token;
// it returns why the token fails, or "".
func checkClaims(c map[string]any, p *pending, issuer string, now time.Time) string {
	str := func(k string) (string, bool) { s, ok := c[k].(string); return s, ok }
	if iss, _ := str("iss"); iss != issuer {
		return fmt.Sprintf("iss %q is not the provider's issuer %q", iss, issuer)
	}
	switch aud := c["aud"].(type) {
	case string:
		if aud != p.clientID {
			return "aud is not the client_id sent"
		}
	case []any:
		if len(aud) != 1 || aud[0] != p.clientID {
			return "aud is not the client_id sent"
		}
	default:
		return "aud missing"
	}
	if sub, _ := str("sub"); sub == "" || sub != p.sub {
		return "sub is not the hint's sub"
	}
	if nonce, _ := str("nonce"); nonce != p.nonce {
		return "nonce is not the one sent"
	}
	acr, ok := str("acr")
	if !ok {
		return "acr is not a single string"
	}
	wantACR := p.acr
	if wantACR == nil {
		wantACR = supportedACR
	}
	if !slices.Contains(wantACR, acr) {
		return fmt.Sprintf("acr %q was not requested", acr)
	}
	amr, ok := c["amr"].([]any)
	if !ok {
		return "amr is not an array"
	}
	if len(amr) != 1 {
		return fmt.Sprintf("amr has %d values, not one", len(amr))
	}
	method, _ := amr[0].(string)
	wantAMR := p.amr
	if wantAMR == nil {
		wantAMR = supportedAMR
	}
	if !slices.Contains(wantAMR, method) {
		return fmt.Sprintf("amr %q was not requested", method)
	}
	exp, ok := c["exp"].(float64)
	if !ok {
		return "exp missing"
	}
	if time.Unix(int64(exp), 0).Add(ClockSkew).Before(now) {
		return "id_token expired"
	}
	iat, ok := c["iat"].(float64)
	if !ok {
		return "iat missing"
	}
	issued := time.Unix(int64(iat), 0)
	if issued.After(now.Add(ClockSkew)) {
		return "iat in the future"
	}
	if issued.Before(now.Add(-time.Hour)) {
		return "iat over an hour old"
	}
	if int64(iat) > int64(exp) {
		return "iat after exp"
	}
	if nbf, ok := c["nbf"].(float64); ok && time.Unix(int64(nbf), 0).After(now.Add(ClockSkew)) {
		return "nbf in the future"
	}
	return ""
}
