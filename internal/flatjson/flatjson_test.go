package flatjson_test

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"testing"

	"github.com/verigate/verigate/internal/flatjson"
)

// members takes every member, as encoding/json's map[string]any would
// hold it (the last of a repeated key wins).
type members map[string]any

func (ms members) SetMember(m flatjson.Member) bool {
	switch m.Kind {
	case flatjson.String:
		ms[m.Key] = m.Str
	case flatjson.Int:
		ms[m.Key] = float64(m.Int) // encoding/json's number in an any, rounded the same way
	case flatjson.Bool:
		ms[m.Key] = m.Bool
	case flatjson.Strings:
		l := make([]any, len(m.List))
		for i, s := range m.List {
			l[i] = s
		}
		ms[m.Key] = l
	default:
		return false
	}
	return true
}

// agree fails t when Scan takes s but encoding/json reads it otherwise.
func agree(t testing.TB, s string) bool {
	t.Helper()
	got := members{}
	if !flatjson.Scan(s, got) {
		return false
	}
	var want map[string]any
	if err := json.Unmarshal([]byte(s), &want); err != nil {
		t.Fatalf("Scan took %q, encoding/json: %v", s, err)
	}
	if !reflect.DeepEqual(map[string]any(got), want) {
		t.Fatalf("%q: Scan %v, encoding/json %v", s, got, want)
	}
	return true
}

func TestScan(t *testing.T) {
	for _, c := range []struct {
		s    string
		fast bool
	}{
		{`{}`, true},
		{`{"a":"b"}`, true},
		{`{"a":"b","c":1,"d":true,"e":false,"f":["x","y"],"g":[]}`, true},
		{`{"a":"b","a":"c"}`, true},
		{`{"n":0}`, true},
		{`{"n":` + strconv.FormatInt(math.MaxInt64, 10) + `}`, true},
		{`{"n":9223372036854775808}`, false},
		{`{"n":00}`, false}, {`{"n":01}`, false}, {`{"n":-1}`, false}, {`{"n":1.5}`, false}, {`{"n":1e3}`, false},
		{`{"b":tru}`, false}, {`{"b":truex}`, false}, {`{"b":null}`, false}, {`{"b":True}`, false},
		{`{"a":"\""}`, false}, {`{"a":"é"}`, false}, {"{\"a\":\"\x7f\"}", false}, {"{\"a\":\"a\tb\"}", false},
		{`{"a":{"b":"c"}}`, false}, {`{"a":["b",1]}`, false}, {`{"a":["b",]}`, false}, {`{"a":[`, false},
		{`{"a":"b",}`, false}, {`{"a":"b"}x`, false}, {`{"a":"b"} `, false}, {` {"a":"b"}`, false}, {`{"a" :"b"}`, false},
		{`{"a":"b"`, false}, {`{"a":}`, false}, {`{"a"}`, false}, {`{`, false}, {``, false}, {`[]`, false}, {`"a"`, false},
	} {
		if got := agree(t, c.s); got != c.fast {
			t.Errorf("Scan(%q) = %v, want %v", c.s, got, c.fast)
		}
	}
}

// lenient takes every member by key, whatever its kind: Scan alone must
// refuse what is not in the form.
type lenient struct{ n int }

func (l *lenient) SetMember(flatjson.Member) bool { l.n++; return true }

func TestScanRefusesMissingValues(t *testing.T) {
	for _, s := range []string{`{"k":}`, `{"k":,"j":"x"}`, `{"k":"x","j":}`, `{"k":n}`, `{"k":-1}`, `{"k":{}}`} {
		if flatjson.Scan(s, &lenient{}) {
			t.Errorf("Scan(%q) = true", s)
		}
	}
}

// refusing takes no member: every object but {} goes to encoding/json.
type refusing struct{ A string }

func (*refusing) SetMember(flatjson.Member) bool { return false }

func TestUnmarshalFallsBack(t *testing.T) {
	var r refusing
	if err := flatjson.Unmarshal(`{"A":"x"}`, &r); err != nil || r.A != "x" {
		t.Fatalf("Unmarshal = %+v, %v: want encoding/json's result", r, err)
	}
	if err := flatjson.Unmarshal(`{"A":`, new(refusing)); err == nil {
		t.Fatal("Unmarshal of a broken object: no error")
	}
}

// FuzzScan: whatever Scan takes, encoding/json reads the same way.
func FuzzScan(f *testing.F) {
	for _, s := range []string{`{"a":"b","c":1,"d":true,"e":["x"]}`, `{"a":"\u0041"}`, `{"n":123}`, `{}`, `{"a":[]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		agree(t, s)
	})
}
