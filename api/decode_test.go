package api

import (
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
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
	wantErr := h.decodeJSON(strings.NewReader(body), &want)
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

// TestDecodeFromMatchesStreaming: a body read whole decodes as a decoder
// streaming from the request would have decoded it, also when the body runs
// over the limit without a Content-Length or the connection fails midway:
// the answer names the first thing wrong in the order the client sent it.
func TestDecodeFromMatchesStreaming(t *testing.T) {
	const limit = 64
	h := &handler{limit: limit}
	pad := strings.Repeat(" ", 2*limit)
	bodies := []string{
		`{"to":"+4915123456789"}`, `{"to":"+4915123456789"}` + pad, `{"to":"+49"}x` + pad, `{"to":x` + pad, `{"nope":1}` + pad,
		`{"to":` + pad + `"+49"}`, pad, `{"to":"+49","code":"1"}`, `{"to":"` + strings.Repeat("4", 2*limit) + `"}`, ``,
	}
	errs := []error{nil, io.ErrUnexpectedEOF, errors.New("read tcp: connection reset by peer")}
	for _, body := range bodies {
		for _, cut := range []int{len(body), len(body) / 2, 7} {
			if cut > len(body) {
				continue
			}
			for _, readErr := range errs {
				src := func() io.Reader {
					var r io.Reader = strings.NewReader(body[:cut])
					if readErr != nil {
						r = io.MultiReader(r, failingReader{readErr})
					}
					return http.MaxBytesReader(nil, io.NopCloser(r), limit)
				}
				for _, dst := range []func() any{func() any { return new(startRequest) }, func() any { return new(checkRequest) }} {
					got, want := dst(), dst()
					gotErr, wantErr := h.decodeFrom(src(), got), h.decodeJSON(src(), want)
					if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || (wantErr == nil && !reflect.DeepEqual(got, want)) {
						t.Fatalf("%T from %q (read error %v): %v %+v, streaming: %v %+v", got, body[:cut], readErr, gotErr, got, wantErr, want)
					}
				}
			}
		}
	}
}
