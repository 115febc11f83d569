package store

import (
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/flatjson"
	"github.com/verigate/verigate/verify"
)

// decodeBoth decodes s into a fresh T by flatjson.Unmarshal and by
// encoding/json, and fails t when they disagree on the value or on
// whether s decodes at all. It reports whether flatjson.Scan took s.
func decodeBoth[T any, P interface {
	*T
	flatjson.Setter
}](t testing.TB, s string) (fast bool) {
	t.Helper()
	var got, want T
	fast = flatjson.Scan(s, P(new(T)))
	gotErr := flatjson.Unmarshal(s, P(&got))
	wantErr := json.Unmarshal([]byte(s), &want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%T %q: flatjson error %v, encoding/json error %v", got, s, gotErr, wantErr)
	}
	if wantErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%T %q (fast path %v):\n got  %#v\n want %#v", got, s, fast, got, want)
	}
	return fast
}

// decodeAll runs decodeBoth for every wire type.
func decodeAll(t testing.TB, s string) {
	t.Helper()
	decodeBoth[wireEvent](t, s)
	decodeBoth[wireFixed](t, s)
	decodeBoth[wireRoute](t, s)
}

func TestUnmarshalWireEdges(t *testing.T) {
	for _, s := range []string{
		``, `{}`, `{`, `}`, `{"}`, `{"t"}`, `{"t":}`, `{"t":"x"`, `{"t":"x",}`, `{"t":"x"}}`, `{"t":"x"} `, ` {"t":"x"}`,
		`{"t":"x","t":"y"}`, `{"T":"x"}`, `{"t":"x","T":"y"}`, `{"t":null}`, `{"t":1}`, `{"t":true}`, `{"t":["a"]}`,
		`{"t":"a\"b"}`, `{"t":"a\\b"}`, `{"t":"\u00e9"}`, `{"t":"é"}`, "{\"t\":\"\x7f\"}", "{\"t\":\"\xff\"}", "{\"t\":\"a\tb\"}",
		`{"t":"x", "at":1}`, `{"at":0}`, `{"at":00}`, `{"at":01}`, `{"at":-1}`, `{"at":1.5}`, `{"at":1e3}`, `{"at":"1"}`,
		`{"at":123456789012345678}`, `{"at":9223372036854775807}`, `{"at":9223372036854775808}`, `{"at":99999999999999999999}`, `{"at":1,"at":"x"}`, `{"t":"no_answer","a":2}`, `{"a":0}`, `{"a":-1}`, `{"a":"2"}`,
		`{"x":"y"}`, `{"id":"VE1","to":"+4915112345678","created":1}`, `{"created":-5}`, `{"callback_url":"https://a/b?c=1&d=2"}`,
		`{"callback_url":"https://a/b?c=1\u0026d=2"}`, `{"channel":"sms","reasons":[]}`, `{"reasons":["a","b"]}`, `{"reasons":[`,
		`{"reasons":["a",]}`, `{"reasons":["a" ]}`, `{"reasons":[1]}`, `{"reasons":null}`, `{"reasons":["a"],"reasons":["b","c"]}`,
		`{"reasons":"a"}`, `{"channel":["sms"]}`, `{"fallback":"call","sender_id":"ACME","trunk":"pbx"}`, `{"provider":""}`,
	} {
		decodeAll(t, s)
	}
}

// randomText draws strings that need no escape most of the time and every
// kind of escape (quotes, control characters, &<>, non-ASCII, invalid
// UTF-8) some of the time.
func randomText(r *mrand.Rand) string {
	const plain = "abcxyzABC0123456789+-_.:/?=@ "
	tricky := []string{`"`, `\`, "\n", "\t", "\x00", "&", "<", ">", "é", "€", "\u2028", "\xff", "😀"}
	var b strings.Builder
	for range r.IntN(12) {
		if r.IntN(40) == 0 {
			b.WriteString(tricky[r.IntN(len(tricky))])
		} else {
			b.WriteByte(plain[r.IntN(len(plain))])
		}
	}
	return b.String()
}

// TestUnmarshalWireRoundTrip encodes random values as the store does and
// decodes them both ways: the same value back, and the fast path taken
// for every value whose strings need no escaping.
func TestUnmarshalWireRoundTrip(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	fastSeen := 0
	for range 5000 {
		ev := wireEvent{Type: verify.EventType(randomText(r)), At: r.Int64(), Channel: verify.Channel(randomText(r)),
			Provider: randomText(r), ProviderRef: randomText(r), ErrorCode: randomText(r), Detail: randomText(r),
			Attempt: r.Int64N(3)}
		fx := wireFixed{ID: randomText(r), To: randomText(r), Country: randomText(r), UserID: randomText(r),
			ClientIP: randomText(r), CallbackURL: randomText(r), Created: r.Int64()}
		rt := wireRoute{Channel: verify.Channel(randomText(r)), Provider: randomText(r), Trunk: randomText(r),
			SenderID: randomText(r), Fallback: verify.Channel(randomText(r))}
		for range r.IntN(4) {
			rt.Reasons = append(rt.Reasons, randomText(r))
		}
		for _, c := range []struct {
			v      any
			decode func(string) (any, bool)
		}{
			{ev, func(s string) (any, bool) {
				f := decodeBoth[wireEvent](t, s)
				var w wireEvent
				_ = flatjson.Unmarshal(s, &w)
				return w, f
			}},
			{fx, func(s string) (any, bool) {
				f := decodeBoth[wireFixed](t, s)
				var w wireFixed
				_ = flatjson.Unmarshal(s, &w)
				return w, f
			}},
			{rt, func(s string) (any, bool) {
				f := decodeBoth[wireRoute](t, s)
				var w wireRoute
				_ = flatjson.Unmarshal(s, &w)
				return w, f
			}},
		} {
			b, err := json.Marshal(c.v)
			if err != nil {
				t.Fatal(err)
			}
			got, fast := c.decode(string(b))
			plain := !strings.ContainsFunc(string(b), func(r rune) bool { return r < 0x20 || r >= 0x7f || r == '\\' })
			if plain != fast {
				t.Fatalf("%s: fast path %v", b, fast)
			}
			if fast {
				fastSeen++
				if !reflect.DeepEqual(got, c.v) {
					t.Fatalf("%s: decoded %#v, want %#v", b, got, c.v)
				}
			}
		}
	}
	if fastSeen < 1000 {
		t.Fatalf("the fast path took only %d of 15000 values", fastSeen)
	}
}

// TestWireFastPath: what the store writes for an ordinary verification
// takes the fast path, so checks do not fall back to reflection unseen.
func TestWireFastPath(t *testing.T) {
	v := &verify.Verification{CreatedAt: time.Now(), ID: "VE0123456789abcdef0123456789abcdef", To: "+4915112345678", Country: "DE", UserID: "user-42",
		ClientIP: "192.0.2.7", CallbackURL: "https://idp.example/hooks/verigate", Tenant: "acme", Channel: verify.ChannelSMS,
		Route: verify.Route{Channel: verify.ChannelSMS, Provider: "twilio", Fallback: verify.ChannelCall, Reasons: []string{"requested", "mobile"}}}
	created := verify.Event{Type: verify.EventCreated, Channel: verify.ChannelSMS, Provider: "twilio"}
	route, err := json.Marshal(v.Route)
	if err != nil {
		t.Fatal(err)
	}
	args, err := appendFields(nil, v, "hash", string(route), created)
	if err != nil {
		t.Fatal(err)
	}
	if len(args) != len(viewFields) {
		t.Fatalf("appendFields gave %d values for %d fields", len(args), len(viewFields))
	}
	byName := map[string]string{}
	for i, f := range viewFields {
		byName[f] = fmt.Sprint(args[i])
	}
	if !flatjson.Scan(byName["fixed"], new(wireFixed)) || !flatjson.Scan(byName["route"], new(wireRoute)) || !flatjson.Scan(byName["ev"], new(wireEvent)) {
		t.Fatalf("the store's own fields miss the fast path: %q %q %q", byName["fixed"], byName["route"], byName["ev"])
	}
	for _, e := range []string{`{"t":"approved","at":1732440000000000}`, `{"t":"expired","at":1732440000000000}`} { // as the scripts write them
		if !flatjson.Scan(e, new(wireEvent)) {
			t.Fatalf("script event %s misses the fast path", e)
		}
	}
}

// FuzzUnmarshalWire: for any input, flatjson.Unmarshal agrees with
// encoding/json for every wire type.
func FuzzUnmarshalWire(f *testing.F) {
	for _, s := range []string{`{"t":"created","at":1,"c":"sms","p":"console"}`, `{"id":"VE1","to":"+49","created":5}`,
		`{"channel":"sms","reasons":["a","b"]}`, `{"t":"a\"b"}`, `{}`, `{"reasons":[]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		decodeAll(t, s)
	})
}

func TestAsStored(t *testing.T) {
	r := mrand.New(mrand.NewPCG(5, 6))
	times := []time.Time{{}, time.Unix(0, 0), time.Unix(0, 999), time.Unix(-1, 500), time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Now(), time.Now().In(time.FixedZone("X", 3600)), time.Date(2400, 1, 1, 0, 0, 0, 1, time.UTC)}
	for range 1000 {
		times = append(times, time.Unix(r.Int64N(1<<34)-1<<33, r.Int64N(1e9)))
	}
	for _, tm := range times {
		if got, want := asStored(tm), fromMicros(micros(tm)); !got.Equal(want) || got.Location() != want.Location() || got.IsZero() != want.IsZero() {
			t.Fatalf("asStored(%v) = %v, want %v", tm, got, want)
		}
	}
}
