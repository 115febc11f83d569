package twiliotest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// maxMedia bounds a fetched media file.
const maxMedia = 16 << 20

// playable are the Content-Types Twilio's <Play> reference lists; any
// other is Twilio's error 13420 (Play: invalid Content-Type). The fake
// decodes the WAV ones only.
var playable = map[string]bool{
	"audio/mpeg": true, "audio/wav": true, "audio/wave": true, "audio/x-wav": true,
	"audio/aiff": true, "audio/x-aifc": true, "audio/x-aiff": true,
	"audio/x-gsm": true, "audio/gsm": true, "audio/ulaw": true,
}

var wavTypes = map[string]bool{"audio/wav": true, "audio/wave": true, "audio/x-wav": true}

// WAV format tags.
const (
	WAVPCM  = 1
	WAVALaw = 6
	WAVULaw = 7
)

// Play is one <Play> the phone heard, with the media the fake fetched for
// it the way Twilio does: a plain GET of the URL, no signature.
type Play struct {
	URL          string
	Status       int
	ContentType  string
	CacheControl string
	ETag         string
	// Format (WAVPCM, WAVALaw, WAVULaw), Channels, Rate and Bits come from
	// the WAV's fmt chunk; Data is its data chunk.
	Format   uint16
	Channels uint16
	Rate     uint32
	Bits     uint16
	Data     []byte
	// Err says why the media could not be played; nil if it could.
	Err error
}

// fetchMedia fetches and checks the media of a <Play>.
func (s *Server) fetchMedia(rawURL string) Play {
	pl := Play{URL: rawURL}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		pl.Err = fmt.Errorf("play %s: %w", rawURL, err)
		return pl
	}
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	s.mu.Lock()
	hc := s.hc
	s.mu.Unlock()
	resp, err := hc.Do(req)
	if err != nil {
		pl.Err = fmt.Errorf("play %s: 11200 HTTP retrieval failure: %w", rawURL, err)
		return pl
	}
	defer resp.Body.Close()
	pl.Status = resp.StatusCode
	pl.ContentType = resp.Header.Get("Content-Type")
	pl.CacheControl = resp.Header.Get("Cache-Control")
	pl.ETag = resp.Header.Get("ETag")
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMedia+1))
	switch {
	case err != nil:
		pl.Err = fmt.Errorf("play %s: 11200 HTTP retrieval failure: %w", rawURL, err)
		return pl
	case resp.StatusCode != http.StatusOK:
		pl.Err = fmt.Errorf("play %s: 11200 HTTP retrieval failure: HTTP %d", rawURL, resp.StatusCode)
		return pl
	case len(body) > maxMedia:
		pl.Err = fmt.Errorf("play %s: media larger than %d bytes", rawURL, maxMedia)
		return pl
	}
	mt, _, _ := mime.ParseMediaType(pl.ContentType)
	if !playable[mt] {
		pl.Err = fmt.Errorf("play %s: 13420 invalid Content-Type %q", rawURL, pl.ContentType)
		return pl
	}
	if !wavTypes[mt] {
		pl.Err = fmt.Errorf("play %s: %s is not decoded by the fake", rawURL, mt)
		return pl
	}
	if err := pl.parseWAV(body); err != nil {
		pl.Err = fmt.Errorf("play %s: not a playable WAV: %w", rawURL, err)
	}
	return pl
}

// parseWAV reads a RIFF WAVE file: the fmt chunk (PCM or G.711) and the
// data chunk, wherever they are (a fact chunk may sit between them).
func (pl *Play) parseWAV(b []byte) error {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return errors.New("no RIFF WAVE header")
	}
	le := binary.LittleEndian
	var haveFmt, haveData bool
	for rest := b[12:]; len(rest) >= 8; {
		id, size := string(rest[0:4]), int(le.Uint32(rest[4:8]))
		rest = rest[8:]
		if size > len(rest) {
			return fmt.Errorf("chunk %q of %d bytes overruns the file", id, size)
		}
		chunk := rest[:size]
		switch id {
		case "fmt ":
			if size < 16 {
				return errors.New("short fmt chunk")
			}
			pl.Format, pl.Channels = le.Uint16(chunk[0:2]), le.Uint16(chunk[2:4])
			pl.Rate, pl.Bits = le.Uint32(chunk[4:8]), le.Uint16(chunk[14:16])
			haveFmt = true
		case "data":
			pl.Data = append([]byte(nil), chunk...)
			haveData = true
		}
		// Chunks are padded to an even size; a last pad byte may be missing.
		rest = rest[min(size+size%2, len(rest)):]
	}
	switch {
	case !haveFmt || !haveData:
		return errors.New("no fmt or data chunk")
	case pl.Channels < 1 || pl.Channels > 2 || pl.Rate == 0:
		return fmt.Errorf("%d channels at %d Hz", pl.Channels, pl.Rate)
	case (pl.Format == WAVULaw || pl.Format == WAVALaw) && pl.Bits != 8,
		pl.Format == WAVPCM && pl.Bits != 8 && pl.Bits != 16:
		return fmt.Errorf("format %d with %d bits", pl.Format, pl.Bits)
	case pl.Format != WAVPCM && pl.Format != WAVULaw && pl.Format != WAVALaw:
		return fmt.Errorf("format tag %d: only PCM and G.711 are played", pl.Format)
	case len(pl.Data) == 0:
		return errors.New("no samples")
	}
	return nil
}
