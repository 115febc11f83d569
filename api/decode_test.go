package api

import (
	"fmt"
	mrand "math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/verigate/verigate/internal/flatjson"
)

// decodeAgrees decodes body into a new T through decodeBody and through
// encoding/json alone (decodeJSON), and fails t unless both give the same
// value, or the same error message. It reports whether flatjson took it.
func decodeAgrees[T any](t testing.TB, h *handler, body string) (fast bool) {
	t.Helper()
	var got, want T
	if s, ok := any(new(T)).(flatjson.Setter); ok {
		fast = flatjson.Scan(body, s)
	}
	gotErr := h.decodeBody(body, &got)
	wantErr := h.decodeJSON(body, &want)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Fatalf("%T %q: error %v, encoding/json: %v", got, body, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%T %q (fast %v):\n got  %+v\n want %+v", got, body, fast, got, want)
	}
	return fast
}

func TestDecodeBodyMatchesEncodingJSON(t *testing.T) {
	h := &handler{limit: 1 << 16}
	bodies := []string{
		`{}`, `{"to":"+4915123456789"}`, `{"to":"+4915123456789","channel":"call","call_mode":"code","locale":"de","roaming":true}`,
		`{"to":"0151 23456789","client_ip":"2001:db8::1","callback_url":"https://idp.example/h","user_id":"u-1","roaming":false}`,
		`{"to":1}`, `[]`, `null`, `{"to":"+49"} {}`, `{"to":"+49"}x`, `{"to":"\u0000"}`, `{"TO":"+49"}`, `{"To":"+49","to":"+1"}`,
		`{"channel":"sms","channel":"call","to":"+4915123456789"}`, `{"roaming":null}`, `{"roaming":"yes"}`, `{"roaming":1}`,
		`{"code":"123456"}`, `{"code":123456}`, `{"code":"12\"3"}`, `{"to":"+49","code":"1234"}`, `{"nope":"x"}`, `{"code":["1"]}`,
		`{"to":"+49",}`, `{"to":"+49"`, `{"to"}`, ``, ` `, `{"to":"é"}`, `{"locale":"pt-BR","user_id":"` + strings.Repeat("u", 300) + `"}`,
	}
	r := mrand.New(mrand.NewPCG(3, 4))
	keys := []string{"to", "channel", "locale", "user_id", "call_mode", "client_ip", "roaming", "callback_url", "code", "Code", "x"}
	values := []string{`"+4915123456789"`, `"sms"`, `""`, `true`, `false`, `null`, `7`, `["a"]`, `{}`, `"a\"b"`, `"ü"`}
	for range 3000 {
		var b strings.Builder
		b.WriteByte('{')
		for i := range r.IntN(4) {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%q:%s", keys[r.IntN(len(keys))], values[r.IntN(len(values))])
		}
		b.WriteByte('}')
		bodies = append(bodies, b.String())
	}
	fast := 0
	for _, body := range bodies {
		for _, took := range []bool{
			decodeAgrees[startRequest](t, h, body),
			decodeAgrees[checkRequest](t, h, body),
			decodeAgrees[checkByNumberRequest](t, h, body),
		} {
			if took {
				fast++
			}
		}
	}
	if fast < 500 {
		t.Fatalf("flatjson took only %d bodies", fast)
	}
}

// FuzzDecodeBody: for any body, every request type decodes as encoding/json
// alone would decode it.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{`{"to":"+4915123456789","roaming":true}`, `{"code":"123456"}`, `{"to":"+49","code":"1"}`, `{"to":"\u0041"}`} {
		f.Add(s)
	}
	h := &handler{limit: 1 << 16}
	f.Fuzz(func(t *testing.T, body string) {
		decodeAgrees[startRequest](t, h, body)
		decodeAgrees[checkRequest](t, h, body)
		decodeAgrees[checkByNumberRequest](t, h, body)
	})
}
