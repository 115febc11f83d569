package twilio

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/prompts"
)

// playLaw is the G.711 law of the clips Twilio is asked to <Play>: 8 kHz
// µ-law WAV is what Twilio's own media pipeline carries, so it plays
// without transcoding.
const playLaw = audio.PCMU

// Cache-Control of the audio route. A URL carrying the clip's current
// version (?v=) never changes content, so it may be cached for good;
// any other URL must be revalidated with its ETag.
const (
	cacheVersioned   = "public, max-age=31536000, immutable"
	cacheUnversioned = "public, no-cache"
)

// paramVersion is the query parameter that carries a clip's version.
const paramVersion = "v"

// clips serves the catalogue's recordings for <Play> and builds their
// public URLs. Clips are public: they are the catalogue's lines, and a
// code is read as one digit clip after another, so no URL ever carries a
// code. Requests need no signature (Twilio fetches media with a plain
// GET), but only the exact paths Audio.Path returns are served.
type clips struct {
	audio Audio
	base  string // public URL of the audio route, no trailing slash

	mu   sync.Mutex
	tags map[string]string // path → version (hash of the WAV bytes)
}

func newClips(a Audio, publicBase string) *clips {
	return &clips{audio: a, base: publicBase + RouteAudio, tags: map[string]string{}}
}

// clip returns the WAV at path and its version, computed once per path:
// the catalogue does not change while the gateway runs.
func (c *clips) clip(locale string, id prompts.ID, path string) ([]byte, string, error) {
	wav, err := c.audio.WAV(locale, id, playLaw)
	if err != nil {
		return nil, "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	tag, ok := c.tags[path]
	if !ok {
		sum := sha256.Sum256(wav)
		tag = hex.EncodeToString(sum[:8])
		c.tags[path] = tag
	}
	return wav, tag, nil
}

// url returns the absolute public URL of id's clip in locale, versioned
// with a hash of its content: when an operator replaces a recording the
// URL changes, so Twilio's cache never plays the old one.
func (c *clips) url(locale string, id prompts.ID) (string, error) {
	path := c.audio.Path(locale, id, playLaw)
	c.mu.Lock()
	tag, ok := c.tags[path]
	c.mu.Unlock()
	if !ok {
		var err error
		if _, tag, err = c.clip(locale, id, path); err != nil {
			return "", err
		}
	}
	return c.base + "/" + path + "?" + url.Values{paramVersion: {tag}}.Encode(), nil
}

// serve answers GET and HEAD for one clip. Anything but a path Audio.Path
// would return (other spellings of a locale, another law, "..", escaped
// characters, prompts without audio) is 404.
func (c *clips) serve(ec echo.Context) error {
	r := ec.Request()
	rel := ec.Param("*")
	locale, id, law, ok := parseClipPath(rel)
	// Escaped characters are never part of a clip's path: the escaped
	// path must end in rel as it is.
	if !ok || !strings.HasSuffix(r.URL.EscapedPath(), "/"+rel) || law != playLaw ||
		!id.Spoken() || c.audio.Path(locale, id, law) != rel {
		return echo.NewHTTPError(http.StatusNotFound, "no such clip")
	}
	wav, tag, err := c.clip(locale, id, rel)
	if err != nil {
		return echo.NewHTTPError(http.StatusNotFound, "no such clip")
	}
	h := ec.Response().Header()
	h.Set("Content-Type", "audio/wav")
	h.Set("ETag", `"`+tag+`"`)
	if ec.QueryParam(paramVersion) == tag {
		h.Set("Cache-Control", cacheVersioned)
	} else {
		h.Set("Cache-Control", cacheUnversioned)
	}
	// ServeContent answers If-None-Match (304), Range and HEAD.
	http.ServeContent(ec.Response(), r, "", time.Time{}, bytes.NewReader(wav))
	return nil
}

// parseClipPath splits "<locale>/<id>.<law>.wav".
func parseClipPath(rel string) (locale string, id prompts.ID, law audio.Codec, ok bool) {
	locale, file, found := strings.Cut(rel, "/")
	name, wav := strings.CutSuffix(file, ".wav")
	i := strings.LastIndexByte(name, '.')
	if !found || !wav || i < 0 || locale == "" {
		return "", "", 0, false
	}
	law, err := audio.ParseCodec(name[i+1:])
	if err != nil {
		return "", "", 0, false
	}
	return locale, prompts.ID(name[:i]), law, true
}
