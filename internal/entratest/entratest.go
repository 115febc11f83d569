// Package entratest is a fake Microsoft Entra ID on loopback, for tests and
// demos of an external authentication method (EAM) provider. It follows
// Microsoft's "Microsoft Entra multifactor authentication external method
// provider reference" and nothing of Verigate's own code: it is the other
// side of the contract, so a misreading of the reference in the provider
// shows up as a refusal here.
//
// What it does, as Entra does it:
//   - publishes its discovery document at /{tid}/v2.0/.well-known/openid-configuration
//     (issuer http://host/{tid}/v2.0) and its keys at /{tid}/discovery/v2.0/keys,
//     RSA keys with x5c, rotated on demand (RotateKeys);
//   - issues id_token_hints shaped as Entra's (ver 2.0, iss, sub, aud, exp
//     one second before iat so that the hint is expired on purpose, iat,
//     nbf, name, preferred_username, oid, tid; IssueHint);
//   - builds the authorize form Entra POSTs to the provider (AuthorizeForm),
//     and remembers what it sent;
//   - receives the provider's form_post at /common/federation/externalauthprovider
//     and validates the id_token as the reference says Entra does: keys from
//     the provider's discovery document and jwks_uri (x5c required and
//     matching n/e), RS256, iss, aud, sub, nonce, one acr and one amr of
//     those requested, exp and iat. Each post becomes a Result (Wait,
//     Results).
//
// A person can walk the flow by hand: GET / serves a start page whose
// button POSTs a fresh authorize form to the provider (SetAuthorizeURL).
package entratest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// RedirectPath is where Entra receives the provider's form_post, under
// every cloud's login host.
const RedirectPath = "/common/federation/externalauthprovider"

// DefaultClaims is the claims parameter Entra sends (the reference's
// "Example of an EAM that satisfies MFA").
const DefaultClaims = `{"id_token":{"acr":{"essential":true,"values":["possessionorinherence"]},"amr":{"essential":true,"values":["face","fido","fpt","hwk","iris","otp","pop","retina","sc","sms","swk","tel","vbm"]}}}`

// ClockSkew is the tolerance Entra's token validation library
// (Microsoft.IdentityModel) allows by default on exp, nbf and iat.
const ClockSkew = 5 * time.Minute

// Options configure a Fake. Every field may be empty.
type Options struct {
	// Addr is the listening address (127.0.0.1:0 when empty). Only
	// loopback addresses are meant: the fake trusts whoever calls it.
	Addr string
	// TenantID is the tenant of the hints IssueHint makes by default (a
	// fresh GUID when empty).
	TenantID string
	// ClientID is the provider's app registration, the aud of hints and of
	// the id_token (a fresh GUID when empty).
	ClientID string
	// ProviderDiscoveryURL is the provider's full discovery URL, as an admin
	// types it into the EAM entry (SetProviderDiscoveryURL may set it later).
	ProviderDiscoveryURL string
	// AuthorizeURL is where the start page posts (SetAuthorizeURL).
	AuthorizeURL string
	// Person is who the start page signs in (IssueHint's defaults apply).
	Person HintOptions
	// HTTPClient fetches the provider's discovery document and keys (a
	// client with a 10s timeout when nil).
	HTTPClient *http.Client
}

// Fake is a running fake Entra. It is safe for concurrent use.
type Fake struct {
	// URL is the authority, scheme://host:port with no trailing slash: the
	// fake's login.microsoftonline.com.
	URL string
	// TenantID and ClientID are the defaults of hints and authorize forms.
	TenantID, ClientID string
	// RedirectURI is URL + RedirectPath, the redirect_uri the forms carry.
	RedirectURI string

	srv    *http.Server
	ln     net.Listener
	done   chan struct{}
	client *http.Client

	mu           sync.Mutex
	keys         []*signingKey // keys[0] signs; all are published
	providerDisc string
	authorizeURL string
	person       HintOptions
	pending      map[string]*pending // by state
	results      []Result
	waited       int           // results already returned by Wait
	changed      chan struct{} // closed and replaced when a result arrives
}

// pending is what the fake sent in one authorize form, to check the
// answer against.
type pending struct {
	clientID string
	nonce    string
	sub      string
	acr, amr []string // requested values; nil: any the reference lists
	used     bool
}

// New starts a fake on 127.0.0.1 that stops when the test ends.
func New(t testing.TB, opts Options) *Fake {
	t.Helper()
	f, err := Start(opts)
	if err != nil {
		t.Fatalf("entratest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.Close(ctx); err != nil {
			t.Errorf("entratest: close: %v", err)
		}
	})
	return f
}

// Start starts a fake; Close stops it.
func Start(opts Options) (*Fake, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	key, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("entratest: listen: %w", err)
	}
	f := &Fake{
		URL:          "http://" + ln.Addr().String(),
		TenantID:     opts.TenantID,
		ClientID:     opts.ClientID,
		ln:           ln,
		done:         make(chan struct{}),
		client:       opts.HTTPClient,
		keys:         []*signingKey{key},
		providerDisc: opts.ProviderDiscoveryURL,
		authorizeURL: opts.AuthorizeURL,
		person:       opts.Person,
		pending:      map[string]*pending{},
		changed:      make(chan struct{}),
	}
	if f.TenantID == "" {
		f.TenantID = NewGUID()
	}
	if f.ClientID == "" {
		f.ClientID = NewGUID()
	}
	if f.client == nil {
		f.client = &http.Client{Timeout: 10 * time.Second}
	}
	f.RedirectURI = f.URL + RedirectPath
	f.srv = &http.Server{
		Handler:           f.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
	go func() {
		defer close(f.done)
		_ = f.srv.Serve(ln) // ends with ErrServerClosed on Close
	}()
	return f, nil
}

// Close stops the server and waits for its goroutine.
func (f *Fake) Close(ctx context.Context) error {
	err := f.srv.Shutdown(ctx)
	if err != nil {
		_ = f.srv.Close()
	}
	<-f.done
	if err != nil {
		return fmt.Errorf("entratest: shutdown: %w", err)
	}
	return nil
}

// Issuer is the issuer of the tenant's tokens: URL/{tid}/v2.0.
func (f *Fake) Issuer(tid string) string { return f.URL + "/" + tid + "/v2.0" }

// DiscoveryURL is the tenant's discovery document.
func (f *Fake) DiscoveryURL(tid string) string {
	return f.Issuer(tid) + "/.well-known/openid-configuration"
}

// JWKSURL is the tenant's jwks_uri.
func (f *Fake) JWKSURL(tid string) string { return f.URL + "/" + tid + "/discovery/v2.0/keys" }

// SetProviderDiscoveryURL sets the provider's discovery URL, for when the
// provider starts after the fake.
func (f *Fake) SetProviderDiscoveryURL(u string) {
	f.mu.Lock()
	f.providerDisc = u
	f.mu.Unlock()
}

// SetAuthorizeURL sets where the start page posts.
func (f *Fake) SetAuthorizeURL(u string) {
	f.mu.Lock()
	f.authorizeURL = u
	f.mu.Unlock()
}

// RotateKeys replaces the signing key with a new one (new kid): the old key
// is no longer published, as after an unannounced rollover at Entra.
func (f *Fake) RotateKeys() error {
	k, err := newSigningKey()
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.keys = []*signingKey{k}
	f.mu.Unlock()
	return nil
}

// KeyID is the kid of the key that signs hints now.
func (f *Fake) KeyID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.keys[0].kid
}

// AuthorizeParams is one authorize request. Empty fields take Entra's
// values or fresh random ones.
type AuthorizeParams struct {
	ClientID    string // the fake's ClientID when empty
	RedirectURI string // the fake's RedirectURI when empty
	Nonce       string // random when empty
	State       string // random when empty
	// Hint is the id_token_hint; when empty, one is issued with the start
	// page's person (Options.Person).
	Hint string
	// Claims is the claims parameter (DefaultClaims when empty). The
	// receiver accepts only acr and amr values it requests.
	Claims          string
	ClientRequestID string // a fresh GUID when empty
}

// AuthorizeForm is the form body Entra POSTs to the provider's
// authorization_endpoint. The fake remembers the nonce, client_id, the
// hint's sub and the requested acr/amr under the state, to check the
// answer posted to its redirect_uri.
func (f *Fake) AuthorizeForm(p AuthorizeParams) (url.Values, error) {
	if p.ClientID == "" {
		p.ClientID = f.ClientID
	}
	if p.RedirectURI == "" {
		p.RedirectURI = f.RedirectURI
	}
	if p.Nonce == "" {
		p.Nonce = randomString(24)
	}
	if p.State == "" {
		p.State = randomString(32)
	}
	if p.Claims == "" {
		p.Claims = DefaultClaims
	}
	if p.ClientRequestID == "" {
		p.ClientRequestID = NewGUID()
	}
	if p.Hint == "" {
		f.mu.Lock()
		person := f.person
		f.mu.Unlock()
		h, err := f.IssueHint(person)
		if err != nil {
			return nil, err
		}
		p.Hint = h
	}
	acr, amr := requestedValues(p.Claims)
	f.mu.Lock()
	f.pending[p.State] = &pending{
		clientID: p.ClientID,
		nonce:    p.Nonce,
		sub:      unverifiedSubject(p.Hint),
		acr:      acr,
		amr:      amr,
	}
	f.mu.Unlock()
	return url.Values{
		"scope":             {"openid"},
		"response_type":     {"id_token"},
		"response_mode":     {"form_post"},
		"client_id":         {p.ClientID},
		"redirect_uri":      {p.RedirectURI},
		"nonce":             {p.Nonce},
		"state":             {p.State},
		"id_token_hint":     {p.Hint},
		"claims":            {p.Claims},
		"client-request-id": {p.ClientRequestID},
	}, nil
}

// Result is what the receiver made of one post to its redirect_uri.
type Result struct {
	State            string
	Error            string         // the provider's error parameter, if any
	ErrorDescription string         // its error_description
	IDToken          map[string]any // the id_token's claims, when it could be read
	// Accepted is true only when an id_token was posted and passed every
	// check: Entra would consider MFA satisfied.
	Accepted bool
	// Reason says why it was not accepted ("" when accepted).
	Reason string
	// Method is the single amr value of an accepted token ("tel", "sms").
	Method string
}

// Results returns every result so far, in arrival order.
func (f *Fake) Results() []Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Result(nil), f.results...)
}

// Wait returns the next result that Wait has not returned yet, waiting for
// one to arrive until ctx ends.
func (f *Fake) Wait(ctx context.Context) (Result, error) {
	for {
		f.mu.Lock()
		if f.waited < len(f.results) {
			r := f.results[f.waited]
			f.waited++
			f.mu.Unlock()
			return r, nil
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Result{}, fmt.Errorf("entratest: waiting for the provider's answer: %w", ctx.Err())
		}
	}
}

func (f *Fake) record(r Result) {
	f.mu.Lock()
	f.results = append(f.results, r)
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// NewGUID is a fresh random GUID, the shape of Entra's tenant, object and
// client ids.
func NewGUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported systems
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// PairwiseSubject is the sub Entra gives a person for an app: stable for
// one oid and client id, different across apps (derived here by hashing;
// Entra's derivation is its own).
func PairwiseSubject(oid, clientID string) string {
	sum := sha256.Sum256([]byte("entratest-pairwise\x00" + oid + "\x00" + clientID))
	return base64.RawURLEncoding.EncodeToString(sum[:32])[:43]
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// errNoKey is returned when a JWKS has no usable key for a token.
var errNoKey = errors.New("no key in the provider's JWKS matches the token's kid")
