package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/verigate/verigate/internal/loopback"

	"github.com/verigate/verigate/internal/httpclient"
	"github.com/verigate/verigate/verify"
)

// GraphConfig configures the Microsoft Graph source: an app registration
// in the organisation's tenant with the application permission
// User.Read.All (admin consent), signing in with a client secret.
type GraphConfig struct {
	TenantID     string `yaml:"tenant_id"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret" secret:"true"`
	// TokenURL is the token endpoint;
	// https://login.microsoftonline.com/<tenant_id>/oauth2/v2.0/token when
	// empty. Tests (and national clouds) set it.
	TokenURL string `yaml:"token_url"`
	// BaseURL is Graph's root; https://graph.microsoft.com/v1.0 when empty.
	BaseURL string `yaml:"base_url"`
	// Scope asked for; https://graph.microsoft.com/.default when empty.
	Scope string `yaml:"scope"`
	// Timeout bounds each request (5s when 0).
	Timeout time.Duration `yaml:"timeout"`
}

// Enabled reports whether the source is configured.
func (c GraphConfig) Enabled() bool { return c.TenantID != "" || c.ClientID != "" }

// WithDefaults returns c with every unset setting at its default.
func (c GraphConfig) WithDefaults() GraphConfig {
	if c.TokenURL == "" {
		c.TokenURL = "https://login.microsoftonline.com/" + url.PathEscape(c.TenantID) + "/oauth2/v2.0/token"
	}
	if c.BaseURL == "" {
		c.BaseURL = "https://graph.microsoft.com/v1.0"
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.Scope == "" {
		c.Scope = "https://graph.microsoft.com/.default"
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	return c
}

// Validate checks the settings, naming the key at fault.
func (c GraphConfig) Validate(prefix string) error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", prefix, key, fmt.Sprintf(format, args...)))
	}
	if c.TenantID == "" {
		bad("tenant_id", "must be set (the directory's tenant id or a verified domain)")
	} else if strings.ContainsAny(c.TenantID, "/?#% ") {
		bad("tenant_id", "must be a tenant id or domain name, not %q", c.TenantID)
	}
	if c.ClientID == "" {
		bad("client_id", "must be set (the app registration's application id)")
	}
	if c.ClientSecret == "" {
		bad("client_secret", "must be set (from VERIGATE_DIRECTORY_GRAPH_CLIENT_SECRET or its _FILE)")
	}
	for _, k := range []struct{ key, v string }{{"token_url", c.TokenURL}, {"base_url", c.BaseURL}} {
		if k.v == "" {
			continue
		}
		u, err := url.Parse(k.v)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && loopback.Host(u.Hostname()))) {
			bad(k.key, "must be an https:// URL (http:// only to a loopback address), not %q", k.v)
		}
	}
	if c.Timeout < 0 || c.Timeout > time.Minute {
		bad("timeout", "must be between 0 (5s) and 1m, not %s", c.Timeout)
	}
	return errors.Join(errs...)
}

// Bounds on what Graph's and the token endpoint's answers may be read.
const (
	maxTokenBody = 64 << 10
	maxUserBody  = 256 << 10
)

// Graph is the Microsoft Graph source. It is safe for concurrent use.
type Graph struct {
	cfg    GraphConfig
	client *http.Client
	norm   normaliser
	now    func() time.Time

	mu        sync.Mutex // held while a token is fetched: one request for all waiting
	token     string
	expires   time.Time
	throttled time.Time // Graph's Retry-After: no request before then
}

// NewGraph checks cfg and prepares the source; client is one of its own
// (httpclient.NewClient: connections kept for reuse under load) when nil.
func NewGraph(cfg GraphConfig, parser verify.NumberParser, client *http.Client, log *slog.Logger) (*Graph, error) {
	if err := cfg.Validate("graph"); err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	if parser == nil {
		return nil, errors.New("directory: graph: no number parser")
	}
	if client == nil {
		client = httpclient.NewClient(httpclient.Options{})
	}
	return &Graph{cfg: cfg.WithDefaults(), client: client, now: time.Now,
		norm: normaliser{parser: parser, log: discardIfNil(log), source: "graph"}}, nil
}

// graphUser is the part of Graph's user resource Verigate reads.
type graphUser struct {
	ID             string   `json:"id"`
	DisplayName    string   `json:"displayName"`
	MobilePhone    *string  `json:"mobilePhone"`
	BusinessPhones []string `json:"businessPhones"`
}

// graphSelect is the $select of every user request: nothing more is read.
const graphSelect = "id,displayName,mobilePhone,businessPhones"

// Lookup implements Directory: GET /users/{oid}, else /users/{upn};
// Graph has no key for a bare user name, so a query with only Username is
// not found here.
func (g *Graph) Lookup(ctx context.Context, q Query) (User, error) {
	var key string
	switch {
	case q.OID != "":
		if !guid.MatchString(q.OID) {
			return User{}, fmt.Errorf("graph: oid %q is not a GUID: %w", q.OID, ErrNotFound)
		}
		key = q.OID
	case q.UPN != "":
		// A UPN is local@domain with none of the URL's syntax; one that
		// starts with $ Graph would read as a function call.
		if len(q.UPN) > maxKeyLength || !strings.Contains(q.UPN, "@") || strings.HasPrefix(q.UPN, "$") ||
			strings.ContainsAny(q.UPN, "/\\?#% \t\r\n") {
			return User{}, fmt.Errorf("graph: %q is not a user principal name: %w", q.UPN, ErrNotFound)
		}
		key = q.UPN
	default:
		return User{}, fmt.Errorf("graph: looks up by oid or upn only: %w", ErrNotFound)
	}
	gu, err := g.getUser(ctx, key, true)
	if err != nil {
		return User{}, err
	}
	u := User{ID: gu.ID, DisplayName: gu.DisplayName, Source: "graph"}
	if gu.MobilePhone != nil {
		u.Numbers = g.norm.add(u.Numbers, u.ID, KindMobile, *gu.MobilePhone)
	}
	u.Numbers = g.norm.add(u.Numbers, u.ID, KindOffice, gu.BusinessPhones...)
	g.norm.log.Debug("directory: found", "source", "graph", "user", u.ID, "numbers", maskedNumbers(u.Numbers))
	return u, nil
}

func (g *Graph) getUser(ctx context.Context, key string, retryAuth bool) (graphUser, error) {
	g.mu.Lock()
	until := g.throttled
	g.mu.Unlock()
	if wait := until.Sub(g.now()); wait > 0 {
		return graphUser{}, &UnavailableError{Source: "graph", RetryAfter: wait, Err: errors.New("throttled by Graph")}
	}
	token, err := g.accessToken(ctx)
	if err != nil {
		return graphUser{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	u := g.cfg.BaseURL + "/users/" + url.PathEscape(key) + "?$select=" + graphSelect
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return graphUser{}, fmt.Errorf("directory: graph: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		return graphUser{}, &UnavailableError{Source: "graph", Err: fmt.Errorf("get user: %w", err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUserBody+1))
	if err != nil {
		return graphUser{}, &UnavailableError{Source: "graph", Err: fmt.Errorf("read user: %w", err)}
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound:
		return graphUser{}, fmt.Errorf("graph: %w", ErrNotFound)
	case resp.StatusCode == http.StatusUnauthorized && retryAuth:
		// The token may have been revoked or rolled early: one new token.
		g.mu.Lock()
		g.token = ""
		g.mu.Unlock()
		return g.getUser(ctx, key, false)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		ra := retryAfter(resp.Header.Get("Retry-After"), g.now())
		if ra > 0 {
			g.mu.Lock()
			if t := g.now().Add(ra); t.After(g.throttled) {
				g.throttled = t
			}
			g.mu.Unlock()
		}
		return graphUser{}, &UnavailableError{Source: "graph", RetryAfter: ra, Err: fmt.Errorf("get user: %s%s", resp.Status, graphErrorCode(body))}
	default:
		// 403: the app lacks User.Read.All or admin consent.
		return graphUser{}, fmt.Errorf("directory: graph: get user: %s%s", resp.Status, graphErrorCode(body))
	}
	if len(body) > maxUserBody {
		return graphUser{}, fmt.Errorf("directory: graph: user larger than %d KiB", maxUserBody>>10)
	}
	var gu graphUser
	if err := json.Unmarshal(body, &gu); err != nil {
		return graphUser{}, fmt.Errorf("directory: graph: user: %w", err)
	}
	if gu.ID == "" {
		return graphUser{}, errors.New("directory: graph: user without an id")
	}
	return gu, nil
}

// graphErrorCode returns ": <code>" of Graph's or the identity platform's
// error body, which names the cause (Authorization_RequestDenied,
// invalid_client) without echoing anything secret.
func graphErrorCode(body []byte) string {
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Error) == 0 {
		return ""
	}
	var code string
	if json.Unmarshal(e.Error, &code) == nil { // identity platform: "error":"invalid_client"
		return ": " + code
	}
	var obj struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(e.Error, &obj) == nil && obj.Code != "" { // Graph: "error":{"code":...}
		return ": " + obj.Code
	}
	return ""
}

// retryAfter parses Retry-After (seconds or an HTTP date), bounded to an
// hour; 0 when absent or unreadable.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, time.Hour))
}

// tokenSkew renews a token this long before it expires, so that none
// expires on its way to Graph.
const tokenSkew = 2 * time.Minute

// accessToken returns the cached app-only token, or fetches one with the
// client credentials grant.
func (g *Graph) accessToken(ctx context.Context) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.token != "" && g.now().Before(g.expires) {
		return g.token, nil
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {g.cfg.ClientID},
		"client_secret": {g.cfg.ClientSecret},
		"scope":         {g.cfg.Scope},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("directory: graph: token: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		return "", &UnavailableError{Source: "graph", Err: fmt.Errorf("token: %w", err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	if err != nil {
		return "", &UnavailableError{Source: "graph", Err: fmt.Errorf("token: %w", err)}
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return "", &UnavailableError{Source: "graph", RetryAfter: retryAfter(resp.Header.Get("Retry-After"), g.now()),
			Err: fmt.Errorf("token: %s%s", resp.Status, graphErrorCode(body))}
	}
	if resp.StatusCode != http.StatusOK {
		// 400/401: a wrong client id or secret, an expired secret.
		return "", fmt.Errorf("directory: graph: token: %s%s", resp.Status, graphErrorCode(body))
	}
	var tr struct {
		TokenType   string          `json:"token_type"`
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"` // a number, or a string on older endpoints
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return "", fmt.Errorf("directory: graph: token: %w", err)
	}
	secs, err := strconv.Atoi(strings.Trim(string(tr.ExpiresIn), `"`))
	if err != nil || tr.AccessToken == "" || !strings.EqualFold(tr.TokenType, "Bearer") {
		return "", errors.New("directory: graph: token: the answer has no bearer token with expires_in")
	}
	g.token = tr.AccessToken
	g.expires = g.now().Add(time.Duration(secs)*time.Second - tokenSkew)
	return g.token, nil
}
