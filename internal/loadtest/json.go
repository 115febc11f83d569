package loadtest

import (
	"encoding/json"
	"unicode/utf8"
)

// StringField returns the value of the string member key at the top
// level of the JSON object doc, and whether there is one. Nested objects
// and arrays are skipped, so a member of the same name inside them does
// not count. It validates no more than it needs to find the member: a
// load generator reads answers it knows to be JSON, and only needs one
// or two fields of them, without encoding/json's reflection and
// allocations (BenchmarkStringField compares).
//
// A key or value with escapes or invalid UTF-8 is decoded by
// encoding/json, so the result is what json.Unmarshal would give.
func StringField(doc []byte, key string) (string, bool) {
	i := skipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return "", false
	}
	i++
	for {
		i = skipSpace(doc, i)
		if i >= len(doc) || doc[i] != '"' {
			return "", false // '}' or not JSON
		}
		start := i
		k, end, escaped := scanString(doc, i)
		if end < 0 {
			return "", false
		}
		i = skipSpace(doc, end)
		if i >= len(doc) || doc[i] != ':' {
			return "", false
		}
		i = skipSpace(doc, i+1)
		match := string(k) == key
		if escaped || !utf8.Valid(k) {
			var s string
			match = json.Unmarshal(doc[start:end], &s) == nil && s == key
		}
		if match && i < len(doc) && doc[i] == '"' {
			v, vend, vesc := scanString(doc, i)
			if vend < 0 {
				return "", false
			}
			if !vesc && utf8.Valid(v) {
				return string(v), true
			}
			var s string
			if json.Unmarshal(doc[i:vend], &s) != nil {
				return "", false
			}
			return s, true
		}
		if match {
			return "", false // the member is there but not a string
		}
		if i = skipValue(doc, i); i < 0 {
			return "", false
		}
		i = skipSpace(doc, i)
		if i >= len(doc) || doc[i] != ',' {
			return "", false // '}': no such member
		}
		i++
	}
}

// scanString reads the JSON string starting at doc[i] == '"' and returns
// its raw contents, the index after its closing quote (-1 when it does
// not close), and whether it holds escapes.
func scanString(doc []byte, i int) (raw []byte, end int, escaped bool) {
	for j := i + 1; j < len(doc); j++ {
		switch doc[j] {
		case '"':
			return doc[i+1 : j], j + 1, escaped
		case '\\':
			escaped = true
			j++ // the byte it escapes (\uXXXX's digits are not quotes)
		}
	}
	return nil, -1, false
}

// skipValue returns the index after the JSON value at doc[i], or -1.
func skipValue(doc []byte, i int) int {
	if i >= len(doc) {
		return -1
	}
	switch doc[i] {
	case '"':
		_, end, _ := scanString(doc, i)
		return end
	case '{', '[':
		depth := 0
		for ; i < len(doc); i++ {
			switch doc[i] {
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			case '"':
				_, end, _ := scanString(doc, i)
				if end < 0 {
					return -1
				}
				i = end - 1
			}
		}
		return -1
	default: // number, true, false, null
		for ; i < len(doc); i++ {
			switch doc[i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return i
			}
		}
		return i
	}
}

func skipSpace(doc []byte, i int) int {
	for i < len(doc) {
		switch doc[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}
