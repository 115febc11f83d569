package media

import (
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"
)

// DTMFMode says where a Session takes key presses from. Trunks set it
// in configuration (`dtmf: rfc4733 | info | inband | auto`) because PBXs
// differ in where they put DTMF.
type DTMFMode string

// The DTMF modes. The zero value means DTMFAuto.
const (
	// DTMFAuto takes RFC 4733 events and SIP INFO, and listens for in-band
	// tones only when no telephone-event was negotiated. The first source
	// that delivers a digit is kept for the rest of the call and the others
	// are ignored: a PBX that relays a key both as RFC 4733 and as INFO (or
	// leaves the tones in the audio) must not count it twice.
	DTMFAuto DTMFMode = "auto"
	// DTMFRFC4733 takes telephone-event packets only.
	DTMFRFC4733 DTMFMode = "rfc4733"
	// DTMFInfo takes SIP INFO requests only (handed over with HandleINFO).
	DTMFInfo DTMFMode = "info"
	// DTMFInband detects tones in the G.711 audio only.
	DTMFInband DTMFMode = "inband"
)

// ParseDTMFMode reads a configured mode; "" is DTMFAuto.
func ParseDTMFMode(s string) (DTMFMode, error) {
	switch m := DTMFMode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return DTMFAuto, nil
	case DTMFAuto, DTMFRFC4733, DTMFInfo, DTMFInband:
		return m, nil
	}
	return "", fmt.Errorf("dtmf mode %q: want rfc4733, info, inband or auto", s)
}

// dtmfSource names where a digit came from, for the auto lock.
type dtmfSource uint8

const (
	srcNone dtmfSource = iota
	srcRFC4733
	srcInfo
	srcInband
)

func (s dtmfSource) String() string {
	return [...]string{"none", "rfc4733", "info", "inband"}[s]
}

// Errors of ParseINFO. A UA answers ErrINFOContentType with 415 Unsupported
// Media Type and ErrINFOBody with 400 Bad Request.
var (
	ErrINFOContentType = errors.New("sip info: not a dtmf content type")
	ErrINFOBody        = errors.New("sip info: malformed dtmf body")
)

// maxINFOBody bounds what ParseINFO reads: a DTMF body is a few bytes.
const maxINFOBody = 1024

// ParseINFO reads the key of a SIP INFO DTMF request. It understands the two
// bodies PBXs send:
//
//	Content-Type: application/dtmf-relay     Content-Type: application/dtmf
//
//	Signal=#                                 #
//	Duration=160
//
// Signal (and the application/dtmf body) may be the key itself or its
// RFC 4733 event number ("11" for #). Duration is in milliseconds and
// optional (0 when absent). Flash (16) is not a key and is an error.
// Errors wrap ErrINFOContentType or ErrINFOBody.
func ParseINFO(contentType string, body []byte) (digit rune, duration time.Duration, err error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %q", ErrINFOContentType, trunc(contentType))
	}
	if len(body) > maxINFOBody {
		return 0, 0, fmt.Errorf("%w: %d bytes", ErrINFOBody, len(body))
	}
	switch mt {
	case "application/dtmf":
		d, err := parseSignal(strings.TrimSpace(string(body)))
		return d, 0, err
	case "application/dtmf-relay":
	default:
		return 0, 0, fmt.Errorf("%w: %q", ErrINFOContentType, mt)
	}
	var sig, dur string
	var haveSig bool
	for line := range strings.SplitSeq(string(body), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "signal":
			sig, haveSig = strings.TrimSpace(v), true
		case "duration":
			dur = strings.TrimSpace(v)
		}
	}
	if !haveSig {
		return 0, 0, fmt.Errorf("%w: no Signal line", ErrINFOBody)
	}
	d, err := parseSignal(sig)
	if err != nil {
		return 0, 0, err
	}
	if dur != "" {
		ms, err := strconv.Atoi(dur)
		if err != nil || ms < 0 || ms > 60_000 {
			return 0, 0, fmt.Errorf("%w: duration %q", ErrINFOBody, trunc(dur))
		}
		duration = time.Duration(ms) * time.Millisecond
	}
	return d, duration, nil
}

func parseSignal(s string) (rune, error) {
	if len(s) == 1 {
		if _, ok := DigitEvent(rune(s[0])); ok {
			r := rune(s[0])
			if r >= 'a' && r <= 'd' {
				r -= 'a' - 'A'
			}
			return r, nil
		}
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 10 && n <= 15 {
		d, _ := EventDigit(uint8(n))
		return d, nil
	}
	return 0, fmt.Errorf("%w: signal %q", ErrINFOBody, trunc(s))
}

// FormatINFO returns the Content-Type and body of a SIP INFO carrying digit
// as application/dtmf-relay, what the test phone sends in `--dtmf info`.
func FormatINFO(digit rune, duration time.Duration) (contentType string, body []byte, err error) {
	if _, ok := DigitEvent(digit); !ok {
		return "", nil, fmt.Errorf("sip info: %q is not a dtmf key", digit)
	}
	return "application/dtmf-relay", fmt.Appendf(nil, "Signal=%c\r\nDuration=%d\r\n", digit, duration.Milliseconds()), nil
}
