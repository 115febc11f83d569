package browsertest

import (
	"context"
	"html/template"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/entratest"
)

// TestFormPostAcrossOrigins is the browser half of every EAM flow: a page
// on one origin (the provider) posts id_token and state to another (Entra's
// redirect_uri), and the fake Entra accepts it.
func TestFormPostAcrossOrigins(t *testing.T) {
	f := entratest.New(t, entratest.Options{})
	p := entratest.NewProvider(t)
	f.SetProviderDiscoveryURL(p.DiscoveryURL)
	form, err := f.AuthorizeForm(entratest.AuthorizeParams{})
	if err != nil {
		t.Fatal(err)
	}
	answer, err := p.Answer(form, "tel")
	if err != nil {
		t.Fatal(err)
	}
	page := template.Must(template.New("").Parse(`<!doctype html><html><head><title>provider</title></head><body>
<p id="lang">{{.Lang}}</p>
<form method="post" action="{{.Action}}">{{range $k, $v := .Form}}<input type="hidden" name="{{$k}}" value="{{index $v 0}}">{{end}}
<button type="submit" id="send">Continue</button></form></body></html>`))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(w, map[string]any{"Lang": r.Header.Get("Accept-Language"), "Action": f.RedirectURI, "Form": answer})
	}))
	t.Cleanup(srv.Close)

	b := New(t, Options{AcceptLanguage: "de-DE,de"})
	b.Navigate(srv.URL + "/")
	if got := b.Text("#lang"); got != "de-DE,de;q=0.9" { // Chromium adds the weights
		t.Errorf("Accept-Language seen by the server = %q", got)
	}
	if got := b.Eval("navigator.language"); got != "de-DE" {
		t.Errorf("navigator.language = %q", got)
	}
	before := b.Screenshot("provider page")
	b.Click("#send")
	b.WaitText("#outcome", "MFA accepted")
	if got := b.Text("#method"); got != "tel" {
		t.Errorf("method on the page = %q", got)
	}
	if loc := b.Location(); loc != f.RedirectURI {
		t.Errorf("location = %q, want the redirect_uri", loc)
	}
	after := b.Screenshot("entra accepted")
	for _, p := range []string{before, after} {
		st, err := os.Stat(p)
		if err != nil || st.Size() < 1000 || !strings.HasSuffix(p, ".png") {
			t.Errorf("screenshot %s: %v, %v bytes", p, err, st)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := f.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Accepted || r.Method != "tel" || r.State != form.Get("state") {
		t.Fatalf("fake Entra saw %+v", r)
	}
}

// TestArtefactsDirectory: screenshots land under VERIGATE_TEST_ARTEFACTS,
// in a directory named after the test.
func TestArtefactsDirectory(t *testing.T) {
	root := t.TempDir()
	t.Setenv(ArtefactsEnv, root)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`<!doctype html><h1 id="h">Hallo</h1>`))
	}))
	t.Cleanup(srv.Close)
	b := New(t, Options{})
	b.Navigate(srv.URL)
	b.WaitVisible("#h")
	p := b.Screenshot("hello/world")
	want := root + "/TestArtefactsDirectory/01-hello_world.png"
	if p != want {
		t.Fatalf("screenshot at %s, want %s", p, want)
	}
	if st, err := os.Stat(p); err != nil || st.Size() == 0 {
		t.Fatalf("%v %v", err, st)
	}
}
