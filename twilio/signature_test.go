package twilio

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/twilio/twilio-go/client"

	"github.com/verigate/verigate/internal/twiliotest"
)

const testToken = "0123456789abcdef0123456789abcdef"

// randomWebhook returns a URL and parameters like those Twilio signs:
// http or https, with or without a port, a query, and parameter values
// holding whatever a caller's name or a message body can.
func randomWebhook(r *rand.Rand) (string, url.Values) {
	const alphabet = "abcXYZ019 +&=%?#/:;.,_-~éü中\t"
	word := func(n int) string {
		var b strings.Builder
		rs := []rune(alphabet)
		for range r.IntN(n) + 1 {
			b.WriteRune(rs[r.IntN(len(rs))])
		}
		return b.String()
	}
	scheme := []string{"http", "https"}[r.IntN(2)]
	host := []string{"verify.example.test", "gw.example.org", "198.51.100.7"}[r.IntN(3)]
	switch r.IntN(4) {
	case 0:
		host += ":443"
	case 1:
		host += ":80"
	case 2:
		host += ":8443"
	}
	u := scheme + "://" + host + "/gw/twilio/voice/gather?" + url.Values{"v": {word(12)}, "s": {word(8)}}.Encode()
	params := url.Values{}
	for range r.IntN(30) {
		params.Set([]string{"CallSid", "Digits", "From", "To", "CallerName", "Body", "X"}[r.IntN(7)]+word(3), word(40))
	}
	return u, params
}

// firstValues is the map twilio-go's validator takes.
func firstValues(v url.Values) map[string]string {
	m := make(map[string]string, len(v))
	for k, vs := range v {
		m[k] = vs[0]
	}
	return m
}

// togglePort signs the other form of the URL Twilio may have used.
func togglePort(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	if p.Port() != "" {
		p.Host = p.Hostname()
		return p.String()
	}
	if p.Scheme == "https" {
		p.Host += ":443"
	} else {
		p.Host += ":80"
	}
	return p.String()
}

// TestSignerAgreesWithTwilioGo holds the linear check to twilio-go's
// RequestValidator: the same verdict on valid signatures (for the URL as
// requested and with the port toggled), signatures over other parameters,
// other tokens and garbage.
func TestSignerAgreesWithTwilioGo(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ours := signer{key: []byte(testToken)}
	theirs := client.NewRequestValidator(testToken)
	accepted := 0
	for i := range 3000 {
		u, params := randomWebhook(r)
		tampered := url.Values{}
		for k, v := range params {
			tampered[k] = v
		}
		tampered.Set("Digits", "#")
		sigs := []string{
			twiliotest.Signature(testToken, u, params),
			twiliotest.Signature(testToken, togglePort(u), params),
			twiliotest.Signature(testToken, u, tampered),
			twiliotest.Signature("another token", u, params),
			"bm90IGEgc2lnbmF0dXJlIGF0IGFsbA==",
			"",
		}
		for j, sig := range sigs {
			want := theirs.Validate(u, firstValues(params), sig)
			if got := ours.valid(u, params, sig); got != want {
				t.Fatalf("case %d.%d: %s %v sig %q: ours %v, twilio-go %v", i, j, u, params, sig, got, want)
			}
			if want {
				accepted++
			}
		}
	}
	if accepted < 3000 {
		t.Fatalf("only %d valid signatures accepted: the comparison did not exercise the valid path", accepted)
	}
}

// FuzzSigner feeds arbitrary URLs and form bodies to both validators; they
// must agree on the correct signature and on a forged one.
func FuzzSigner(f *testing.F) {
	f.Add("https://verify.example.test/gw/twilio/status/sms?v=VE1", "MessageSid=SM1&MessageStatus=delivered", "Zm9yZ2Vk")
	f.Add("http://h:80/p?a=%zz", "a=1&a=2&b=%41", "")
	f.Add("https://[::1]:443/x", "k=v;x", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	f.Fuzz(func(t *testing.T, u, body, forged string) {
		params, err := url.ParseQuery(body)
		if err != nil || strings.Contains(u, "[") {
			// twilio-go splits hosts at the first ':' and so mangles IPv6
			// literals, which Twilio never signs; parse errors are refused
			// before signing.
			return
		}
		ours := signer{key: []byte(testToken)}
		theirs := client.NewRequestValidator(testToken)
		for _, sig := range []string{twiliotest.Signature(testToken, u, url.Values(firstValuesAsValues(params))), forged} {
			want := theirs.Validate(u, firstValues(params), sig)
			if got := ours.valid(u, params, sig); got != want {
				t.Fatalf("%q %q sig %q: ours %v, twilio-go %v", u, body, sig, got, want)
			}
		}
	})
}

func firstValuesAsValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = vs[:1]
	}
	return out
}

// FuzzReadForm: any body and query either is refused or parses as
// url.ParseQuery would, within the bounds.
func FuzzReadForm(f *testing.F) {
	f.Add("CallSid=CA1&Digits=%23", "v=VE1&s=ask.1.", "application/x-www-form-urlencoded")
	f.Add(strings.Repeat("a=1&", 200), "", "application/x-www-form-urlencoded; charset=utf-8")
	f.Add("a=%zz", "a;b", "text/plain")
	f.Fuzz(func(t *testing.T, body, query, contentType string) {
		r := httptest.NewRequest(http.MethodPost, "/twilio/status/sms", strings.NewReader(body))
		r.URL.RawQuery = query
		r.Header.Set("Content-Type", contentType)
		form, err := readForm(httptest.NewRecorder(), r)
		if err != nil {
			return
		}
		if len(body) > MaxWebhookBody || countParams([]byte(body)) > MaxWebhookParams {
			t.Fatalf("accepted %d bytes, %d parameters", len(body), countParams([]byte(body)))
		}
		want, werr := url.ParseQuery(body)
		if werr != nil || !reflect.DeepEqual(form, want) {
			t.Fatalf("readForm %v, ParseQuery %v, %v", form, want, werr)
		}
	})
}
