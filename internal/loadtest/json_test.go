package loadtest

import (
	"bytes"
	"encoding/json"
	"testing"
)

// startAnswer is what POST /v1/verifications answers (api.appendView).
const startAnswer = `{"id":"vf_01JQ8Z3K9N2M4P6R8T0V2X4Z6B","status":"pending","channel":"sms","to":"+49151*****789",` +
	`"route":{"channel":"sms","provider":"console","reasons":["default"]},"attempts_left":5,"sends":1,` +
	`"created_at":"2025-03-01T12:00:00.123456789Z","updated_at":"2025-03-01T12:00:00.123456789Z",` +
	`"expires_at":"2025-03-01T12:10:00.123456789Z","events":[{"type":"sent","at":"2025-03-01T12:00:00.123456789Z",` +
	`"channel":"sms","provider":"console"}]}`

func TestStringField(t *testing.T) {
	for _, c := range []struct {
		doc, key, want string
		ok             bool
	}{
		{startAnswer, "id", "vf_01JQ8Z3K9N2M4P6R8T0V2X4Z6B", true},
		{startAnswer, "status", "pending", true},
		{startAnswer, "provider", "", false}, // only nested
		{startAnswer, "attempts_left", "", false},
		{`{"id":"vf_1","status":"approved","attempts_left":4}`, "status", "approved", true},
		{` { "a" : [1,{"status":"x"},"]"] , "status" : "y" } `, "status", "y", true},
		{`{"a":"q\"status\":","status":"z"}`, "status", "z", true},
		{`{"st\u0061tus":"esc\"aped\u00e9"}`, "status", "esc\"apedé", true},
		{`{"status":null}`, "status", "", false},
		{`{"error":{"code":"not_found","message":"m"}}`, "status", "", false},
		{`{"status":"unterminated`, "status", "", false},
		{`["status","x"]`, "status", "", false},
		{``, "status", "", false},
		{`{"a":tru`, "status", "", false},
	} {
		got, ok := StringField([]byte(c.doc), c.key)
		if got != c.want || ok != c.ok {
			t.Errorf("StringField(%s, %q) = %q, %v; want %q, %v", c.doc, c.key, got, ok, c.want, c.ok)
		}
	}
}

// FuzzStringField: on any JSON object whose top-level keys are unique,
// StringField agrees with encoding/json.
func FuzzStringField(f *testing.F) {
	f.Add([]byte(startAnswer), "id")
	f.Add([]byte(`{"a":{"b":["c",{"d":"e"}]},"b":"\u00e9\\"}`), "b")
	f.Add([]byte(`{"\u0062":"x"}`), "b")
	f.Fuzz(func(t *testing.T, doc []byte, key string) {
		got, ok := StringField(doc, key)
		var m map[string]any
		if json.Unmarshal(doc, &m) != nil || !uniqueKeys(doc) {
			return
		}
		want, wantOK := m[key].(string)
		if got != want || ok != wantOK {
			t.Errorf("StringField(%s, %q) = %q, %v; encoding/json: %q, %v", doc, key, got, ok, want, wantOK)
		}
	})
}

// uniqueKeys reports whether the top-level keys of the JSON object doc
// are distinct (encoding/json keeps the last of equal keys, StringField
// the first).
func uniqueKeys(doc []byte) bool {
	d := json.NewDecoder(bytes.NewReader(doc))
	seen := map[string]bool{}
	depth, key := 0, true
	for {
		tok, err := d.Token()
		if err != nil {
			return true
		}
		switch tok := tok.(type) {
		case json.Delim:
			if tok == '{' || tok == '[' {
				depth++
			} else {
				depth--
			}
			if depth == 1 {
				key = true
			}
			continue
		case string:
			if depth == 1 && key {
				if seen[tok] {
					return false
				}
				seen[tok] = true
				key = false
				continue
			}
		}
		if depth == 1 {
			key = true
		}
	}
}

// BenchmarkStringField reads id and status of a start answer, against
// json.Unmarshal into the smallest struct that holds them.
func BenchmarkStringField(b *testing.B) {
	doc := []byte(startAnswer)
	b.Run("StringField", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			id, _ := StringField(doc, "id")
			st, _ := StringField(doc, "status")
			if id == "" || st == "" {
				b.Fatal(id, st)
			}
		}
	})
	b.Run("Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v struct{ ID, Status string }
			if err := json.Unmarshal(doc, &v); err != nil || v.ID == "" {
				b.Fatal(err)
			}
		}
	})
}
