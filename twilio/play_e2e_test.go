package twilio_test

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/internal/prompttest"
	"github.com/verigate/verigate/internal/twiliotest"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/twilio"
	"github.com/verigate/verigate/verify"
)

func playMode(c *twilio.Config) { c.VoiceMode = twilio.VoicePlay }

// audioBase is where the clips live under the public URL.
const audioBase = publicURL + twilio.PathPrefix + twilio.RouteAudio + "/"

// playedIDs returns the prompt of every <Play> the phone heard, read from
// its URL ("<audioBase><locale>/<id>.ulaw.wav?v=..."), and fails the test
// on a URL outside locale or on media the phone could not play.
func playedIDs(t *testing.T, c twiliotest.Call, locale string) []prompts.ID {
	t.Helper()
	var ids []prompts.ID
	for _, p := range c.Plays {
		if p.Err != nil {
			t.Fatalf("<Play> %s: %v", p.URL, p.Err)
		}
		u, err := url.Parse(p.URL)
		if err != nil {
			t.Fatal(err)
		}
		file, ok := strings.CutPrefix(p.URL, audioBase+locale+"/")
		name, wav := strings.CutSuffix(strings.SplitN(file, "?", 2)[0], ".ulaw.wav")
		if !ok || !wav || u.Query().Get("v") == "" {
			t.Fatalf("<Play> %s is not a versioned µ-law clip of locale %s under %s", p.URL, locale, audioBase)
		}
		if p.Format != twiliotest.WAVULaw || p.Rate != 8000 || p.Channels != 1 || p.Bits != 8 {
			t.Errorf("<Play> %s: format %d, %d Hz, %d channels, %d bits; want 8 kHz mono µ-law", p.URL, p.Format, p.Rate, p.Channels, p.Bits)
		}
		if p.ContentType != "audio/wav" || p.CacheControl != "public, max-age=31536000, immutable" || p.ETag == "" {
			t.Errorf("<Play> %s: Content-Type %q, Cache-Control %q, ETag %q", p.URL, p.ContentType, p.CacheControl, p.ETag)
		}
		ids = append(ids, prompts.ID(name))
	}
	return ids
}

func builtin(t *testing.T) *prompts.Catalogue {
	t.Helper()
	cat, err := prompts.Load(prompts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func TestPlayModeApproveInGerman(t *testing.T) {
	cat := builtin(t)
	h := newHarness(t, playMode)
	h.fake.SetPhone(mobile, twiliotest.Phone{Keys: "#"})
	id := h.start(startBody{To: mobile, Channel: verify.ChannelCall, CallMode: verify.CallModeApprove, Locale: "de"})
	h.settle()
	c := h.onlyCall()
	if len(c.Said) != 0 {
		t.Fatalf("play mode used <Say>: %+v", c.Said)
	}
	want := []prompts.ID{prompts.Greeting, prompts.PressPound, prompts.VerifiedGoodbye}
	if got := playedIDs(t, c, "de"); !slices.Equal(got, want) {
		t.Fatalf("the phone played %v, want %v", got, want)
	}
	// What was fetched is the German recording, sample for sample.
	for i, p := range c.Plays {
		de, err := cat.Audio("de", want[i], audio.PCMU)
		if err != nil {
			t.Fatal(err)
		}
		en, _ := cat.Audio("en", want[i], audio.PCMU)
		if !slices.Equal(p.Data, de) || slices.Equal(p.Data, en) {
			t.Errorf("<Play> %s did not serve the German %s clip", p.URL, want[i])
		}
	}
	if len(c.Gathers) != 1 || !c.Gathers[0].Posted || c.Gathers[0].Digits != "#" {
		t.Fatalf("gathers %+v: want one that posted #", c.Gathers)
	}
	if v := h.get(id); v.Status != verify.StatusApproved {
		t.Fatalf("status %s, events %v", v.Status, eventTypes(v))
	}
	if n := h.record(id).Attempts; n != 0 {
		t.Errorf("%d checks made, want none", n)
	}
}

func TestPlayModeCodeReadsTheDigitClips(t *testing.T) {
	cat := builtin(t)
	h := newHarness(t, playMode)
	id := h.start(startBody{To: mobile, Channel: verify.ChannelCall, CallMode: verify.CallModeCode, Locale: "fr-CA"})
	h.settle()
	c := h.onlyCall()
	ids := playedIDs(t, c, "fr")
	// greeting, intro, 6 digits, again, 6 digits, goodbye
	if len(ids) != 16 || ids[0] != prompts.Greeting || ids[15] != prompts.Goodbye {
		t.Fatalf("the phone played %v", ids)
	}
	var code strings.Builder
	for _, id := range ids[2:8] {
		d, ok := strings.CutPrefix(string(id), "digit_")
		if !ok || len(d) != 1 {
			t.Fatalf("%s is not a digit clip in %v", id, ids)
		}
		code.WriteString(d)
	}
	if want := prompts.CodeSequence(code.String()); !slices.Equal(ids[1:15], want) {
		t.Fatalf("the code reading played %v, want %v", ids[1:15], want)
	}
	// Decode the fetched recordings themselves (not the URLs): played
	// back to back, they must say the same digits in the same order.
	var line []int16
	gap := make([]int16, 2000)
	for _, p := range c.Plays[1:15] {
		line = append(append(line, gap...), audio.PCMU.Decode(nil, p.Data)...)
	}
	line = append(line, gap...)
	if rms := audio.RMS(audio.PCMU.Decode(nil, c.Plays[2].Data)); rms < 300 {
		t.Errorf("first digit clip is near silent (RMS %.0f)", rms)
	}
	r, err := prompttest.NewRecogniser(cat, "fr", audio.PCMU)
	if err != nil {
		t.Fatal(err)
	}
	if got := prompttest.IDs(r.Recognise(line)); !slices.Equal(got, ids[1:15]) {
		t.Fatalf("the fetched audio says %v, want %v", got, ids[1:15])
	}
	for _, p := range c.Plays {
		if strings.Contains(p.URL, code.String()) {
			t.Fatalf("the code appears in a clip URL: %s", p.URL)
		}
	}
	if len(c.Gathers) != 0 {
		t.Errorf("code mode gathered keys: %+v", c.Gathers)
	}
	if got := h.check(id, code.String()); got != verify.StatusApproved {
		t.Fatalf("check with the code played: %s", got)
	}
}

func TestSayModeIsTheDefault(t *testing.T) {
	h := newHarness(t)
	h.fake.SetPhone(mobile, twiliotest.Phone{Keys: "#"})
	h.start(startBody{To: mobile, Channel: verify.ChannelCall, CallMode: verify.CallModeApprove, Locale: "en"})
	h.settle()
	c := h.onlyCall()
	if len(c.Plays) != 0 || len(c.Said) != 3 {
		t.Fatalf("default voice mode: %d plays, %d says; want <Say> only", len(c.Plays), len(c.Said))
	}
}

// TestAudioRouteServesOnlyClips asks the audio route, on the gateway's
// own listener, for what it must refuse and for what it must serve.
func TestAudioRouteServesOnlyClips(t *testing.T) {
	cat := builtin(t)
	h := newHarness(t, playMode)
	route := h.gw.URL + twilio.PathPrefix + twilio.RouteAudio + "/"
	get := func(method, rawURL string, header http.Header) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(h.ctx(), method, rawURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	for _, path := range []string{
		"de/nonsense.ulaw.wav",         // not in the catalogue
		"de/sms_body.ulaw.wav",         // a text without audio
		"de/greeting.alaw.wav",         // only the law Twilio is given
		"de/greeting.pcmu.wav",         // another spelling of µ-law
		"de/greeting.wav",              // no law
		"DE/greeting.ulaw.wav",         // not the catalogue's spelling
		"de-AT/greeting.ulaw.wav",      // negotiated to de: not a path Path returns
		"xx/greeting.ulaw.wav",         // unknown locale (would negotiate to en)
		"de/greeting.ulaw.mp3",         // not a WAV
		"de",                           // a directory
		"de/x/greeting.ulaw.wav",       // too deep
		"../voice",                     // out of the route
		"../../twilio/status/sms",      // further out
		"de/../en/greeting.ulaw.wav",   // dot segments inside
		"../greeting.ulaw.wav",         // ".." as the locale
		"de/...ulaw.wav",               // ".." as the prompt
		"%2e%2e/greeting.ulaw.wav",     // escaped dots
		"de%2Fgreeting.ulaw.wav",       // escaped slash
		"de/greeting%2Eulaw.wav",       // escaped dot in the name
		"en/greeting.ulaw.wav/",        // trailing slash
		"en/greeting.ulaw.wav%00",      // NUL
		"en/..%2fde/greeting.ulaw.wav", // escaped traversal
	} {
		resp, body := get(http.MethodGet, route+path, nil)
		if resp.StatusCode != http.StatusNotFound || strings.HasPrefix(string(body), "RIFF") {
			t.Errorf("GET %s: HTTP %d (%d bytes), want 404", path, resp.StatusCode, len(body))
		}
	}

	// A clip, unversioned: served, but to be revalidated.
	want, err := cat.WAV("de", prompts.PressPound, audio.PCMU)
	if err != nil {
		t.Fatal(err)
	}
	path := cat.Path("de", prompts.PressPound, audio.PCMU)
	resp, body := get(http.MethodGet, route+path, nil)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != http.StatusOK || !slices.Equal(body, want) || resp.Header.Get("Content-Type") != "audio/wav" ||
		resp.Header.Get("Cache-Control") != "public, no-cache" || etag == "" {
		t.Fatalf("GET %s: HTTP %d, %d bytes, headers %v", path, resp.StatusCode, len(body), resp.Header)
	}
	// Versioned as the TwiML gives it: cacheable for good.
	version := strings.Trim(etag, `"`)
	resp, body = get(http.MethodGet, route+path+"?v="+version, nil)
	if resp.StatusCode != http.StatusOK || !slices.Equal(body, want) || resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Fatalf("versioned GET: HTTP %d, headers %v", resp.StatusCode, resp.Header)
	}
	// A stale version (an older recording) is served but not cached as it.
	resp, _ = get(http.MethodGet, route+path+"?v=0000000000000000", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "public, no-cache" {
		t.Fatalf("stale version: HTTP %d, headers %v", resp.StatusCode, resp.Header)
	}
	// Revalidation, HEAD and a range, as caches and players ask.
	resp, body = get(http.MethodGet, route+path, http.Header{"If-None-Match": {etag}})
	if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("If-None-Match: HTTP %d, %d bytes; want 304", resp.StatusCode, len(body))
	}
	resp, body = get(http.MethodHead, route+path, nil)
	if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.ContentLength != int64(len(want)) {
		t.Errorf("HEAD: HTTP %d, length %d, %d bytes", resp.StatusCode, resp.ContentLength, len(body))
	}
	resp, body = get(http.MethodGet, route+path, http.Header{"Range": {"bytes=0-11"}})
	if resp.StatusCode != http.StatusPartialContent || string(body) != string(want[:12]) {
		t.Errorf("Range: HTTP %d, %q", resp.StatusCode, body)
	}
	resp, _ = get(http.MethodPost, route+path, nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: HTTP %d, want 405", resp.StatusCode)
	}
}
