package route_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/nyaruka/phonenumbers"

	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/verify"
)

// numbers are phonenumbers' own example numbers (GetExampleNumberForType,
// v1.8.1 metadata) for each line type, from 26 countries. The expected
// types are written out; phonenumbers is the authority they come from.
var numbers = []struct {
	e164, region, lineType string
}{
	// mobile
	{"+4915123456789", "DE", route.LineMobile},
	{"+447400123456", "GB", route.LineMobile},
	{"+33612345678", "FR", route.LineMobile},
	{"+31612345678", "NL", route.LineMobile},
	{"+34612345678", "ES", route.LineMobile},
	{"+393123456789", "IT", route.LineMobile},
	{"+819012345678", "JP", route.LineMobile},
	{"+61412345678", "AU", route.LineMobile},
	{"+5511961234567", "BR", route.LineMobile},
	{"+918123456789", "IN", route.LineMobile},
	{"+27711234567", "ZA", route.LineMobile},
	{"+254712123456", "KE", route.LineMobile},
	{"+41781234567", "CH", route.LineMobile},
	{"+46701234567", "SE", route.LineMobile},
	{"+48512345678", "PL", route.LineMobile},
	{"+8613123456789", "CN", route.LineMobile},
	{"+6581234567", "SG", route.LineMobile},
	{"+2348021234567", "NG", route.LineMobile},
	{"+5491123456789", "AR", route.LineMobile},
	{"+905012345678", "TR", route.LineMobile},
	// fixed line
	{"+4930123456", "DE", route.LineFixed},
	{"+441212345678", "GB", route.LineFixed},
	{"+33123456789", "FR", route.LineFixed},
	{"+81312345678", "JP", route.LineFixed},
	{"+61212345678", "AU", route.LineFixed},
	{"+390212345678", "IT", route.LineFixed},
	{"+551123456789", "BR", route.LineFixed},
	// fixed line or mobile: the digits cannot tell
	{"+12015550123", "US", route.LineFixedOrMobile},
	{"+15062345678", "CA", route.LineFixedOrMobile},
	{"+4532123456", "DK", route.LineFixedOrMobile},
	{"+917410410123", "IN", route.LineFixedOrMobile},
	{"+522221234567", "MX", route.LineFixedOrMobile},
	// toll free
	{"+18002345678", "US", route.LineTollFree},
	{"+498001234567890", "DE", route.LineTollFree},
	{"+448001234567", "GB", route.LineTollFree},
	{"+33801234567", "FR", route.LineTollFree},
	// premium rate
	{"+499001234567", "DE", route.LinePremiumRate},
	{"+449012345678", "GB", route.LinePremiumRate},
	{"+19002345678", "US", route.LinePremiumRate},
	{"+611900123456", "AU", route.LinePremiumRate},
	// shared cost
	{"+4918012345", "DE", route.LineSharedCost},
	{"+33884012345", "FR", route.LineSharedCost},
	{"+3278791234", "BE", route.LineSharedCost},
	{"+34901123456", "ES", route.LineSharedCost},
	// VoIP
	{"+445612345678", "GB", route.LineVoIP},
	{"+33912345678", "FR", route.LineVoIP},
	{"+43780123456", "AT", route.LineVoIP},
	{"+815012345678", "JP", route.LineVoIP},
	// personal number
	{"+447012345678", "GB", route.LinePersonal},
	{"+15002345678", "US", route.LinePersonal},
	{"+4970012345678", "DE", route.LinePersonal},
	// pager
	{"+447640123456", "GB", route.LinePager},
	{"+41740123456", "CH", route.LinePager},
	{"+46740123456", "SE", route.LinePager},
	// UAN
	{"+445512345678", "GB", route.LineUAN},
	{"+41581234567", "CH", route.LineUAN},
	{"+3114020", "NL", route.LineUAN},
	// voicemail access
	{"+49177991234567", "DE", route.LineVoicemail},
	{"+41860123456789", "CH", route.LineVoicemail},
	{"+3933101234501", "IT", route.LineVoicemail},
}

func TestClassifyNumbers(t *testing.T) {
	c := route.NewClassifier(route.ClassifierOptions{Carrier: true})
	countries, types := map[string]bool{}, map[string]bool{}
	for _, tc := range numbers {
		t.Run(tc.e164, func(t *testing.T) {
			got, err := c.ParseNumber(tc.e164)
			if err != nil {
				t.Fatalf("ParseNumber: %v", err)
			}
			if got.E164 != tc.e164 || got.Region != tc.region || got.LineType != tc.lineType {
				t.Errorf("got %s %s %s, want %s %s %s", got.E164, got.Region, got.LineType, tc.e164, tc.region, tc.lineType)
			}
			// The carrier name is the library's: it is the authority.
			pn, _ := phonenumbers.Parse(tc.e164, "")
			want, _ := phonenumbers.GetCarrierForNumber(pn, "en")
			switch tc.lineType {
			case route.LineMobile, route.LineFixedOrMobile, route.LinePager, route.LineVoicemail, route.LineVoIP:
			default:
				want = "" // no carrier looked up for these
			}
			if got.Carrier != want {
				t.Errorf("carrier %q, want %q", got.Carrier, want)
			}
		})
		countries[tc.region], types[tc.lineType] = true, true
	}
	if len(numbers) < 40 || len(countries) < 15 {
		t.Errorf("table covers %d numbers from %d countries, want at least 40 from 15", len(numbers), len(countries))
	}
	for _, lt := range route.LineTypes() {
		if !types[lt] && lt != route.LineUnknown { // unknown: only invalid numbers, below
			t.Errorf("no number of line type %s in the table", lt)
		}
	}
}

func TestClassifyCarrierNames(t *testing.T) {
	c := route.NewClassifier(route.ClassifierOptions{Carrier: true})
	for e164, carrier := range map[string]string{
		"+4915123456789": "T-Mobile", "+447400123456": "Three", "+61412345678": "Optus", "+254712123456": "Safaricom",
	} {
		if got, err := c.ParseNumber(e164); err != nil || got.Carrier != carrier {
			t.Errorf("%s: carrier %q (err %v), want %q", e164, got.Carrier, err, carrier)
		}
	}
	plain := route.NewClassifier(route.ClassifierOptions{})
	if got, _ := plain.ParseNumber("+4915123456789"); got.Carrier != "" {
		t.Errorf("carrier %q without Carrier set", got.Carrier)
	}
}

func TestClassifyInputForms(t *testing.T) {
	de := route.NewClassifier(route.ClassifierOptions{DefaultRegion: "de"})
	for _, tc := range []struct{ raw, want string }{
		{"030 123456", "+4930123456"},
		{"0151 23456789", "+4915123456789"},
		{"+49 (151) 234-56789", "+4915123456789"},
		{"0049 151 23456789", "+4915123456789"},
		{"+1 201-555-0123", "+12015550123"},
	} {
		if got, err := de.ParseNumber(tc.raw); err != nil || got.E164 != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.raw, got.E164, err, tc.want)
		}
	}
}

func TestClassifyInvalid(t *testing.T) {
	c := route.NewClassifier(route.ClassifierOptions{})
	for _, raw := range []string{
		"", "   ", "015123456789", "+49", "+999123456789", "+4915", "+4990012345678901234", "hello",
		"+1 200 555 0123", // NANP area codes never start with 2-0-0
		fmt.Sprintf("+49%070d", 1),
	} {
		_, err := c.ParseNumber(raw)
		var in *verify.InputError
		if !errors.Is(err, verify.ErrInvalidNumber) || !errors.As(err, &in) || in.Msg == "" {
			t.Errorf("%q: err %v, want an InputError wrapping ErrInvalidNumber", raw, err)
		}
		// Cached answers are the same answers.
		if _, err2 := c.ParseNumber(raw); !errors.Is(err2, verify.ErrInvalidNumber) {
			t.Errorf("%q again: %v", raw, err2)
		}
	}
}

func TestClassifierZeroValue(t *testing.T) {
	got, err := route.Classifier{}.ParseNumber("+4930123456")
	if err != nil || got.LineType != route.LineFixed {
		t.Fatalf("zero Classifier: %+v %v", got, err)
	}
}

func TestClassifierCacheConcurrent(t *testing.T) {
	c := route.NewClassifier(route.ClassifierOptions{CacheSize: 8, Carrier: true})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				tc := numbers[(g*7+i)%len(numbers)]
				got, err := c.ParseNumber(tc.e164)
				if err != nil || got.LineType != tc.lineType {
					t.Errorf("%s: %+v %v", tc.e164, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
