package entra

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Bounds of what Entra's side may make the provider read and keep.
const (
	maxHint          = 16 << 10  // an id_token_hint (Entra's are about 1.5 KiB)
	maxDiscoveryBody = 64 << 10  // Entra's discovery document (about 2 KiB)
	maxJWKSBody      = 256 << 10 // Entra's JWKS (about 20 KiB with x5c)
	maxTenants       = 1024      // tenants whose metadata is cached
	metadataTimeout  = 10 * time.Second
	metadataTTL      = 24 * time.Hour // as Entra caches ours
	metadataStaleMax = 7 * 24 * time.Hour
	refreshEvery     = time.Minute // an unknown kid refetches at most this often per tenant
	// A tenant never fetched is whatever GUID a stranger wrote in a hint
	// (when an app lists no tenants): its fetches share one bucket, and a
	// failed one is not retried for a while.
	newTenantRate  = 1.0 // fetches of uncached tenants per second
	newTenantBurst = 10.0
	negativeTTL    = 5 * time.Minute
	clockSkew      = 2 * time.Minute
)

// errUnknownKey: the hint names a key the tenant's JWKS does not hold.
var errUnknownKey = errors.New("key not in the tenant's JWKS")

// metadataError: Entra's metadata could not be had (the person may try
// again: temporarily_unavailable, not a forged hint).
type metadataError struct{ err error }

func (e *metadataError) Error() string { return "entra metadata: " + e.err.Error() }
func (e *metadataError) Unwrap() error { return e.err }

// tenantKeys is what the provider knows of one Entra tenant's signing
// keys. Its mutex serialises fetches, so many hints of one tenant cause
// one fetch.
type tenantKeys struct {
	mu      sync.Mutex
	issuer  string
	keys    map[string]*rsa.PublicKey
	fetched time.Time // last successful fetch
	tried   time.Time // last fetch, successful or not
	err     error     // of the last fetch
	used    time.Time // for eviction
}

// entraMetadata fetches and caches Entra's discovery document and JWKS
// per tenant.
type entraMetadata struct {
	authority *url.URL
	client    *http.Client
	now       func() time.Time
	log       *slog.Logger

	mu      sync.Mutex
	tenants map[string]*tenantKeys
	newFill bucket // fetches of tenants not cached yet
}

// bucket is a token bucket: take spends one token, refilled at rate per
// second up to burst. Its owner's mutex guards it.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) take(now time.Time, rate, burst float64) bool {
	if b.last.IsZero() {
		b.tokens = burst
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(burst, b.tokens+d.Seconds()*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// allowNewTenant takes a token for fetching a tenant not cached yet.
func (m *entraMetadata) allowNewTenant(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.newFill.take(now, newTenantRate, newTenantBurst)
}

// errTooManyTenants: the fetch of an uncached tenant was refused by the
// global bucket.
var errTooManyTenants = errors.New("too many fetches of uncached tenants; not fetched")

func newEntraMetadata(authority string, client *http.Client, now func() time.Time, log *slog.Logger) (*entraMetadata, error) {
	u, err := url.Parse(authority)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = http.DefaultClient
	}
	c := *client
	// A redirect could lead the fetch off the authority's host.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &entraMetadata{authority: u, client: &c, now: now, log: log, tenants: map[string]*tenantKeys{}}, nil
}

// issuer is the issuer of tenant tid's tokens and discovery document.
func (m *entraMetadata) issuer(tid string) string {
	return strings.TrimRight(m.authority.String(), "/") + "/" + tid + "/v2.0"
}

func (m *entraMetadata) tenant(tid string, now time.Time) *tenantKeys {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.tenants[tid]
	if t == nil {
		if len(m.tenants) >= maxTenants {
			// Evict the least recently used tenant never fetched (a
			// stranger's GUID) before any tenant whose keys are known.
			var oldest string
			var at time.Time
			var known bool
			for k, v := range m.tenants {
				k0 := !v.fetched.IsZero()
				if oldest == "" || (known && !k0) || (known == k0 && v.used.Before(at)) {
					oldest, at, known = k, v.used, k0
				}
			}
			delete(m.tenants, oldest)
		}
		t = &tenantKeys{}
		m.tenants[tid] = t
	}
	t.used = now
	return t
}

// key returns the public key kid of tenant tid, fetching the tenant's
// metadata when it is not cached, older than a day, or lacks kid (at
// most once a minute per tenant).
func (m *entraMetadata) key(ctx context.Context, tid, kid string) (*rsa.PublicKey, error) {
	now := m.now()
	t := m.tenant(tid, now)
	t.mu.Lock()
	defer t.mu.Unlock()
	fresh := !t.fetched.IsZero() && now.Sub(t.fetched) < metadataTTL
	if k := t.keys[kid]; k != nil && fresh {
		return k, nil
	}
	// A tenant never fetched waits negativeTTL after a failure and takes
	// a token of the global bucket; a known tenant refetches at most once
	// per refreshEvery, whatever the last refetch gave.
	wait := refreshEvery
	if t.fetched.IsZero() && t.err != nil {
		wait = negativeTTL
	}
	if t.fetched.IsZero() && (t.tried.IsZero() || now.Sub(t.tried) >= wait) && !m.allowNewTenant(now) {
		m.log.Warn("entra: fetch of an uncached tenant refused: too many", "tid", tid)
		return nil, &metadataError{errTooManyTenants}
	}
	if t.tried.IsZero() || now.Sub(t.tried) >= wait {
		t.tried = now
		// The fetch serves every later hint of the tenant: it does not
		// end when this person's request does.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), metadataTimeout)
		keys, err := m.fetch(fctx, tid)
		cancel()
		t.err = err
		if err == nil {
			t.keys, t.fetched, t.issuer = keys, now, m.issuer(tid)
		} else {
			m.log.Warn("entra: tenant metadata fetch failed", "tid", tid, "err", err)
		}
	}
	k := t.keys[kid]
	switch {
	case k != nil && now.Sub(t.fetched) < metadataStaleMax:
		// Entra down: the keys of the last fetch still verify for a while.
		return k, nil
	case t.fetched.IsZero() && t.err != nil:
		return nil, &metadataError{t.err}
	case t.err != nil && now.Sub(t.fetched) >= metadataTTL:
		return nil, &metadataError{t.err}
	}
	return nil, errUnknownKey
}

func (m *entraMetadata) get(ctx context.Context, u string, limit int64, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := m.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if int64(len(body)) > limit {
		return fmt.Errorf("GET %s: body larger than %d bytes", u, limit)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// fetch reads tenant tid's discovery document, checks it, and reads the
// RSA signing keys of its jwks_uri.
func (m *entraMetadata) fetch(ctx context.Context, tid string) (map[string]*rsa.PublicKey, error) {
	want := m.issuer(tid)
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := m.get(ctx, want+"/.well-known/openid-configuration", maxDiscoveryBody, &doc); err != nil {
		return nil, err
	}
	if doc.Issuer != want {
		return nil, fmt.Errorf("discovery issuer %q is not %q", doc.Issuer, want)
	}
	ju, err := url.Parse(doc.JWKSURI)
	if err != nil || ju.Scheme != m.authority.Scheme || ju.Host != m.authority.Host {
		return nil, fmt.Errorf("jwks_uri %q is not on %s", doc.JWKSURI, m.authority.Host)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := m.get(ctx, ju.String(), maxJWKSBody, &set); err != nil {
		return nil, err
	}
	keys := map[string]*rsa.PublicKey{}
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue // one odd key does not hide the others
		}
		pub, ok := k.Key.(*rsa.PublicKey)
		if !ok || k.KeyID == "" || (k.Use != "" && k.Use != "sig") || pub.N.BitLen() < MinRSABits {
			continue
		}
		keys[k.KeyID] = pub
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("jwks_uri %s holds no RSA signing key", ju)
	}
	return keys, nil
}

// hintError is why a hint was refused.
type hintError struct {
	reason string
	err    error
}

func (e *hintError) Error() string {
	if e.err != nil {
		return e.reason + ": " + e.err.Error()
	}
	return e.reason
}
func (e *hintError) Unwrap() error { return e.err }

type hintExtra struct {
	TenantID          string `json:"tid"`
	ObjectID          string `json:"oid"`
	PreferredUsername string `json:"preferred_username"`
	Name              string `json:"name"`
}

// unverifiedTenant reads tid from a hint without checking anything: only
// to decide whether to fetch that tenant's keys at all.
func unverifiedTenant(tok *jwt.JSONWebToken) string {
	var x hintExtra
	if err := tok.UnsafeClaimsWithoutVerification(&x); err != nil {
		return ""
	}
	return x.TenantID
}

// validateHint checks an id_token_hint as Entra's reference and its
// id_token validation page say: RS256, signed by a key of the tenant's
// JWKS, iss the tenant's, aud the app, tid/oid/sub present, iat recent.
// exp is not checked: Entra issues the hint expired on purpose.
func (p *Provider) validateHint(ctx context.Context, app *App, token string, now time.Time, seen *refusalLog) (Hint, error) {
	if token == "" {
		return Hint{}, &hintError{reason: "id_token_hint missing"}
	}
	if len(token) > maxHint {
		return Hint{}, &hintError{reason: "id_token_hint too large"}
	}
	if !canonicalHint(token) {
		return Hint{}, &hintError{reason: "id_token_hint malformed (not canonical base64url)"}
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return Hint{}, &hintError{reason: "id_token_hint malformed or not RS256", err: err}
	}
	if len(tok.Headers) != 1 {
		return Hint{}, &hintError{reason: "id_token_hint malformed"}
	}
	tid := strings.ToLower(unverifiedTenant(tok))
	if !IsGUID(tid) {
		return Hint{}, &hintError{reason: "id_token_hint tid is not a tenant id"}
	}
	seen.tid = tid
	if len(app.Tenants) > 0 && !containsFold(app.Tenants, tid) {
		return Hint{}, &hintError{reason: "tenant not allowed for this client_id"}
	}
	kid := tok.Headers[0].KeyID
	if kid == "" {
		return Hint{}, &hintError{reason: "id_token_hint has no kid"}
	}
	key, err := p.entra.key(ctx, tid, kid)
	if err != nil {
		var me *metadataError
		if errors.As(err, &me) {
			return Hint{}, &hintError{reason: "entra metadata unavailable", err: err}
		}
		return Hint{}, &hintError{reason: "id_token_hint signed by an unknown key", err: err}
	}
	var std jwt.Claims
	var x hintExtra
	if err := tok.Claims(key, &std, &x); err != nil {
		return Hint{}, &hintError{reason: "id_token_hint signature", err: err}
	}
	if IsGUID(x.ObjectID) {
		seen.oid = x.ObjectID
	}
	if want := p.entra.issuer(tid); std.Issuer != want {
		return Hint{}, &hintError{reason: "id_token_hint iss"}
	}
	if len(std.Audience) != 1 || std.Audience[0] != app.ClientID {
		return Hint{}, &hintError{reason: "id_token_hint aud"}
	}
	if !strings.EqualFold(x.TenantID, tid) {
		return Hint{}, &hintError{reason: "id_token_hint tid"}
	}
	if x.ObjectID == "" || len(x.ObjectID) > 64 {
		return Hint{}, &hintError{reason: "id_token_hint oid missing"}
	}
	if std.Subject == "" || len(std.Subject) > 256 {
		return Hint{}, &hintError{reason: "id_token_hint sub missing"}
	}
	if std.IssuedAt == nil {
		return Hint{}, &hintError{reason: "id_token_hint iat missing"}
	}
	iat := std.IssuedAt.Time()
	switch {
	case iat.After(now.Add(clockSkew)):
		return Hint{}, &hintError{reason: "id_token_hint iat in the future"}
	case now.Sub(iat) > p.cfg.HintMaxAge:
		return Hint{}, &hintError{reason: "id_token_hint too old"}
	}
	return Hint{
		Issuer:            std.Issuer,
		TenantID:          tid,
		ObjectID:          x.ObjectID,
		Subject:           std.Subject,
		PreferredUsername: x.PreferredUsername,
		Name:              x.Name,
		IssuedAt:          iat,
	}, nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
