package store

import (
	"encoding/json"
	"math"

	"github.com/verigate/verigate/verify"
)

// A check decodes a verification's wire fields (wireFixed, the route and
// every event) on each request, and encoding/json's reflection was the
// largest part of that. The store writes those fields itself, in a narrow
// form: one JSON object, no whitespace, strings of printable ASCII without
// escapes, non-negative integers, arrays of such strings. unmarshalWire
// reads exactly that form by hand and leaves anything else (escapes,
// non-ASCII text, unknown or differently cased keys, null, ...) to
// encoding/json, so the fast path never decides what encoding/json would
// not; wirejson_test.go holds it to that.

// wireMember is one member of a wire object as scanFlat reads it.
type wireMember struct {
	key  string
	kind byte // 's' string, 'n' integer, 'a' array of strings
	str  string
	num  int64
	list []string
}

// wireSetter is a wire struct that takes members by key. set reports
// false for a key or kind it does not know.
type wireSetter interface {
	set(m wireMember) bool
}

// unmarshalWire decodes the wire object s into dst, which must be zero.
func unmarshalWire[T any, P interface {
	*T
	wireSetter
}](s string, dst P) error {
	if scanFlat(s, dst) {
		return nil
	}
	*dst = *new(T)
	return json.Unmarshal([]byte(s), dst)
}

// scanFlat hands each member of the object s to dst, and reports false
// when s is not in the narrow form (dst may then hold some members).
func scanFlat(s string, dst wireSetter) bool {
	if len(s) < 2 || s[0] != '{' {
		return false
	}
	if s == "{}" {
		return true
	}
	i := 1
	for {
		var m wireMember
		var ok bool
		if m.key, i, ok = plainString(s, i); !ok || i >= len(s) || s[i] != ':' {
			return false
		}
		i++
		if i >= len(s) {
			return false
		}
		switch c := s[i]; {
		case c == '"':
			m.kind = 's'
			m.str, i, ok = plainString(s, i)
		case c >= '0' && c <= '9':
			m.kind = 'n'
			m.num, i, ok = plainInt(s, i)
		case c == '[':
			m.kind = 'a'
			m.list, i, ok = plainStrings(s, i)
		}
		if !ok || i >= len(s) || !dst.set(m) {
			return false
		}
		switch {
		case s[i] == ',':
			i++
		case s[i] == '}' && i == len(s)-1:
			return true
		default:
			return false
		}
	}
}

// plainString reads the string starting at s[i] ('"'): printable ASCII,
// no backslash. It returns the contents and the index after the closing
// quote.
func plainString(s string, i int) (string, int, bool) {
	if i >= len(s) || s[i] != '"' {
		return "", i, false
	}
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			return s[i+1 : j], j + 1, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return "", i, false
		}
	}
	return "", i, false
}

// plainInt reads the non-negative integer starting at s[i]: no leading
// zero, no fraction or exponent, within int64.
func plainInt(s string, i int) (int64, int, bool) {
	var n int64
	j := i
	for ; j < len(s) && s[j] >= '0' && s[j] <= '9'; j++ {
		d := int64(s[j] - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, i, false
		}
		n = n*10 + d
	}
	if j == i || (j-i > 1 && s[i] == '0') {
		return 0, i, false
	}
	return n, j, true
}

// plainStrings reads the array of plain strings starting at s[i] ('[').
func plainStrings(s string, i int) ([]string, int, bool) {
	i++ // '['
	list := []string{}
	if i < len(s) && s[i] == ']' {
		return list, i + 1, true
	}
	for {
		str, j, ok := plainString(s, i)
		if !ok || j >= len(s) {
			return nil, i, false
		}
		list = append(list, str)
		switch s[j] {
		case ',':
			i = j + 1
		case ']':
			return list, j + 1, true
		default:
			return nil, i, false
		}
	}
}

func (w *wireEvent) set(m wireMember) bool {
	if m.kind == 'n' {
		if m.key != "at" {
			return false
		}
		w.At = m.num
		return true
	}
	if m.kind != 's' {
		return false
	}
	switch m.key {
	case "t":
		w.Type = verify.EventType(m.str)
	case "c":
		w.Channel = verify.Channel(m.str)
	case "p":
		w.Provider = m.str
	case "r":
		w.ProviderRef = m.str
	case "e":
		w.ErrorCode = m.str
	case "d":
		w.Detail = m.str
	default:
		return false
	}
	return true
}

func (f *wireFixed) set(m wireMember) bool {
	if m.kind == 'n' {
		if m.key != "created" {
			return false
		}
		f.Created = m.num
		return true
	}
	if m.kind != 's' {
		return false
	}
	switch m.key {
	case "id":
		f.ID = m.str
	case "to":
		f.To = m.str
	case "country":
		f.Country = m.str
	case "user_id":
		f.UserID = m.str
	case "client_ip":
		f.ClientIP = m.str
	case "callback_url":
		f.CallbackURL = m.str
	default:
		return false
	}
	return true
}

// wireRoute is verify.Route as stored (its own JSON form).
type wireRoute verify.Route

func (r *wireRoute) set(m wireMember) bool {
	if m.kind == 'a' {
		if m.key != "reasons" {
			return false
		}
		r.Reasons = m.list
		return true
	}
	if m.kind != 's' {
		return false
	}
	switch m.key {
	case "channel":
		r.Channel = verify.Channel(m.str)
	case "provider":
		r.Provider = m.str
	case "trunk":
		r.Trunk = m.str
	case "sender_id":
		r.SenderID = m.str
	case "fallback":
		r.Fallback = verify.Channel(m.str)
	default:
		return false
	}
	return true
}
