package twilio_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/internal/twiliotest"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/twilio"
	"github.com/verigate/verigate/verify"
)

// okReporter records nothing, so a benchmark measures the webhook alone.
type okReporter struct{}

func (okReporter) Report(context.Context, string, verify.Event) error { return nil }

type refuse struct{}

func (refuse) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("no gateway here")
}

// BenchmarkVoiceWebhook serves the answer webhook of an approve call and
// the gather webhook of its '#': signature check, call context opened,
// script step, TwiML rendered, in each voice mode (play adds one clip URL
// per prompt). No network: the Echo handler is called directly.
func BenchmarkVoiceWebhook(b *testing.B) {
	for _, mode := range []string{twilio.VoiceSay, twilio.VoicePlay} {
		b.Run(mode, func(b *testing.B) {
			e, voiceURL := benchGateway(b, mode)
			gatherURL := strings.Replace(voiceURL, twilio.RouteVoice+"?", twilio.RouteGather+"?", 1) + "&s=ask.1."
			call := url.Values{"CallSid": {"CAbench"}, "AccountSid": {accountSID}, "CallStatus": {"in-progress"}}
			pound := url.Values{"CallSid": {"CAbench"}, "AccountSid": {accountSID}, "CallStatus": {"in-progress"}, "Digits": {"#"}}
			for _, bc := range []struct {
				name   string
				url    string
				params url.Values
				want   string
			}{
				{"answer", voiceURL, call, "<Gather"},
				{"gather", gatherURL, pound, "<Hangup/>"},
			} {
				sig := twiliotest.Signature(authToken, bc.url, bc.params)
				body := bc.params.Encode()
				target := strings.TrimPrefix(bc.url, publicURL)
				b.Run(bc.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
						req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
						req.Header.Set(twilio.SignatureHeader, sig)
						rec := httptest.NewRecorder()
						e.ServeHTTP(rec, req)
						if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), bc.want) {
							b.Fatalf("HTTP %d %s", rec.Code, rec.Body)
						}
					}
				})
			}
		})
	}
}

// BenchmarkAudioClip serves one clip (press_pound in German, about
// 3.5 s of µ-law) as Twilio fetches it in play mode: the versioned URL
// from the TwiML, then a revalidation answered 304.
func BenchmarkAudioClip(b *testing.B) {
	e, _ := benchGateway(b, twilio.VoicePlay)
	cat, err := prompts.Load(prompts.Options{})
	if err != nil {
		b.Fatal(err)
	}
	path := twilio.PathPrefix + twilio.RouteAudio + "/" + cat.Path("de", prompts.PressPound, audio.PCMU)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	etag := rec.Header().Get("ETag")
	versioned := path + "?v=" + strings.Trim(etag, `"`)
	for _, bc := range []struct {
		name       string
		inm        string
		wantStatus int
	}{
		{"get", "", http.StatusOK},
		{"revalidate", etag, http.StatusNotModified},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, versioned, nil)
				if bc.inm != "" {
					req.Header.Set("If-None-Match", bc.inm)
				}
				rec := httptest.NewRecorder()
				e.ServeHTTP(rec, req)
				if rec.Code != bc.wantStatus {
					b.Fatalf("HTTP %d", rec.Code)
				}
			}
		})
	}
}

// benchGateway returns the webhooks on an Echo in voice mode and the
// answer URL of one approve call placed through the fake Twilio.
func benchGateway(b *testing.B, mode string) (*echo.Echo, string) {
	b.Helper()
	// The fake only takes the call here: its phone reaches no gateway.
	fake := twiliotest.New(twiliotest.Config{AccountSID: accountSID, AuthToken: authToken, WebhookTransport: refuse{}})
	b.Cleanup(fake.Close)
	cfg := twilio.Config{
		AccountSID: accountSID, AuthToken: authToken, From: fromNumber, VoiceMode: mode,
		BaseURL: fake.URL, PublicURL: publicURL, Secret: "a server secret of enough length",
	}
	quiet := twilio.WithLogger(slog.New(slog.DiscardHandler))
	prov, err := twilio.New(cfg, quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(prov.Close)
	wh, err := twilio.NewWebhooks(cfg, okReporter{}, quiet)
	if err != nil {
		b.Fatal(err)
	}
	e := echo.New()
	wh.Register(e.Group(twilio.PathPrefix))
	if _, err := prov.Call(context.Background(), verify.Call{VerificationID: "VEbench", To: mobile, Mode: verify.CallModeApprove, Locale: "de"}); err != nil {
		b.Fatal(err)
	}
	fake.Wait()
	return e, fake.Calls()[0].URL
}
