package twiliotest_test

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/verigate/verigate/internal/twiliotest"
)

// ulawWAV builds an 8 kHz mono µ-law WAV with a fact chunk between fmt
// and data, as sox writes them.
func ulawWAV(samples []byte) []byte {
	le := binary.LittleEndian
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, le, uint32(4+26+12+8+len(samples)))
	b.WriteString("WAVEfmt ")
	binary.Write(&b, le, []uint32{18})
	binary.Write(&b, le, []uint16{7, 1})
	binary.Write(&b, le, []uint32{8000, 8000})
	binary.Write(&b, le, []uint16{1, 8, 0})
	b.WriteString("fact")
	binary.Write(&b, le, []uint32{4, uint32(len(samples))})
	b.WriteString("data")
	binary.Write(&b, le, uint32(len(samples)))
	b.Write(samples)
	return b.Bytes()
}

func TestPlayFetchesMediaLikeTwilio(t *testing.T) {
	samples := []byte{0x10, 0x20, 0x30, 0x40, 0x50}
	type hit struct{ method, sig string }
	var mu sync.Mutex
	var media []hit
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/doc" {
			w.Header().Set("Content-Type", "application/xml")
			w.Write([]byte(`<Response><Play>/a.wav</Play><Gather numDigits="1"><Play>/text</Play></Gather>` +
				`<Play>/missing.wav</Play><Play>/broken.wav</Play><Hangup/></Response>`))
			return
		}
		if r.URL.Path == "/status" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		mu.Lock()
		media = append(media, hit{r.Method, r.Header.Get("X-Twilio-Signature")})
		mu.Unlock()
		switch r.URL.Path {
		case "/a.wav":
			w.Header().Set("Content-Type", "audio/x-wav")
			w.Header().Set("Cache-Control", "max-age=60")
			w.Write(ulawWAV(samples))
		case "/text":
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("not audio"))
		case "/broken.wav":
			w.Header().Set("Content-Type", "audio/wav")
			w.Write([]byte("RIFF\x04\x00\x00\x00WAVE"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	fake := twiliotest.New(twiliotest.Config{AccountSID: sid, AuthToken: token})
	defer fake.Close()
	fake.SetPhone("+4915123456789", twiliotest.Phone{})
	create(t, fake, "Calls", url.Values{"To": {"+4915123456789"}, "From": {"+15005550006"}, "Url": {srv.URL + "/doc"}})
	fake.Wait()

	c := fake.Calls()[0]
	if len(c.Plays) != 4 {
		t.Fatalf("%d plays, want 4 (one nested in the gather)", len(c.Plays))
	}
	a := c.Plays[0]
	if a.Err != nil || a.URL != srv.URL+"/a.wav" || a.Format != twiliotest.WAVULaw || a.Rate != 8000 || a.Channels != 1 ||
		a.Bits != 8 || !bytes.Equal(a.Data, samples) || a.CacheControl != "max-age=60" {
		t.Fatalf("first play %+v", a)
	}
	for i, want := range []string{"13420", "11200", "not a playable WAV"} {
		if pl := c.Plays[i+1]; pl.Err == nil || !strings.Contains(pl.Err.Error(), want) {
			t.Errorf("play %s: error %v, want %q", pl.URL, pl.Err, want)
		}
	}
	if n := len(fake.Errors()); n != 3 {
		t.Errorf("%d errors reported, want the 3 unplayable media: %v", n, fake.Errors())
	}
	for _, h := range media {
		if h.method != http.MethodGet || h.sig != "" {
			t.Errorf("media fetched with %s and signature %q, want a plain GET", h.method, h.sig)
		}
	}
	if c.Status != "completed" {
		t.Errorf("call %s: a bad <Play> does not end the call", c.Status)
	}
}
