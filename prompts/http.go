package prompts

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/verigate/verigate/audio"
)

// Path returns where Handler serves id in the negotiated locale:
// "<locale>/<id>.<law>.wav". Twilio's <Play> takes the public base URL
// joined with it. No path ever carries a code: a code is read by playing
// the digit clips one after another.
func (c *Catalogue) Path(locale string, id ID, law audio.Codec) string {
	return c.Negotiate(locale) + "/" + string(id) + "." + law.Name() + ".wav"
}

// Handler serves every clip as a WAV file for Twilio's <Play>, at Path
// (and at "<locale>/<id>.wav" for µ-law). Mount it under a prefix with
// http.StripPrefix. Clips are public: they hold only the catalogue's
// lines, never a code.
func (c *Catalogue) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		locale, file, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		name, found := strings.CutSuffix(file, ".wav")
		if !ok || !found || strings.Contains(file, "/") {
			http.NotFound(w, r)
			return
		}
		law := audio.PCMU
		if base, ext, dotted := strings.Cut(name, "."); dotted {
			l, err := audio.ParseCodec(ext)
			if err != nil {
				http.NotFound(w, r)
				return
			}
			name, law = base, l
		}
		wav, err := c.WAV(locale, ID(name), law)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "audio/wav")
		w.Header().Set("Content-Length", strconv.Itoa(len(wav)))
		w.Header().Set("Cache-Control", "public, max-age=3600")
		if r.Method == http.MethodGet {
			_, _ = w.Write(wav)
		}
	})
}
