package e2e_test

import (
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/directory"
	"github.com/verigate/verigate/entra"
	"github.com/verigate/verigate/entra/hosted"
	"github.com/verigate/verigate/internal/browsertest"
	"github.com/verigate/verigate/internal/entratest"
	"github.com/verigate/verigate/internal/testbuf"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/verify"
)

const (
	mobile   = "+4915123456789"
	oidAlice = "951ddb04-b16d-45f3-bbf7-b0fa18fa7aee"
)

// people is the directory: Alice and her mobile.
type people map[string]directory.User

func (d people) Lookup(_ context.Context, q directory.Query) (directory.User, error) {
	if u, ok := d[q.OID]; ok {
		return u, nil
	}
	return directory.User{}, fmt.Errorf("oid %s: %w", q.OID, directory.ErrNotFound)
}

// gateway is Verigate's provider and page over loopback, with the fake
// Entra pointed at them.
type gateway struct {
	svc  *verifytest.Service
	fake *entratest.Fake
	url  string
	logs *testbuf.Buffer
}

func newGateway(t *testing.T, channels []string) *gateway {
	t.Helper()
	logs := &testbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := verifytest.NewService(t, verifytest.WithClock(verifytest.NewClock(time.Now())),
		verifytest.WithConfig(func(c *verify.Config) { c.Logger = log }))
	fake := entratest.New(t, entratest.Options{Person: entratest.HintOptions{
		ObjectID: oidAlice, PreferredUsername: "alice@contoso.example", Name: "Alice Example"}})

	e := echo.New()
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	cfg := entra.Config{
		Apps:         []entra.App{{ClientID: fake.ClientID}},
		Authority:    fake.URL,
		RedirectURIs: []string{fake.RedirectURI},
		Channels:     channels,
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p, err := entra.New(ctx, cfg, srv.URL, entra.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	p.Register(e)
	cat, err := prompts.Load(prompts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hosted.New(hosted.Options{
		Config: p.Config(), Authorizer: p, Verifier: svc.Service, Texts: cat, PublicURL: srv.URL, Logger: log,
		Directory: people{oidAlice: {ID: oidAlice, Numbers: []directory.Number{{E164: mobile, Kind: directory.KindMobile}}, Source: "test"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.Register(e)
	fake.SetProviderDiscoveryURL(srv.URL + entra.DiscoveryPath)
	fake.SetAuthorizeURL(srv.URL + entra.AuthorizePath)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s\nfake Entra's results: %+v", logs.String(), fake.Results())
		}
	})
	return &gateway{svc: svc, fake: fake, url: srv.URL, logs: logs}
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// accepted waits for the fake Entra's verdict and requires acceptance
// with method.
func (g *gateway) accepted(t *testing.T, method string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := g.fake.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Accepted || r.Method != method {
		t.Fatalf("fake Entra: accepted=%v method=%q reason=%q error=%q", r.Accepted, r.Method, r.Reason, r.Error)
	}
	if r.IDToken["sub"] != entratest.PairwiseSubject(oidAlice, g.fake.ClientID) {
		t.Errorf("sub %v", r.IDToken["sub"])
	}
}

// TestCallApproved: Alice starts at Entra, lands on Verigate's page, is
// called, presses # (reported as the call script reports it), and Entra
// accepts the id_token with amr tel.
func TestCallApproved(t *testing.T) {
	g := newGateway(t, []string{"call", "sms"})
	b := browsertest.New(t, browsertest.Options{AcceptLanguage: "en-GB,en"})
	b.Navigate(g.fake.URL + "/")
	b.Screenshot("entra start")
	b.Click("#continue")
	waitFor(t, "the call", func() bool { return len(g.svc.Caller.Calls()) == 1 })
	b.WaitVisible("#status")
	b.WaitText("main", "789")
	if strings.Contains(b.Text("main"), mobile) {
		t.Fatal("the page shows the whole number")
	}
	b.Screenshot("calling")
	call := g.svc.Caller.Calls()[0]
	if call.To != mobile || call.Mode != verify.CallModeApprove {
		t.Fatalf("call %+v", call)
	}
	// The test phone presses #: the call script reports approval.
	if err := g.svc.Report(context.Background(), call.VerificationID, verify.Event{Type: verify.EventCallApproved,
		Channel: verify.ChannelCall, Outcome: &verify.Outcome{Status: verify.StatusApproved}}); err != nil {
		t.Fatal(err)
	}
	b.WaitText("#outcome", "MFA accepted")
	b.Screenshot("entra accepted")
	g.accepted(t, "tel")
}

// TestSMSCode: a text with a code, typed into the page; Entra accepts with
// amr sms.
func TestSMSCode(t *testing.T) {
	g := newGateway(t, []string{"sms"})
	b := browsertest.New(t, browsertest.Options{AcceptLanguage: "de-DE,de"})
	b.Navigate(g.fake.URL + "/")
	b.Click("#continue")
	waitFor(t, "the text", func() bool { return len(g.svc.Sender.Messages()) == 1 })
	b.WaitVisible("#code")
	b.WaitText("main", "+49 151 *** 789")
	b.WaitText("#title", "Bestätigen Sie") // the page speaks the browser's German
	b.Screenshot("code form")
	b.Type("#code", g.svc.Sender.LastCode(t, mobile))
	b.Click("#code-submit")
	b.WaitText("#outcome", "MFA accepted")
	b.Screenshot("entra accepted")
	g.accepted(t, "sms")
}

// TestNotMe: "This wasn't me" answers Entra with access_denied and no
// token.
func TestNotMe(t *testing.T) {
	g := newGateway(t, []string{"call"})
	b := browsertest.New(t, browsertest.Options{AcceptLanguage: "en-GB,en"})
	b.Navigate(g.fake.URL + "/")
	b.Click("#continue")
	waitFor(t, "the call", func() bool { return len(g.svc.Caller.Calls()) == 1 })
	b.WaitText("main", "789")
	b.Click("#not-me")
	b.WaitText("#outcome", "MFA refused")
	b.Screenshot("entra refused")
	r := g.result(t)
	if r.Accepted || r.Error != "access_denied" || r.IDToken != nil {
		t.Fatalf("fake Entra saw %+v", r)
	}
}

// result waits for the fake Entra's next verdict.
func (g *gateway) result(t *testing.T) entratest.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := g.fake.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// postPage serves a page that posts form to action when its button is
// pressed: Entra's side of a request the fake's start page would not make.
func postPage(t *testing.T, action string, form url.Values) string {
	t.Helper()
	page := template.Must(template.New("").Parse(`<!doctype html><html><body>
<form method="post" action="{{.Action}}">{{range $k, $v := .Form}}<input type="hidden" name="{{$k}}" value="{{index $v 0}}">{{end}}
<button type="submit" id="continue">Continue</button></form></body></html>`))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(w, map[string]any{"Action": action, "Form": form})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestRefusedRequests: a hint Entra did not sign is answered to Entra
// (the redirect is trusted) with access_denied; a redirect_uri that is not
// Entra's ends on Verigate's error page. Neither calls nor texts anyone,
// and no token reaches Entra.
func TestRefusedRequests(t *testing.T) {
	g := newGateway(t, []string{"call", "sms"})
	other, err := entratest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	person := entratest.HintOptions{ObjectID: oidAlice, PreferredUsername: "alice@contoso.example"}
	forged := person
	forged.SignWith = other
	for _, tc := range []struct {
		name    string
		hint    entratest.HintOptions
		params  entratest.AuthorizeParams
		toEntra bool // the refusal is posted back to Entra
	}{
		{"hint signed by another key", forged, entratest.AuthorizeParams{}, true},
		{"redirect_uri not Entra's", person, entratest.AuthorizeParams{RedirectURI: "http://127.0.0.1:1/common/federation/externalauthprovider"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hint, err := g.fake.IssueHint(tc.hint)
			if err != nil {
				t.Fatal(err)
			}
			tc.params.Hint = hint
			form, err := g.fake.AuthorizeForm(tc.params)
			if err != nil {
				t.Fatal(err)
			}
			b := browsertest.New(t, browsertest.Options{AcceptLanguage: "en-GB,en"})
			b.Navigate(postPage(t, g.url+entra.AuthorizePath, form))
			b.Click("#continue")
			if tc.toEntra {
				b.WaitText("#outcome", "MFA refused")
				b.Screenshot("refused")
				if r := g.result(t); r.State != form.Get("state") || r.Error != "access_denied" || r.Accepted {
					t.Fatalf("fake Entra saw %+v", r)
				}
			} else {
				b.WaitText("h1", "Sign-in could not continue")
				b.Screenshot("refused")
				if loc := b.Location(); !strings.HasPrefix(loc, g.url) {
					t.Fatalf("the browser left Verigate for %s", loc)
				}
			}
			for _, r := range g.fake.Results() {
				if r.State == form.Get("state") && r.IDToken != nil {
					t.Fatalf("a token reached Entra: %+v", r)
				}
			}
			if n, m := len(g.svc.Caller.Calls()), len(g.svc.Sender.Messages()); n+m != 0 {
				t.Fatalf("%d calls and %d texts for a refused request", n, m)
			}
		})
	}
}
