// Package entra makes Verigate a Microsoft Entra ID external authentication
// method (EAM): an OpenID Connect provider that Entra redirects a person to
// for their second factor, and that answers Entra with an id_token once the
// person has pressed # on a call or typed the code of a text.
//
// The contract is Microsoft's "Microsoft Entra multifactor authentication
// external method provider reference": Entra POSTs an implicit-flow
// authorize request (response_type=id_token, response_mode=form_post) with
// an id_token_hint that names the person (tid, oid, sub,
// preferred_username) and is issued expired on purpose; the provider posts
// back to Entra's redirect_uri either id_token and state, or error and
// state. Entra checks the id_token against the provider's discovery
// document and JWKS (which must carry x5c): iss, aud (the client_id Entra
// sent), sub (the hint's), nonce, one acr of those requested and one amr
// (tel for a call, sms for a text).
//
// The package has two halves:
//   - the provider (this package): signing keys with rollover, the discovery
//     document and JWKS, validation of the authorize request and its hint
//     against Entra's own discovery document, and the form posts back to
//     Entra (Authorizer);
//   - the hosted page (package entra/hosted): the flow a person sees between
//     Entra's redirect and the post back, over verify.Service.
package entra

import (
	"context"
	"net/http"
	"time"
)

// Paths under the gateway's public URL. Issuer is PublicURL+PathPrefix, so
// the discovery document sits at Issuer+"/.well-known/openid-configuration"
// as OpenID Connect Discovery requires.
const (
	PathPrefix    = "/entra"
	DiscoveryPath = PathPrefix + "/.well-known/openid-configuration"
	JWKSPath      = PathPrefix + "/jwks"
	AuthorizePath = PathPrefix + "/authorize"
)

// Method is the amr value of the id_token: how the person proved they hold
// the phone.
type Method string

// The methods Verigate completes.
const (
	MethodTel Method = "tel" // a call answered with # (or a code read by a call)
	MethodSMS Method = "sms" // the code of a text typed into the page
)

// Hint is what a validated id_token_hint says about the person.
type Hint struct {
	Issuer            string // https://login.microsoftonline.com/{tid}/v2.0
	TenantID          string // tid
	ObjectID          string // oid: the key into the directory
	Subject           string // sub: pairwise, returned as the id_token's sub
	PreferredUsername string // preferred_username: the UPN, display only
	Name              string // name, display only (may be empty)
	IssuedAt          time.Time
}

// Request is a validated authorize request from Entra.
type Request struct {
	ClientID        string   // the Entra app registration (aud of the hint, aud of our id_token)
	RedirectURI     string   // one of Entra's published endpoints (or a configured one)
	Nonce           string   // returned in the id_token
	State           string   // returned beside the id_token or the error
	ClientRequestID string   // Entra's correlation GUID, for logs
	ACR             []string // acr values requested by the claims parameter, in order
	AMR             []string // amr values the claims parameter accepts (empty: any)
	Hint            Hint
	ReceivedAt      time.Time
}

// Authorizer is the provider half as the hosted page uses it.
type Authorizer interface {
	// Authorize validates Entra's authorize POST (form body, bounded before
	// it is parsed). Errors are *AuthorizeError. A request whose hint was
	// already presented (replay) is refused.
	Authorize(ctx context.Context, r *http.Request) (*Request, error)
	// Approve writes the page that posts id_token (signed for req, with
	// amr [m]) and state to req.RedirectURI by itself (a form that submits
	// on load, with a button for browsers without script).
	Approve(ctx context.Context, w http.ResponseWriter, req *Request, m Method) error
	// Deny writes the page that posts error (access_denied or
	// temporarily_unavailable), error_description and state to
	// req.RedirectURI. It never carries a token.
	Deny(ctx context.Context, w http.ResponseWriter, req *Request, code, description string) error
}

// OAuth error codes posted back to Entra.
const (
	ErrorAccessDenied           = "access_denied"
	ErrorTemporarilyUnavailable = "temporarily_unavailable"
)

// AuthorizeError is why an authorize request was refused.
type AuthorizeError struct {
	// Reason is for the log and the error page (never a hint, code or
	// number): "unknown client_id", "redirect_uri not accepted", "hint
	// signature", ...
	Reason string
	// Request, when not nil, is the part of the request that could be
	// trusted (client_id and redirect_uri were valid): the error may then
	// be posted back to Entra with Deny. When nil, only an error page may
	// be shown: the redirect is not trusted.
	Request *Request
	Err     error
}

func (e *AuthorizeError) Error() string {
	if e.Err != nil {
		return "entra: authorize: " + e.Reason + ": " + e.Err.Error()
	}
	return "entra: authorize: " + e.Reason
}

func (e *AuthorizeError) Unwrap() error { return e.Err }

// Config is the `entra:` section of the configuration. The provider is off
// unless Apps lists at least one app.
type Config struct {
	// Apps are the app registrations in Entra that Verigate answers (the
	// client_id Entra sends): usually one multi-tenant app.
	Apps []App `yaml:"apps"`
	// Authority is Entra's login host: https://login.microsoftonline.com
	// when empty (login.microsoftonline.us and
	// login.partner.microsoftonline.cn for the national clouds). A hint's
	// issuer must be Authority/{tid}/v2.0, and its keys come from
	// Authority/{tid}/v2.0/.well-known/openid-configuration. Tests and the
	// fake Entra set a loopback http:// URL; any other must be https.
	Authority string `yaml:"authority"`
	// RedirectURIs accepted besides Entra's three published endpoints
	// (Authority/common/federation/externalauthprovider of each cloud):
	// for the fake Entra of tests and demos.
	RedirectURIs []string `yaml:"redirect_uris"`
	// Tenant is the Verigate tenant the flows' verifications belong to, so
	// that the limits of the REST API's tenant apply ("entra" when empty).
	Tenant string `yaml:"tenant"`
	// HintMaxAge bounds how old (by iat) a hint may be: 10m when 0.
	HintMaxAge time.Duration `yaml:"hint_max_age"`
	// FlowLifetime is how long a person has on the page: 10m (Entra
	// abandons the sign-in after about 10 minutes) when 0.
	FlowLifetime time.Duration `yaml:"flow_lifetime"`
	// Channels the page offers, the first tried first: [call, sms] when
	// empty.
	Channels []string `yaml:"channels"`
	// CallMode of the calls: approve (press #) when empty, or code.
	CallMode string `yaml:"call_mode"`
	Keys     Keys   `yaml:"keys"`
}

// App is one app registration.
type App struct {
	ClientID string `yaml:"client_id"`
	// Tenants, when not empty, are the only Entra tenant ids (tid) whose
	// people this app may verify.
	Tenants []string `yaml:"tenants"`
}

// Keys says where the id_token signing keys come from.
type Keys struct {
	// Files are PEM files, each an RSA private key (2048 bits or more) and
	// optionally its certificate; the first signs, the others are
	// published. When empty, keys are generated and kept in Redis (in
	// memory with --dev) so that every gateway signs alike.
	Files []string `yaml:"files"`
	// RotateEvery is the age at which a generated key is replaced: 2160h
	// (90 days) when 0.
	RotateEvery time.Duration `yaml:"rotate_every"`
	// PublishAhead is how long the next key is published before it signs:
	// 72h when 0 (Entra refreshes its cache of the JWKS every 24 hours).
	PublishAhead time.Duration `yaml:"publish_ahead"`
}

// Enabled reports whether the provider is configured.
func (c Config) Enabled() bool { return len(c.Apps) > 0 }
