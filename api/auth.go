package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// MinAPIKeyLength is the shortest API key ParseAPIKeys accepts: shorter
// keys can be guessed.
const MinAPIKeyLength = 16

// ParseAPIKeys reads API keys in the VERIGATE_API_KEYS format,
// "tenant1:key1,tenant2:key2", into a map from key to tenant. Spaces around
// entries are ignored; a tenant may have several keys (for rotation); a key
// may not serve two tenants. Tenant names are letters, digits, '.', '_' and
// '-'. Errors name the entry by position and never quote a key.
func ParseAPIKeys(s string) (map[string]string, error) {
	keys := make(map[string]string)
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("api keys: none given: use tenant:key[,tenant:key...]")
	}
	for i, entry := range strings.Split(s, ",") {
		n := i + 1
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, fmt.Errorf("api keys: entry %d is empty (stray comma?)", n)
		}
		tenant, key, ok := strings.Cut(entry, ":")
		tenant, key = strings.TrimSpace(tenant), strings.TrimSpace(key)
		switch {
		case !ok:
			return nil, fmt.Errorf("api keys: entry %d has no ':' between tenant and key: use tenant:key", n)
		case tenant == "":
			return nil, fmt.Errorf("api keys: entry %d has no tenant before ':'", n)
		case !validTenant(tenant):
			return nil, fmt.Errorf("api keys: entry %d: tenant %q may hold only letters, digits, '.', '_' and '-'", n, tenant)
		case len(key) < MinAPIKeyLength:
			return nil, fmt.Errorf("api keys: entry %d (tenant %q): key is %d characters, need at least %d", n, tenant, len(key), MinAPIKeyLength)
		case strings.ContainsAny(key, " \t,"):
			return nil, fmt.Errorf("api keys: entry %d (tenant %q): key contains a space or comma", n, tenant)
		}
		if other, dup := keys[key]; dup {
			return nil, fmt.Errorf("api keys: entry %d (tenant %q) repeats the key of tenant %q: every key must be unique", n, tenant, other)
		}
		keys[key] = tenant
	}
	return keys, nil
}

func validTenant(t string) bool {
	if len(t) > 64 {
		return false
	}
	for _, r := range t {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}

// keyring finds the tenant of a bearer key. It holds SHA-256 digests of
// the keys so every comparison has the same length and takes the same
// time, and it compares against every key without stopping at a match.
type keyring []keyEntry

type keyEntry struct {
	digest [sha256.Size]byte
	tenant string
}

func newKeyring(keys map[string]string) (keyring, error) {
	kr := make(keyring, 0, len(keys))
	for k, t := range keys {
		if k == "" || t == "" || !validTenant(t) {
			return nil, fmt.Errorf("api: API keys need a key and a valid tenant name (tenant %q)", t)
		}
		kr = append(kr, keyEntry{digest: sha256.Sum256([]byte(k)), tenant: t})
	}
	return kr, nil
}

// tenant returns the tenant of key, or "" when no key matches.
func (kr keyring) tenant(key string) string {
	d := sha256.Sum256([]byte(key))
	var tenant string
	for i := range kr {
		if subtle.ConstantTimeCompare(d[:], kr[i].digest[:]) == 1 {
			tenant = kr[i].tenant
		}
	}
	return tenant
}

// authed wraps a handler that needs the caller's tenant: it reads the
// bearer key and answers 401 unauthorized without one that matches.
func (h *handler) authed(fn func(c echo.Context, tenant string) error) echo.HandlerFunc {
	return func(c echo.Context) error {
		auth := c.Request().Header.Get(echo.HeaderAuthorization)
		scheme, key, ok := strings.Cut(auth, " ")
		if auth == "" {
			return h.unauthorized(c, "missing API key: send the header Authorization: Bearer <key>")
		}
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return h.unauthorized(c, "the Authorization header must be Bearer <key>")
		}
		tenant := h.keys.tenant(strings.TrimSpace(key))
		if tenant == "" {
			return h.unauthorized(c, "invalid API key")
		}
		return fn(c, tenant)
	}
}

func (h *handler) unauthorized(c echo.Context, msg string) error {
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="verigate"`)
	return &Error{Status: http.StatusUnauthorized, Code: codeUnauthorized, Message: msg}
}

// Keyring finds the tenant of an API key as the v1 API's bearer auth does
// (digests compared in constant time, every key tried), for the other
// front ends that take the same keys in another form: the
// Twilio-compatible API takes them as HTTP Basic passwords.
type Keyring struct{ kr keyring }

// NewKeyring holds keys, a map from API key to tenant (ParseAPIKeys).
func NewKeyring(keys map[string]string) (*Keyring, error) {
	kr, err := newKeyring(keys)
	if err != nil {
		return nil, err
	}
	return &Keyring{kr: kr}, nil
}

// Tenant returns the tenant of key, or "" when no key matches.
func (k *Keyring) Tenant(key string) string { return k.kr.tenant(key) }
