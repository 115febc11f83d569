package route

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// e164Inputs returns input in E.164 form, "+" and digits only, for every
// country calling code phonenumbers knows: the example numbers of every
// region, line type and non-geographic code with variants (a digit or two
// shorter or longer, the last digit changed); for each code, numbers of
// every length from no national number to 18 digits in all, with one to
// three leading zeros (+39 06…, +225 07…, +242 06…), all zeros, and with
// the national prefix of each of its regions in front; and the edges:
// "+" alone, a digit or two, country codes that do not exist or start
// with 0, an IDD after the "+".
func e164Inputs() []string {
	seen := map[string]bool{}
	var in []string
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			in = append(in, s)
		}
	}
	for _, s := range []string{
		"+", "+0", "+00", "+000", "+1", "+3", "+12", "+39", "+123", "+390", "+3900", "+39000", "+3906",
		"+999", "+999123456789", "+99912345678901234", "+0123456789", "+0012015550123",
		"+004915123456789", "+01115062345678", "+8001234", "+80012345678901234",
		"+54111512345678", "+5491115123456", "+54015112345678", "+5401112345678", // Argentina's prefixes
		"+12345678901234567", "+123456789012345678", "+1234567890123456789012",
	} {
		add(s)
	}
	variants := func(e164 string) {
		last := e164[len(e164)-1]
		add(e164)
		add(e164[:len(e164)-1])
		add(e164[:len(e164)-2])
		add(e164 + "5")
		add(e164 + "55")
		add(e164[:len(e164)-1] + string('0'+(last-'0'+1)%10))
	}
	// An example national number per calling code, the first found.
	nsnFor := map[int]string{}
	example := func(ex *phonenumbers.PhoneNumber) {
		variants(phonenumbers.Format(ex, phonenumbers.E164))
		if _, ok := nsnFor[int(ex.GetCountryCode())]; !ok {
			nsnFor[int(ex.GetCountryCode())] = phonenumbers.GetNationalSignificantNumber(ex)
		}
	}
	regions := make([]string, 0, len(phonenumbers.GetSupportedRegions()))
	for r := range phonenumbers.GetSupportedRegions() {
		regions = append(regions, r)
	}
	slices.Sort(regions)
	for _, r := range regions {
		for typ := phonenumbers.FIXED_LINE; typ < phonenumbers.UNKNOWN; typ++ {
			if ex := phonenumbers.GetExampleNumberForType(r, typ); ex != nil {
				example(ex)
			}
		}
	}
	codes := make([]int, 0, len(phonenumbers.GetSupportedCallingCodes()))
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		codes = append(codes, cc)
	}
	slices.Sort(codes)
	for _, cc := range codes {
		if ex := phonenumbers.GetExampleNumberForNonGeoEntity(cc); ex != nil {
			example(ex)
		}
	}
	for _, cc := range codes {
		code := "+" + strconv.Itoa(cc)
		nsn := nsnFor[cc]
		if nsn == "" {
			nsn = "123456789"
		}
		long := strings.Repeat(nsn, 18)
		for n := 0; len(code)-1+n <= 18; n++ {
			add(code + long[:n])
		}
		for _, zeros := range []string{"0", "00", "000"} {
			add(code + zeros + nsn)
			add(code + zeros + nsn[len(zeros):])
			add(code + zeros)
			add(code + zeros + "0")
		}
		for _, r := range phonenumbers.GetRegionCodesForCountryCode(cc) {
			if p := phonenumbers.GetNddPrefixForRegion(r, true); p != "" {
				add(code + p + nsn)
			}
		}
	}
	return in
}

// TestParseE164MatchesParse holds parseE164 to phonenumbers.Parse over
// e164Inputs, with no default region and with others: where parseE164
// answers, Parse must accept the number and give the same PhoneNumber,
// field by field. It also checks parseE164 takes the E.164 numbers it is
// for, the national prefix and leading zero cases included.
func TestParseE164MatchesParse(t *testing.T) {
	inputs := e164Inputs()
	nonGeo := phonenumbers.GetSupportedGlobalNetworkCallingCodes()
	var fast, parsed, refused, zeros, manyZeros, prefixed int
	fastCodes := map[int32]bool{}
	for i, raw := range inputs {
		regions := []string{""}
		if i%4 == 0 {
			regions = append(regions, "DE", "IT", "US", "AR", "ZZ")
		}
		if cc, err := strconv.Atoi(raw[1:min(4, len(raw))]); err == nil && (nonGeo[cc] || nonGeo[cc/10] || nonGeo[cc/100]) {
			regions = append(regions, "001")
		}
		for _, region := range regions {
			got, ok := parseE164(raw, region)
			want, err := phonenumbers.Parse(raw, region)
			if !ok {
				if got != nil {
					t.Errorf("%q, region %q: not taken, but returned %v", raw, region, got)
				}
				if err == nil {
					parsed++
				} else {
					refused++
				}
				continue
			}
			fast++
			if err != nil {
				t.Errorf("%q, region %q: parseE164 took what Parse refuses (%v): %v", raw, region, err, got)
				continue
			}
			if d := phoneNumberDiff(got, want); d != "" {
				t.Errorf("%q, region %q: %s", raw, region, d)
			}
			fastCodes[got.GetCountryCode()] = true
			if got.GetItalianLeadingZero() {
				zeros++
			}
			if got.NumberOfLeadingZeros != nil {
				manyZeros++
			}
			if len(raw) > 4 && strings.HasPrefix(raw, "+54") {
				prefixed++ // Argentina's national prefix matches the empty string
			}
		}
	}
	t.Logf("%d inputs: %d taken by parseE164, %d left to Parse that it parses, %d that it refuses; %d calling codes taken, %d with a leading zero, %d with more than one",
		len(inputs), fast, parsed, refused, len(fastCodes), zeros, manyZeros)

	// The comparison is only as good as what it covers.
	if len(fastCodes) != len(phonenumbers.GetSupportedCallingCodes()) {
		t.Errorf("parseE164 took numbers of %d calling codes, want all %d", len(fastCodes), len(phonenumbers.GetSupportedCallingCodes()))
	}
	if fast < 10000 || parsed < 500 || refused < 1000 || zeros < 500 || manyZeros < 300 || prefixed < 20 {
		t.Errorf("compared %d numbers parseE164 took (%d with a leading zero, %d with more, %d of Argentina), and left %d to Parse that it parses and %d that it refuses: too few",
			fast, zeros, manyZeros, prefixed, parsed, refused)
	}
	// Every example number in E.164 that Parse takes as it is (with no
	// national prefix stripped) is taken by the fast path: what clients
	// send does not fall back.
	for _, raw := range inputs {
		want, err := phonenumbers.Parse(raw, "")
		if err != nil || !phonenumbers.IsValidNumber(want) || phonenumbers.Format(want, phonenumbers.E164) != raw {
			continue
		}
		if _, ok := parseE164(raw, ""); !ok && !stripsNationalPrefix(raw) {
			t.Errorf("%q is a valid E.164 number, but parseE164 left it to Parse", raw)
		}
	}
}

// stripsNationalPrefix reports whether the national prefix pattern of the
// calling code of raw, a number parseE164 takes apart, matches its national
// number in a way that may change it: the one reason left for parseE164 to
// leave a valid E.164 number to Parse.
func stripsNationalPrefix(raw string) bool {
	codes := e164Codes()
	for n := 1; n <= 3; n++ {
		cc, _ := strconv.Atoi(raw[1 : 1+n])
		if codes[cc].known {
			return !codes[cc].keepsNationalNumber(raw[1+n:])
		}
	}
	return false
}

// phoneNumberDiff compares every exported field of two PhoneNumbers (the
// proto fields, all pointers), so that a field Parse sets that parseE164
// does not, or one a later phonenumbers adds, shows up.
func phoneNumberDiff(got, want *phonenumbers.PhoneNumber) string {
	g, w := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	var diffs []string
	for i := range g.NumField() {
		f := g.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		gf, wf := g.Field(i), w.Field(i)
		if !reflect.DeepEqual(gf.Interface(), wf.Interface()) {
			diffs = append(diffs, fmt.Sprintf("%s %s, Parse %s", f.Name, fieldString(gf), fieldString(wf)))
		}
	}
	return strings.Join(diffs, "; ")
}

func fieldString(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "unset"
		}
		v = v.Elem()
	}
	return fmt.Sprint(v.Interface())
}
