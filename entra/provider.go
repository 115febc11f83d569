package entra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
)

// Bounds of the authorize request, checked before anything is parsed.
const (
	maxAuthorizeBody = 64 << 10
	maxClaimsParam   = 8 << 10
	maxClaimValues   = 32
	maxStateLen      = 4 << 10
	maxNonceLen      = 1 << 10
	maxDescription   = 256
	// IDTokenLifetime is how long the id_token posted to Entra is valid.
	IDTokenLifetime = 5 * time.Minute
	// ringRefresh is how often the provider rereads its signing keys from
	// the store (where the rollover is decided).
	ringRefresh = time.Minute
)

// Options are what New needs besides the configuration.
type Options struct {
	// HTTPClient fetches Entra's discovery documents and JWKS;
	// http.DefaultClient when nil. Redirects are never followed.
	HTTPClient *http.Client
	// Redis keeps generated signing keys and presented hints for every
	// gateway; nil keeps them in memory (one gateway, --dev).
	Redis redis.UniversalClient
	// Secret seals the generated private keys kept in Redis (the
	// gateway's secret, the same on every gateway); required with Redis.
	Secret []byte
	// RedisPrefix starts the provider's Redis keys: "vg:" when empty.
	RedisPrefix string
	Logger      *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Provider is the OpenID Connect provider Entra talks to: the discovery
// document, the JWKS, and the Authorizer the hosted page uses.
type Provider struct {
	cfg       Config
	issuer    string
	publicURL string
	apps      map[string]*App
	redirects map[string]bool
	keys      keyStore
	replay    replayStore
	entra     *entraMetadata
	log       *slog.Logger
	now       func() time.Time
	discovery []byte

	ringMu sync.Mutex
	ringAt time.Time
	ringC  keyRing
}

var _ Authorizer = (*Provider)(nil)

// New builds the provider of cfg for a gateway reachable at publicURL
// (the discovery document names its endpoints under it). It reads the
// key files, or makes or loads the generated keys, now.
func New(ctx context.Context, cfg Config, publicURL string, opts Options) (*Provider, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate("entra"); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, errors.New("entra: no apps configured")
	}
	pu, err := url.Parse(publicURL)
	if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" || pu.RawQuery != "" || pu.Fragment != "" {
		return nil, fmt.Errorf("entra: public URL must be an absolute http(s) URL, not %q", publicURL)
	}
	publicURL = strings.TrimRight(publicURL, "/")
	p := &Provider{
		cfg:       cfg,
		publicURL: publicURL,
		issuer:    publicURL + PathPrefix,
		apps:      map[string]*App{},
		redirects: map[string]bool{},
		log:       opts.Logger,
		now:       opts.Now,
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.now == nil {
		p.now = time.Now
	}
	for i := range cfg.Apps {
		p.apps[cfg.Apps[i].ClientID] = &cfg.Apps[i]
		if len(cfg.Apps[i].Tenants) == 0 {
			p.log.Warn("entra: app lists no tenants: hints of any tenant that consented are taken, and strangers may make the gateway fetch any tenant's metadata (rate-limited)",
				"client_id", cfg.Apps[i].ClientID)
		}
	}
	for _, r := range append(slices.Clone(EntraRedirectURIs), cfg.RedirectURIs...) {
		p.redirects[r] = true
	}
	prefix := opts.RedisPrefix
	if prefix == "" {
		prefix = "vg:"
	}
	switch {
	case len(cfg.Keys.Files) > 0:
		var ks staticKeys
		for _, f := range cfg.Keys.Files {
			k, err := loadKeyFile(f)
			if err != nil {
				return nil, fmt.Errorf("entra: %w", err)
			}
			ks = append(ks, k)
		}
		p.keys = ks
	case opts.Redis != nil:
		seal, err := sealKeys(opts.Secret)
		if err != nil {
			return nil, fmt.Errorf("entra: keys in redis: %w", err)
		}
		p.keys = &redisKeys{sched: newSchedule(cfg.Keys), c: opts.Redis, key: prefix + RedisKeysKey, seal: seal}
	default:
		p.keys = &memoryKeys{sched: newSchedule(cfg.Keys)}
	}
	if opts.Redis != nil {
		p.replay = &redisReplay{c: opts.Redis, prefix: prefix + "entra:hint:"}
	} else {
		p.replay = newMemoryReplay()
	}
	if p.entra, err = newEntraMetadata(cfg.Authority, opts.HTTPClient, p.now, p.log); err != nil {
		return nil, fmt.Errorf("entra: authority: %w", err)
	}
	if _, err := p.ring(ctx); err != nil {
		return nil, err
	}
	if p.discovery, err = json.Marshal(p.Discovery()); err != nil {
		return nil, err
	}
	return p, nil
}

// Issuer is the iss of the provider's id_tokens: publicURL+PathPrefix.
func (p *Provider) Issuer() string { return p.issuer }

// Config is the configuration in force, defaults applied.
func (p *Provider) Config() Config { return p.cfg }

// Metadata is the provider's OpenID Connect discovery document.
type Metadata struct {
	Issuer                           string   `json:"issuer"`
	AuthorizationEndpoint            string   `json:"authorization_endpoint"`
	JWKSURI                          string   `json:"jwks_uri"`
	ResponseTypesSupported           []string `json:"response_types_supported"`
	ResponseModesSupported           []string `json:"response_modes_supported"`
	ScopesSupported                  []string `json:"scopes_supported"`
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	ClaimTypesSupported              []string `json:"claim_types_supported"`
	ClaimsSupported                  []string `json:"claims_supported"`
	GrantTypesSupported              []string `json:"grant_types_supported"`
	ClaimsParameterSupported         bool     `json:"claims_parameter_supported"`
}

// Discovery returns the discovery document.
func (p *Provider) Discovery() Metadata {
	return Metadata{
		Issuer:                           p.issuer,
		AuthorizationEndpoint:            p.publicURL + AuthorizePath,
		JWKSURI:                          p.publicURL + JWKSPath,
		ResponseTypesSupported:           []string{"id_token"},
		ResponseModesSupported:           []string{"form_post"},
		ScopesSupported:                  []string{"openid"},
		SubjectTypesSupported:            []string{"public"},
		IDTokenSigningAlgValuesSupported: []string{string(jose.RS256)},
		ClaimTypesSupported:              []string{"normal"},
		ClaimsSupported:                  []string{"iss", "aud", "exp", "iat", "nbf", "sub", "nonce", "acr", "amr", "tid", "oid"},
		GrantTypesSupported:              []string{"implicit"},
		ClaimsParameterSupported:         true,
	}
}

// Register serves the discovery document and the JWKS on e. The
// authorize endpoint (AuthorizePath) is the hosted page's.
func (p *Provider) Register(e *echo.Echo) {
	e.GET(DiscoveryPath, func(c echo.Context) error {
		return writeJSON(c.Response(), p.discovery, "public, max-age=3600")
	})
	e.GET(JWKSPath, func(c echo.Context) error {
		body, err := p.JWKS(c.Request().Context())
		if err != nil {
			p.log.Error("entra: jwks", "err", err)
			return echo.NewHTTPError(http.StatusServiceUnavailable, "signing keys unavailable")
		}
		// Entra caches for a day; an hour here keeps browsers and proxies
		// from asking often while a rollover still shows within Entra's
		// own refresh.
		return writeJSON(c.Response(), body, "public, max-age=3600")
	})
}

// writeJSON writes body with its Content-Length, which Entra requires of
// the discovery document.
func writeJSON(w http.ResponseWriter, body []byte, cache string) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", cache)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(body)
	return err
}

// JWKS returns the JSON Web Key Set: every published key (the previous
// one for a day after rollover, the current one, the next one ahead of
// its turn), each with x5c and x5t.
func (p *Provider) JWKS(ctx context.Context) ([]byte, error) {
	r, err := p.ring(ctx)
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	for _, k := range r.published {
		set.Keys = append(set.Keys, k.jwk())
	}
	return json.Marshal(set)
}

// ring returns the signing keys, reread from the store at most once a
// minute. A store that fails after a good read leaves the last ring in
// use (and says so): the keys it holds stay valid for days.
func (p *Provider) ring(ctx context.Context) (keyRing, error) {
	p.ringMu.Lock()
	defer p.ringMu.Unlock()
	now := p.now()
	if p.ringC.signer != nil && now.Sub(p.ringAt) < ringRefresh && !now.Before(p.ringAt) {
		return p.ringC, nil
	}
	r, err := p.keys.ring(ctx, now)
	if err != nil {
		if p.ringC.signer != nil {
			p.log.Warn("entra: signing keys not refreshed; the last ones stay in use", "err", err)
			return p.ringC, nil
		}
		return keyRing{}, err
	}
	p.ringC, p.ringAt = r, now
	return r, nil
}

// Authorize implements Authorizer. Every refusal is logged with its
// reason, Entra's client-request-id, the tenant and the start of the oid.
func (p *Provider) Authorize(ctx context.Context, r *http.Request) (*Request, error) {
	var seen refusalLog
	req, err := p.authorize(ctx, r, &seen)
	if err != nil {
		var ae *AuthorizeError
		if !errors.As(err, &ae) {
			ae = &AuthorizeError{Reason: "internal error", Err: err}
			err = ae
		}
		attrs := []any{"reason", ae.Reason, "redirect_trusted", ae.Request != nil,
			"client_request_id", seen.clientRequestID, "tid", seen.tid, "oid", TruncOID(seen.oid)}
		if ae.Err != nil {
			attrs = append(attrs, "err", ae.Err)
		}
		p.log.Warn("entra: authorize refused", attrs...)
		return nil, err
	}
	return req, nil
}

// refusalLog is what the log of a refusal may say about the request: the
// correlation id and the tenant and object ids as far as they were read
// (the tid of a refused hint is the one it claims, checked to be a GUID).
type refusalLog struct{ clientRequestID, tid, oid string }

// TruncOID is an object id as logs show it: enough to tell people apart
// in one tenant, not the whole identifier. One policy for every log line.
func TruncOID(oid string) string {
	if len(oid) > 8 {
		return oid[:8] + "…"
	}
	return oid
}

type formValues url.Values

// one returns the single value of name; a parameter given twice is an
// error (OAuth 2.0 §3.1), so no two parsers can read different values.
func (f formValues) one(name string) (string, error) {
	v := f[name]
	switch len(v) {
	case 0:
		return "", nil
	case 1:
		return v[0], nil
	}
	return "", fmt.Errorf("%s given %d times", name, len(v))
}

func (p *Provider) authorize(ctx context.Context, r *http.Request, seen *refusalLog) (*Request, error) {
	now := p.now()
	if id := r.Header.Get("client-request-id"); IsGUID(id) {
		seen.clientRequestID = id
	}
	refuse := func(req *Request, reason string, err error) (*Request, error) {
		return nil, &AuthorizeError{Reason: reason, Request: req, Err: err}
	}
	if r.Method != http.MethodPost || r.Body == nil {
		return refuse(nil, "method not allowed", nil)
	}
	vals, reason, err := readForm(r)
	if reason != "" {
		return refuse(nil, reason, err)
	}
	f := formValues(vals)
	if id, _ := f.one("client-request-id"); IsGUID(id) {
		seen.clientRequestID = id
	}
	clientID, err := f.one("client_id")
	if err != nil {
		return refuse(nil, "client_id malformed", err)
	}
	app := p.apps[clientID]
	if app == nil {
		return refuse(nil, "unknown client_id", nil)
	}
	redirect, err := f.one("redirect_uri")
	if err == nil && redirect == "" && len(f["redirect_uri"]) == 0 {
		// The reference's table spells it redirect_url once.
		redirect, err = f.one("redirect_url")
	}
	if err != nil || !p.redirects[redirect] {
		return refuse(nil, "redirect_uri not accepted", err)
	}
	req := &Request{ClientID: clientID, RedirectURI: redirect, ReceivedAt: now}
	// From here the redirect is trusted: the refusal can be posted back.
	if req.State, err = f.one("state"); err != nil || len(req.State) > maxStateLen {
		req.State = ""
		return refuse(req, "state malformed", err)
	}
	if req.Nonce, err = f.one("nonce"); err != nil || len(req.Nonce) > maxNonceLen {
		req.Nonce = ""
		return refuse(req, "nonce malformed", err)
	}
	req.ClientRequestID = seen.clientRequestID
	if s, err := f.one("scope"); err != nil || !slices.Contains(strings.Fields(s), "openid") {
		return refuse(req, "scope lacks openid", err)
	}
	if s, err := f.one("response_type"); err != nil || !strings.EqualFold(s, "id_token") {
		// The reference writes Id_token; OAuth values are case-sensitive,
		// but refusing Entra's own spelling would help nobody.
		return refuse(req, "response_type is not id_token", err)
	}
	if s, err := f.one("response_mode"); err != nil || s != "form_post" {
		return refuse(req, "response_mode is not form_post", err)
	}
	claims, err := f.one("claims")
	if err != nil {
		return refuse(req, "claims malformed", err)
	}
	if req.ACR, req.AMR, err = parseClaims(claims); err != nil {
		return refuse(req, "claims malformed", err)
	}
	if len(req.ACR) > 0 && chooseACR(req.ACR) == "" {
		return refuse(req, "no requested acr is met by a phone (possession)", nil)
	}
	if len(req.AMR) > 0 && !slices.Contains(req.AMR, string(MethodTel)) && !slices.Contains(req.AMR, string(MethodSMS)) {
		return refuse(req, "amr accepts neither tel nor sms", nil)
	}
	hint, err := f.one("id_token_hint")
	if err != nil {
		return refuse(req, "id_token_hint malformed", err)
	}
	if req.Hint, err = p.validateHint(ctx, app, hint, now, seen); err != nil {
		var he *hintError
		if errors.As(err, &he) {
			return refuse(req, he.reason, he.err)
		}
		return refuse(req, "id_token_hint", err)
	}
	first, err := p.replay.firstUse(ctx, hintID(hint), p.cfg.HintMaxAge+p.cfg.FlowLifetime, now)
	if err != nil {
		return refuse(req, "replay check unavailable", err)
	}
	seen.tid, seen.oid = req.Hint.TenantID, req.Hint.ObjectID
	if !first {
		return refuse(req, "id_token_hint replayed", nil)
	}
	return req, nil
}

// readForm reads the POSTed form, within maxAuthorizeBody, ignoring the
// query string (Entra sends everything in the body). A request whose form
// the caller already parsed (r.PostForm set; the caller bounded its body)
// is taken as parsed. A refusal returns its reason.
func readForm(r *http.Request) (url.Values, string, error) {
	if r.PostForm != nil {
		return r.PostForm, "", nil
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, "body is not a form", nil
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxAuthorizeBody+1))
	if err != nil {
		return nil, "body unreadable", err
	}
	if len(raw) > maxAuthorizeBody {
		return nil, "body too large", nil
	}
	vals, err := url.ParseQuery(string(raw))
	if err != nil {
		return nil, "body malformed", err
	}
	return vals, "", nil
}

// IsUnavailable reports whether err (from Authorize) is a passing trouble
// on the provider's side (Entra's metadata or Redis unreachable): the
// page then answers temporarily_unavailable, not access_denied.
func IsUnavailable(err error) bool {
	var ae *AuthorizeError
	if !errors.As(err, &ae) {
		return false
	}
	return ae.Reason == "entra metadata unavailable" || ae.Reason == "replay check unavailable"
}

// possessionACR are the acr values a phone (something you have) meets.
var possessionACR = []string{"possession", "possessionorinherence", "knowledgeorpossession", "knowledgeorpossessionorinherence"}

// chooseACR returns the first requested acr a phone meets ("possession"
// when none was requested), or "" when none is.
func chooseACR(requested []string) string {
	if len(requested) == 0 {
		return "possession"
	}
	for _, a := range requested {
		if slices.Contains(possessionACR, a) {
			return a
		}
	}
	return ""
}

// claimRequest is one member of the claims parameter (OpenID Connect Core
// §5.5.1): value or values.
type claimRequest struct {
	Essential bool     `json:"essential"`
	Value     *string  `json:"value"`
	Values    []string `json:"values"`
}

func (c *claimRequest) list() []string {
	if c == nil {
		return nil
	}
	out := slices.Clone(c.Values)
	if c.Value != nil {
		out = append(out, *c.Value)
	}
	return out
}

// parseClaims reads the acr and amr values of the claims parameter's
// id_token member.
func parseClaims(s string) (acr, amr []string, err error) {
	if s == "" {
		return nil, nil, nil
	}
	if len(s) > maxClaimsParam {
		return nil, nil, fmt.Errorf("claims longer than %d bytes", maxClaimsParam)
	}
	var c struct {
		IDToken struct {
			ACR *claimRequest `json:"acr"`
			AMR *claimRequest `json:"amr"`
		} `json:"id_token"`
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return nil, nil, err
	}
	acr, amr = c.IDToken.ACR.list(), c.IDToken.AMR.list()
	if len(acr) > maxClaimValues || len(amr) > maxClaimValues {
		return nil, nil, fmt.Errorf("more than %d acr or amr values", maxClaimValues)
	}
	return acr, amr, nil
}

// idTokenClaims are the provider's own claims beside the registered ones.
type idTokenClaims struct {
	Nonce    string   `json:"nonce,omitempty"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	TenantID string   `json:"tid,omitempty"`
	ObjectID string   `json:"oid,omitempty"`
}

// IDToken signs the id_token of an approved req with the current key.
func (p *Provider) IDToken(ctx context.Context, req *Request, m Method) (string, error) {
	if req == nil {
		return "", errors.New("entra: no request")
	}
	if m != MethodTel && m != MethodSMS {
		return "", fmt.Errorf("entra: method %q is neither tel nor sms", m)
	}
	if len(req.AMR) > 0 && !slices.Contains(req.AMR, string(m)) {
		return "", fmt.Errorf("entra: amr %q was not among those requested", m)
	}
	acr := chooseACR(req.ACR)
	if acr == "" {
		return "", errors.New("entra: no requested acr is met by a phone")
	}
	if req.Hint.Subject == "" {
		return "", errors.New("entra: request without a validated hint")
	}
	now := p.now()
	if !req.ReceivedAt.IsZero() && now.Sub(req.ReceivedAt) > p.cfg.FlowLifetime {
		return "", errors.New("entra: the flow outlived its lifetime (Entra has given up on it)")
	}
	r, err := p.ring(ctx)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.RS256,
		Key:       jose.JSONWebKey{Key: r.signer.Key, KeyID: r.signer.ID, Algorithm: string(jose.RS256)},
	}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("entra: signer: %w", err)
	}
	std := jwt.Claims{
		Issuer:    p.issuer,
		Subject:   req.Hint.Subject,
		Audience:  jwt.Audience{req.ClientID},
		Expiry:    jwt.NewNumericDate(now.Add(IDTokenLifetime)),
		NotBefore: jwt.NewNumericDate(now),
		IssuedAt:  jwt.NewNumericDate(now),
	}
	extra := idTokenClaims{Nonce: req.Nonce, ACR: acr, AMR: []string{string(m)}, TenantID: req.Hint.TenantID, ObjectID: req.Hint.ObjectID}
	tok, err := jwt.Signed(signer).Claims(std).Claims(extra).Serialize()
	if err != nil {
		return "", fmt.Errorf("entra: sign id_token: %w", err)
	}
	return tok, nil
}

// Approve implements Authorizer.
func (p *Provider) Approve(ctx context.Context, w http.ResponseWriter, req *Request, m Method) error {
	tok, err := p.IDToken(ctx, req, m)
	if err != nil {
		return err
	}
	fields := []field{{"id_token", tok}}
	if req.State != "" {
		fields = append(fields, field{"state", req.State})
	}
	p.log.Info("entra: approved", "client_request_id", req.ClientRequestID, "tid", req.Hint.TenantID,
		"oid", TruncOID(req.Hint.ObjectID), "amr", string(m))
	return writePostPage(w, req.RedirectURI, fields)
}

// Deny implements Authorizer. code must be ErrorAccessDenied or
// ErrorTemporarilyUnavailable; the description is cut to printable ASCII
// (RFC 6749 §4.1.2.1) and 256 bytes.
func (p *Provider) Deny(ctx context.Context, w http.ResponseWriter, req *Request, code, description string) error {
	if req == nil {
		return errors.New("entra: no trusted request to answer")
	}
	if code != ErrorAccessDenied && code != ErrorTemporarilyUnavailable {
		return fmt.Errorf("entra: error code %q is neither %s nor %s", code, ErrorAccessDenied, ErrorTemporarilyUnavailable)
	}
	fields := []field{{"error", code}}
	if d := oauthText(description); d != "" {
		fields = append(fields, field{"error_description", d})
	}
	if req.State != "" {
		fields = append(fields, field{"state", req.State})
	}
	p.log.Info("entra: denied", "client_request_id", req.ClientRequestID, "tid", req.Hint.TenantID,
		"oid", TruncOID(req.Hint.ObjectID), "error", code)
	return writePostPage(w, req.RedirectURI, fields)
}

// oauthText keeps the characters RFC 6749 allows in error_description.
func oauthText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < maxDescription; i++ {
		c := s[i]
		if c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b.WriteByte(c)
		} else {
			b.WriteByte(' ')
		}
	}
	return strings.TrimSpace(b.String())
}
