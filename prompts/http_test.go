package prompts_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/prompts"
)

func TestHandlerServesClips(t *testing.T) {
	c := load(t, prompts.Options{})
	srv := httptest.NewServer(http.StripPrefix("/prompts/", c.Handler()))
	defer srv.Close()
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, body
	}
	for _, tc := range []struct {
		path   string
		locale string
		id     prompts.ID
		law    audio.Codec
	}{
		{"/prompts/" + c.Path("de-DE", prompts.PressPound, audio.PCMU), "de", prompts.PressPound, audio.PCMU},
		{"/prompts/" + c.Path("ja", prompts.Digit4, audio.PCMA), "ja", prompts.Digit4, audio.PCMA},
		{"/prompts/pt-BR/goodbye.wav", "pt-BR", prompts.Goodbye, audio.PCMU},
		{"/prompts/pt_br/goodbye.pcma.wav", "pt-BR", prompts.Goodbye, audio.PCMA},
	} {
		res, body := get(tc.path)
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "audio/wav" {
			t.Fatalf("GET %s: %s %s", tc.path, res.Status, res.Header.Get("Content-Type"))
		}
		want, _ := c.WAV(tc.locale, tc.id, tc.law)
		if !bytes.Equal(body, want) {
			t.Errorf("GET %s: not the %s %s clip in %s", tc.path, tc.locale, tc.id, tc.law)
		}
	}
	if got := c.Path("de_AT", prompts.Greeting, audio.PCMA); got != "de/greeting.alaw.wav" {
		t.Errorf("Path = %q", got)
	}
	for _, path := range []string{"/prompts/de/sms_body.wav", "/prompts/de/nonsense.wav", "/prompts/de/greeting.g722.wav",
		"/prompts/de/greeting.mp3", "/prompts/de", "/prompts/de/x/greeting.wav"} {
		if res, _ := get(path); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", path, res.Status)
		}
	}
	res, err := http.Post(srv.URL+"/prompts/de/greeting.wav", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s", res.Status)
	}
}
