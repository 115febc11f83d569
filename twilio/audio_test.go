package twilio

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/verify"
)

type nopReporter struct{}

func (nopReporter) Report(context.Context, string, verify.Event) error { return nil }

// TestPlayModeNeedsAudio: texts without recordings cannot be played, and
// NewWebhooks says so; WithAudio gives the recordings apart from the texts.
func TestPlayModeNeedsAudio(t *testing.T) {
	cfg := validConfig()
	cfg.VoiceMode = VoicePlay
	if _, err := NewWebhooks(cfg, nopReporter{}, WithTexts(testTexts{})); err == nil || !strings.Contains(err.Error(), "voice_mode play") {
		t.Fatalf("play mode with texts only: %v", err)
	}
	w, err := NewWebhooks(cfg, nopReporter{}, WithTexts(testTexts{}), WithAudio(testAudio{}))
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	w.Register(e.Group(PathPrefix))
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, PathPrefix+RouteAudio+"/de/greeting.ulaw.wav", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("ETag") == "" {
		t.Fatalf("clip from WithAudio: HTTP %d %v", rec.Code, rec.Header())
	}
	// Say mode with texts that have no audio: no audio route at all.
	cfg.VoiceMode = VoiceSay
	w, err = NewWebhooks(cfg, nopReporter{}, WithTexts(testTexts{}))
	if err != nil {
		t.Fatal(err)
	}
	e = echo.New()
	w.Register(e.Group(PathPrefix))
	rec = httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, PathPrefix+RouteAudio+"/de/greeting.ulaw.wav", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("say mode without audio: HTTP %d, want 404", rec.Code)
	}
}
