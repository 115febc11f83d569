package api

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/verigate/verigate/verify"
)

// The responses are written by hand instead of through encoding/json's
// reflection: they are the hottest allocation of the API after number
// parsing. view_oracle_test.go holds the encoding/json structs they must match
// byte for byte (the OpenAPI tests check the shape as well).

// appendView appends a verification as the API shows it: the number
// masked, no code hashes, no tenant, call_mode for calls only.
func appendView(b []byte, v *verify.Verification) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, v.ID)
	b = append(b, `,"status":`...)
	b = appendString(b, string(v.Status))
	if v.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, v.Reason)
	}
	b = append(b, `,"channel":`...)
	b = appendString(b, string(v.Channel))
	if v.Channel == verify.ChannelCall && v.CallMode != "" {
		b = append(b, `,"call_mode":`...)
		b = appendString(b, string(v.CallMode))
	}
	if v.Locale != "" {
		b = append(b, `,"locale":`...)
		b = appendString(b, v.Locale)
	}
	b = append(b, `,"to":`...)
	b = appendString(b, verify.MaskNumber(v.To))
	b = append(b, `,"route":{"channel":`...)
	b = appendString(b, string(v.Route.Channel))
	if v.Route.Provider != "" {
		b = append(b, `,"provider":`...)
		b = appendString(b, v.Route.Provider)
	}
	if v.Route.Trunk != "" {
		b = append(b, `,"trunk":`...)
		b = appendString(b, v.Route.Trunk)
	}
	if len(v.Route.Reasons) > 0 {
		b = append(b, `,"reasons":[`...)
		for i, r := range v.Route.Reasons {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, r)
		}
		b = append(b, ']')
	}
	b = append(b, `},"attempts_left":`...)
	b = strconv.AppendInt(b, int64(v.AttemptsLeft()), 10)
	b = append(b, `,"sends":`...)
	b = strconv.AppendInt(b, int64(v.Sends), 10)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, v.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, v.UpdatedAt)
	b = append(b, `,"expires_at":`...)
	b = appendTime(b, v.ExpiresAt)
	b = append(b, `,"events":[`...)
	for i := range v.Events {
		e := &v.Events[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":`...)
		b = appendString(b, string(e.Type))
		b = append(b, `,"at":`...)
		b = appendTime(b, e.At)
		for _, f := range [...]struct{ name, value string }{
			{`,"channel":`, string(e.Channel)}, {`,"provider":`, e.Provider},
			{`,"error_code":`, e.ErrorCode}, {`,"detail":`, e.Detail},
		} {
			if f.value != "" {
				b = append(b, f.name...)
				b = appendString(b, f.value)
			}
		}
		if e.Attempt != 0 {
			b = append(b, `,"attempt":`...)
			b = strconv.AppendInt(b, int64(e.Attempt), 10)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendCheck appends the answer to a check.
func appendCheck(b []byte, v *verify.Verification) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, v.ID)
	b = append(b, `,"status":`...)
	b = appendString(b, string(v.Status))
	b = append(b, `,"attempts_left":`...)
	b = strconv.AppendInt(b, int64(v.AttemptsLeft()), 10)
	return append(b, '}')
}

// appendTime writes t as encoding/json does: RFC 3339 with nanoseconds.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string exactly as encoding/json does:
// control characters, <, > and & as \u escapes, U+2028 and U+2029
// escaped, invalid UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
