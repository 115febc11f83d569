// Package flatjson reads one narrow form of JSON object by hand, for the
// objects the gateway decodes on every request (API request bodies, the
// store's wire fields), where encoding/json's reflection was a large part
// of a request's CPU.
//
// The form: one object with no whitespace; keys and string values of
// printable ASCII without escapes; non-negative integers without leading
// zeros, fraction or exponent, within int64; true and false; arrays of such
// strings. Scan reads exactly that and reports false for anything else
// (escapes, non-ASCII text, null, nested objects, other numbers, ...), and
// the caller then decodes with encoding/json, so the fast path never
// decides what encoding/json would not. The destination decides which keys
// and kinds it takes: a key it does not know exactly (encoding/json also
// matches keys case-insensitively) sends the object to encoding/json too.
package flatjson

import (
	"encoding/json"
	"math"
)

// Kind is the kind of a member's value.
type Kind byte

// The kinds Scan reads.
const (
	String Kind = iota + 1
	Int
	Bool
	Strings // an array of strings
)

// Member is one member of an object as Scan reads it. Str and the
// elements of List share memory with the scanned string.
type Member struct {
	Key  string
	Kind Kind
	Str  string
	Int  int64
	Bool bool
	List []string
}

// Setter is a destination that takes members by key. SetMember reports
// false for a key or kind it does not take as is.
type Setter interface {
	SetMember(m Member) bool
}

// Unmarshal decodes the JSON object s into dst, which must be zero: by
// Scan when s is in the narrow form, by encoding/json otherwise.
func Unmarshal[T any, P interface {
	*T
	Setter
}](s string, dst P) error {
	if Scan(s, dst) {
		return nil
	}
	*dst = *new(T)
	return json.Unmarshal([]byte(s), dst)
}

// Scan hands each member of the object s to dst and reports whether s is
// in the narrow form and dst took every member. When it reports false dst
// may hold some members: zero it before decoding s otherwise.
func Scan(s string, dst Setter) bool {
	if len(s) < 2 || s[0] != '{' {
		return false
	}
	if s == "{}" {
		return true
	}
	i := 1
	for {
		var m Member
		var ok bool
		if m.Key, i, ok = plainString(s, i); !ok || i >= len(s) || s[i] != ':' {
			return false
		}
		i++
		if i >= len(s) {
			return false
		}
		switch c := s[i]; {
		case c == '"':
			m.Kind = String
			m.Str, i, ok = plainString(s, i)
		case c >= '0' && c <= '9':
			m.Kind = Int
			m.Int, i, ok = plainInt(s, i)
		case c == 't' || c == 'f':
			m.Kind = Bool
			m.Bool, i, ok = plainBool(s, i)
		case c == '[':
			m.Kind = Strings
			m.List, i, ok = plainStrings(s, i)
		default:
			return false
		}
		if !ok || i >= len(s) || !dst.SetMember(m) {
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

// plainBool reads true or false starting at s[i].
func plainBool(s string, i int) (bool, int, bool) {
	switch {
	case len(s)-i >= 4 && s[i:i+4] == "true":
		return true, i + 4, true
	case len(s)-i >= 5 && s[i:i+5] == "false":
		return false, i + 5, true
	}
	return false, i, false
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
