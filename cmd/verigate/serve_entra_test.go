package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/config"
	"github.com/verigate/verigate/internal/browsertest"
	"github.com/verigate/verigate/internal/entratest"
	"github.com/verigate/verigate/internal/testbuf"
	"github.com/verigate/verigate/internal/twiliotest"
)

// TestServeDevEntraExample walks deploy/examples/entra.yaml as the README
// shows it, in headless Chromium: the fake Entra ID posts its authorize
// request to `serve --dev`, the page calls the built-in test phone, which
// presses # over SIP and RTP, and the fake accepts Verigate's id_token with
// amr tel; the same through Twilio (the fake Twilio's phone presses #
// after the TwiML's prompt); then, with texts offered first, the code
// printed by the console provider is typed into the German page and the
// fake accepts amr sms.
func TestServeDevEntraExample(t *testing.T) {
	example := filepath.Join("..", "..", "deploy", "examples", "entra.yaml")
	cfg, err := config.Load(example, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Entra
	if len(e.Apps) != 1 || e.Apps[0].ClientID != exampleClientID || len(e.Apps[0].Tenants) != 1 || e.Apps[0].Tenants[0] != exampleTenantID ||
		e.Authority != "http://127.0.0.1:8090" || cfg.Directory.Static.File != "deploy/examples/entra-people.csv" {
		t.Fatalf("the example is not what the README and `verigate entra-fake` assume: %+v", e)
	}

	cases := []struct {
		name, lang, channels string
		twilio               bool
		lead, method         string
	}{
		{"call answered with #", "en-US,en", "", false, "We're calling +49 151 *** 789. Answer and press # to finish.", "tel"},
		{"call through Twilio", "en-US,en", "", true, "We're calling +49 151 *** 789. Answer and press # to finish.", "tel"},
		{"texted code", "de-DE,de", "sms,call", false, "Wir haben einen Code an +49 151 *** 789 gesendet.", "sms"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake := entratest.New(t, entratest.Options{
				TenantID: exampleTenantID, ClientID: exampleClientID,
				Person: entratest.HintOptions{ObjectID: exampleObjectID, PreferredUsername: "alice@contoso.example"},
			})
			// The example with the fake's own address instead of the
			// documented 127.0.0.1:8090, as the README says to do.
			t.Setenv("VERIGATE_ENTRA_AUTHORITY", fake.URL)
			t.Setenv("VERIGATE_ENTRA_REDIRECT_URIS", fake.RedirectURI)
			t.Setenv("VERIGATE_DIRECTORY_STATIC_FILE", filepath.Join("..", "..", "deploy", "examples", "entra-people.csv"))
			if c.channels != "" {
				t.Setenv("VERIGATE_ENTRA_CHANNELS", c.channels)
			}
			var base string
			var stdout *testbuf.Buffer
			answer := func() {} // the phone answers by itself (--dev's presses # after 5 s)
			if c.twilio {
				var tw *twiliotest.Server
				tw, base, _, _, stdout = startServeWithTwilio(t, map[string]string{"VERIGATE_TWILIO_KEY_TIMEOUT": "5s"}, "--config", example)
				// It rings until the page has been seen, then presses #.
				ringing := make(chan struct{})
				answer = sync.OnceFunc(func() { close(ringing) })
				defer answer()
				tw.SetPhone("+4915123456789", twiliotest.Phone{Keys: "#", Hold: ringing})
				defer func() {
					if calls := tw.Calls(); len(calls) != 1 {
						t.Errorf("the fake Twilio placed %d calls, want 1", len(calls))
					}
				}()
			} else {
				addr := freeAddr(t)
				base = "http://" + addr
				t.Setenv("VERIGATE_PUBLIC_URL", base)
				_, _, stdout = startDevServe(t, addr, "--config", example)
			}
			fake.SetAuthorizeURL(base + "/entra/authorize")
			fake.SetProviderDiscoveryURL(base + "/entra/.well-known/openid-configuration")

			b := browsertest.New(t, browsertest.Options{AcceptLanguage: c.lang, Timeout: 60 * time.Second})
			b.Navigate(fake.URL + "/")
			b.Click("#continue")
			b.WaitText("#lead", c.lead)
			b.Screenshot("page")
			answer()
			if loc := b.Location(); strings.Contains(loc, "23456789") || strings.Contains(loc, "%2B49") {
				t.Errorf("the number is in the page's address: %s", loc)
			}
			if c.method == "sms" {
				code := waitFor(t, stdout, regexp.MustCompile(`sms to=\+49151\*+789 body=\D*(\d{6})`))
				b.SetValue("#code", code)
				b.Screenshot("code")
				b.Click("#code-submit")
			}
			b.WaitText("#outcome", "MFA accepted")
			b.Screenshot("accepted")

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := fake.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Accepted || res.Method != c.method {
				t.Fatalf("fake Entra: accepted %v, method %q, reason %q; want %s", res.Accepted, res.Method, res.Reason, c.method)
			}
			if log := stdout.String(); strings.Contains(log, "+4915123456789") {
				t.Error("the full number is on serve's output")
			}
		})
	}
}
