package hosted_test

import (
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/directory"
	"github.com/verigate/verigate/entra"
	"github.com/verigate/verigate/entra/hosted"
	"github.com/verigate/verigate/internal/testbuf"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/verify"
)

// fakeAuthorizer stands in for package entra's provider: Authorize takes
// the form fields oid, upn and state (refuse=untrusted|trusted makes it
// refuse), Approve and Deny write a line and record what they were asked.
type fakeAuthorizer struct {
	mu          sync.Mutex
	approved    []entra.Method
	denied      []string // code: description
	failApprove bool     // Approve fails as the provider's does when it cannot sign
}

func (a *fakeAuthorizer) setFailApprove(v bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failApprove = v
}

func (a *fakeAuthorizer) Authorize(_ context.Context, r *http.Request) (*entra.Request, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		return nil, &entra.AuthorizeError{Reason: "form", Err: err}
	}
	req := &entra.Request{
		ClientID: "app-1", RedirectURI: "https://login.example/common/federation/externalauthprovider",
		Nonce: "n-1", State: r.PostForm.Get("state"), ClientRequestID: "crid-1",
		Hint:       entra.Hint{ObjectID: r.PostForm.Get("oid"), PreferredUsername: r.PostForm.Get("upn"), TenantID: "tid-1", Subject: "sub-1"},
		ReceivedAt: time.Now(),
	}
	if amr := r.PostForm.Get("amr"); amr != "" {
		req.AMR = strings.Split(amr, ",")
	}
	switch r.PostForm.Get("refuse") {
	case "unavailable":
		return nil, &entra.AuthorizeError{Reason: "entra metadata unavailable", Request: req}
	case "untrusted":
		return nil, &entra.AuthorizeError{Reason: "unknown client_id"}
	case "trusted":
		return nil, &entra.AuthorizeError{Reason: "hint signature", Request: req}
	}
	return req, nil
}

func (a *fakeAuthorizer) Approve(_ context.Context, w http.ResponseWriter, req *entra.Request, m entra.Method) error {
	a.mu.Lock()
	fail := a.failApprove || len(req.AMR) > 0 && !slices.Contains(req.AMR, string(m))
	if !fail {
		a.approved = append(a.approved, m)
	}
	a.mu.Unlock()
	if fail {
		return fmt.Errorf("entra: amr %q cannot be signed", m)
	}
	w.WriteHeader(http.StatusOK)
	_, err := fmt.Fprintf(w, "APPROVED %s state=%s", m, req.State)
	return err
}

func (a *fakeAuthorizer) Deny(_ context.Context, w http.ResponseWriter, req *entra.Request, code, description string) error {
	a.mu.Lock()
	a.denied = append(a.denied, code+": "+description)
	a.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	_, err := fmt.Fprintf(w, "DENIED %s state=%s", code, req.State)
	return err
}

func (a *fakeAuthorizer) results() ([]entra.Method, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]entra.Method(nil), a.approved...), append([]string(nil), a.denied...)
}

// fakeDirectory knows people by oid.
type fakeDirectory map[string]directory.User

func (d fakeDirectory) Lookup(_ context.Context, q directory.Query) (directory.User, error) {
	if u, ok := d[q.OID]; ok {
		return u, nil
	}
	return directory.User{}, fmt.Errorf("oid %s: %w", q.OID, directory.ErrNotFound)
}

const (
	mobile   = "+4915123456789"
	landline = "+49301234567"
	oidAlice = "11111111-1111-1111-1111-111111111111"
	oidBob   = "22222222-2222-2222-2222-222222222222" // a landline only
	oidCarol = "33333333-3333-3333-3333-333333333333" // a landline filed as a mobile
	oidNone  = "44444444-4444-4444-4444-444444444444" // no number
)

var people = fakeDirectory{
	oidAlice: {ID: oidAlice, Numbers: []directory.Number{{E164: mobile, Kind: directory.KindMobile}}, Source: "test"},
	oidBob:   {ID: oidBob, Numbers: []directory.Number{{E164: landline, Kind: directory.KindOffice}}, Source: "test"},
	oidCarol: {ID: oidCarol, Numbers: []directory.Number{{E164: landline, Kind: directory.KindMobile}}, Source: "test"},
	oidNone:  {ID: oidNone, Source: "test"},
}

var catalogue = func() *prompts.Catalogue {
	c, err := prompts.Load(prompts.Options{})
	if err != nil {
		panic(err)
	}
	return c
}()

// env is a gateway serving the page over loopback.
type env struct {
	t    *testing.T
	svc  *verifytest.Service
	auth *fakeAuthorizer
	srv  *httptest.Server
	logs *testbuf.Buffer // the page's log and the core's
}

func newEnv(t *testing.T, cfg entra.Config, opts ...verifytest.Option) *env {
	t.Helper()
	return newEnvStore(t, cfg, nil, opts...)
}

// newEnvStore is newEnv with the flows in store (a MemoryStore on the
// service's clock when nil).
func newEnvStore(t *testing.T, cfg entra.Config, store hosted.FlowStore, opts ...verifytest.Option) *env {
	t.Helper()
	logs := &testbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts = append(opts, verifytest.WithConfig(func(c *verify.Config) { c.Logger = log }))
	svc := verifytest.NewService(t, opts...)
	auth := &fakeAuthorizer{}
	if store == nil {
		store = hosted.NewMemoryStore(svc.Clock.Now)
	}
	h, err := hosted.New(hosted.Options{
		Config: cfg, Authorizer: auth, Directory: people, Verifier: svc.Service, Texts: catalogue,
		Store: store, PublicURL: "http://127.0.0.1", Now: svc.Clock.Now, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	h.Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &env{t: t, svc: svc, auth: auth, srv: srv, logs: logs}
}

// browser is one browser: its own cookies, its language.
type browser struct {
	e    *env
	c    *http.Client
	lang string
}

func (e *env) browser(lang string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &browser{e: e, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}, lang: lang}
}

// page is a response as the browser saw it.
type page struct {
	status int
	url    string
	header http.Header
	body   string // HTML unescaped, for reading the words
	raw    string
}

func (b *browser) do(method, path string, form url.Values) page {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.srv.URL+path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return page{status: resp.StatusCode, url: resp.Request.URL.Path, header: resp.Header, body: html.UnescapeString(string(raw)), raw: string(raw)}
}

// authorize posts Entra's request for oid and returns the page it lands on.
func (b *browser) authorize(oid string, extra ...string) page {
	b.e.t.Helper()
	form := url.Values{"oid": {oid}, "state": {"st-1"}}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	return b.do(http.MethodPost, entra.AuthorizePath, form)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (p page) csrf(t *testing.T) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(p.raw)
	if m == nil {
		t.Fatalf("no CSRF token on the page (%d %s):\n%s", p.status, p.url, p.body)
	}
	return m[1]
}

// post submits one of the page's forms.
func (b *browser) post(p page, action string, fields ...string) page {
	b.e.t.Helper()
	form := url.Values{"csrf": {p.csrf(b.e.t)}, "action": {action}}
	for i := 0; i+1 < len(fields); i += 2 {
		form.Set(fields[i], fields[i+1])
	}
	return b.do(http.MethodPost, p.url, form)
}

// lastCall is the verification of the newest call placed.
func (e *env) lastCall() verify.Call {
	e.t.Helper()
	calls := e.svc.Caller.Calls()
	if len(calls) == 0 {
		e.t.Fatal("no call placed")
	}
	return calls[len(calls)-1]
}

// press reports what the call script reports on # (or 0# when fraud).
func (e *env) press(id string, fraud bool) {
	e.t.Helper()
	ev := verify.Event{Type: verify.EventCallApproved, Channel: verify.ChannelCall, Outcome: &verify.Outcome{Status: verify.StatusApproved}}
	if fraud {
		ev = verify.Event{Type: verify.EventFraudReported, Channel: verify.ChannelCall, Outcome: &verify.Outcome{Status: verify.StatusDenied, Reason: "fraud_reported"}}
	}
	if err := e.svc.Report(context.Background(), id, ev); err != nil {
		e.t.Fatal(err)
	}
}

func mustContain(t *testing.T, p page, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(p.body, w) {
			t.Fatalf("page (%d %s) does not say %q:\n%s", p.status, p.url, w, p.body)
		}
	}
}

func mustNotContain(t *testing.T, p page, nots ...string) {
	t.Helper()
	for _, w := range nots {
		if strings.Contains(p.body, w) {
			t.Fatalf("page (%d %s) says %q:\n%s", p.status, p.url, w, p.body)
		}
	}
}

// wantResults checks what was answered to Entra.
func (e *env) wantResults(approved []entra.Method, denied int) {
	e.t.Helper()
	a, d := e.auth.results()
	if fmt.Sprint(a) != fmt.Sprint(approved) || len(d) != denied {
		e.t.Fatalf("approved %v, denied %q; want approved %v and %d denials", a, d, approved, denied)
	}
}

// serveOnce posts an authorize request for oid to h and returns the
// recorded response.
func serveOnce(t *testing.T, h *hosted.Handler, oid string) *httptest.ResponseRecorder {
	t.Helper()
	e := echo.New()
	h.Register(e)
	req := httptest.NewRequest(http.MethodPost, entra.AuthorizePath, strings.NewReader(url.Values{"oid": {oid}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("authorize: %d %s", rec.Code, rec.Body)
	}
	return rec
}
