// Package graphtest is a fake Microsoft Graph and Microsoft identity
// platform token endpoint on loopback, for tests of code that looks people
// up in Entra ID. It speaks the real wire format: the client credentials
// grant as a form POST to /<tenant>/oauth2/v2.0/token answered with
// {"token_type":"Bearer","expires_in":3599,"access_token":...}, and
// GET /v1.0/users/{id | userPrincipalName}?$select=... answered with the
// selected properties, or Graph's error body with 401, 404 or 429.
//
// It checks what a real tenant would refuse: a wrong client id or secret
// (401 invalid_client), a scope other than https://graph.microsoft.com/.default,
// a missing or foreign bearer token, a $select without mobilePhone and
// businessPhones.
package graphtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// User is a person in the fake tenant.
type User struct {
	ID                string // object id (GUID)
	UserPrincipalName string
	DisplayName       string
	MobilePhone       string // empty: null, as Graph sends it
	BusinessPhones    []string
}

// Fake is the running fake. Its fields may be changed between requests
// through the methods; it is safe for concurrent use.
type Fake struct {
	// TenantID, ClientID and ClientSecret are what the token endpoint accepts.
	TenantID, ClientID, ClientSecret string
	// TokenURL and BaseURL are where the client is pointed
	// (directory.GraphConfig.TokenURL and BaseURL).
	TokenURL, BaseURL string

	srv *httptest.Server

	mu         sync.Mutex
	users      map[string]User // by lower-case id and UPN
	tokens     map[string]bool
	tokenLife  time.Duration
	tokenCalls int
	userCalls  int
	failures   []Failure
	lastForm   map[string][]string
}

// Failure is an answer the fake gives to the next user request instead of
// the user: Status with RetryAfter (seconds, "" for none).
type Failure struct {
	Status     int
	RetryAfter string
}

// New starts a fake tenant holding users, stopped by t.Cleanup.
func New(t testing.TB, users ...User) *Fake {
	t.Helper()
	f := &Fake{TenantID: "11111111-2222-3333-4444-555555555555", ClientID: "66666666-7777-8888-9999-000000000000",
		ClientSecret: "fake~client~secret", users: map[string]User{}, tokens: map[string]bool{}, tokenLife: time.Hour}
	for _, u := range users {
		f.AddUser(u)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", f.token)
	mux.HandleFunc("GET /v1.0/users/{key}", f.user)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.TokenURL = f.srv.URL + "/" + f.TenantID + "/oauth2/v2.0/token"
	f.BaseURL = f.srv.URL + "/v1.0"
	return f
}

// AddUser adds or replaces a user.
func (f *Fake) AddUser(u User) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[strings.ToLower(u.ID)] = u
	if u.UserPrincipalName != "" {
		f.users[strings.ToLower(u.UserPrincipalName)] = u
	}
}

// FailNext makes the next user requests fail, one Failure each.
func (f *Fake) FailNext(fs ...Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, fs...)
}

// SetTokenLifetime sets expires_in of the tokens issued from now on.
func (f *Fake) SetTokenLifetime(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenLife = d
}

// RevokeTokens makes every token issued so far invalid (401 on use).
func (f *Fake) RevokeTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = map[string]bool{}
}

// Calls returns how many token and user requests reached the fake.
func (f *Fake) Calls() (token, user int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenCalls, f.userCalls
}

// LastTokenForm returns the form of the last token request.
func (f *Fake) LastTokenForm() map[string][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastForm
}

func graphError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (f *Fake) token(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenCalls++
	oauthError := func(status int, code string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": "AADSTS: fake " + code})
	}
	if r.PathValue("tenant") != f.TenantID {
		oauthError(http.StatusBadRequest, "invalid_request")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") || r.ParseForm() != nil {
		oauthError(http.StatusBadRequest, "invalid_request")
		return
	}
	f.lastForm = r.PostForm
	switch {
	case r.PostForm.Get("grant_type") != "client_credentials":
		oauthError(http.StatusBadRequest, "unsupported_grant_type")
	case r.PostForm.Get("scope") != "https://graph.microsoft.com/.default":
		oauthError(http.StatusBadRequest, "invalid_scope")
	case r.PostForm.Get("client_id") != f.ClientID || r.PostForm.Get("client_secret") != f.ClientSecret:
		oauthError(http.StatusUnauthorized, "invalid_client")
	default:
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		tok := "fake." + hex.EncodeToString(b)
		f.tokens[tok] = true
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": int(f.tokenLife / time.Second),
			"ext_expires_in": int(f.tokenLife / time.Second), "access_token": tok})
	}
}

func (f *Fake) user(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.userCalls++
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !f.tokens[tok] {
		graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty or invalid.")
		return
	}
	if len(f.failures) > 0 {
		fl := f.failures[0]
		f.failures = f.failures[1:]
		if fl.RetryAfter != "" {
			w.Header().Set("Retry-After", fl.RetryAfter)
		}
		graphError(w, fl.Status, "TooManyRequests", "fake failure "+strconv.Itoa(fl.Status))
		return
	}
	sel := map[string]bool{}
	for _, s := range strings.Split(r.URL.Query().Get("$select"), ",") {
		sel[s] = true
	}
	if !sel["mobilePhone"] || !sel["businessPhones"] {
		graphError(w, http.StatusBadRequest, "BadRequest", "the fake wants $select=mobilePhone,businessPhones")
		return
	}
	u, ok := f.users[strings.ToLower(r.PathValue("key"))]
	if !ok {
		graphError(w, http.StatusNotFound, "Request_ResourceNotFound", "Resource '"+r.PathValue("key")+"' does not exist.")
		return
	}
	all := map[string]any{"id": u.ID, "userPrincipalName": u.UserPrincipalName, "displayName": u.DisplayName,
		"mobilePhone": nil, "businessPhones": append([]string{}, u.BusinessPhones...)}
	if u.MobilePhone != "" {
		all["mobilePhone"] = u.MobilePhone
	}
	out := map[string]any{"@odata.context": f.BaseURL + "/$metadata#users(" + r.URL.Query().Get("$select") + ")/$entity"}
	for k := range sel {
		if v, ok := all[k]; ok {
			out[k] = v
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
