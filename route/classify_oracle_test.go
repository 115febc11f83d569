package route

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"

	"github.com/verigate/verigate/verify"
)

// classifyBefore is Classifier.classify as it was when it called
// IsValidNumber, GetRegionCodeForNumber and GetNumberType one after the
// other. It is kept, unchanged, as the reference TestClassifyMatchesBefore
// holds classify to.
func classifyBefore(c Classifier, raw string) (verify.Number, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return verify.Number{}, verify.Invalid(verify.ErrInvalidNumber, "the phone number is missing: give it in international format, e.g. +4915123456789")
	}
	if len(raw) > maxRawNumberLength {
		return verify.Number{}, verify.Invalid(verify.ErrInvalidNumber, "the phone number is too long to be a phone number")
	}
	region := strings.ToUpper(c.DefaultRegion)
	if !strings.HasPrefix(raw, "+") && !strings.HasPrefix(raw, "00") && region == "" {
		return verify.Number{}, verify.Invalid(verify.ErrInvalidNumber, "%q has no country code: give the number in international format starting with + (e.g. +4915123456789)", raw)
	}
	pn, err := phonenumbers.Parse(raw, region)
	if err != nil {
		return verify.Number{}, verify.Invalid(verify.ErrInvalidNumber, "%q is not a phone number: %s", raw, parseHint(err))
	}
	if !phonenumbers.IsValidNumber(pn) {
		return verify.Number{}, verify.Invalid(verify.ErrInvalidNumber, "%q is not a valid phone number for %s: check the digits and the country code", raw, regionName(pn))
	}
	num := verify.Number{
		E164:     phonenumbers.Format(pn, phonenumbers.E164),
		Region:   phonenumbers.GetRegionCodeForNumber(pn),
		LineType: lineTypes[phonenumbers.GetNumberType(pn)],
	}
	if num.LineType == "" {
		num.LineType = LineUnknown
	}
	if c.Carrier && hasCarrier(num.LineType) {
		num.Carrier, _ = phonenumbers.GetCarrierForNumber(pn, carrierLanguage)
	}
	return num, nil
}

// oracleTable names the cases the brief of the change asked for, with
// whether phonenumbers takes each as valid, so that the comparison below
// provably covers both sides of every group: the codes several regions
// share (+1, +44, +7, +39), the non-geographic codes ("001"), each line
// type, and numbers too short or too long.
var oracleTable = []struct {
	region, raw string
	valid       bool
}{
	// +1: US, CA and the other NANPA regions.
	{"", "+12015550123", true},  // US, fixed line or mobile
	{"", "+15062345678", true},  // CA
	{"", "+18002345678", true},  // toll free (US)
	{"", "+19002345678", true},  // premium rate (US)
	{"", "+15002345678", true},  // personal number (US)
	{"", "+12684641234", true},  // AG mobile
	{"", "+12684601234", true},  // AG fixed line
	{"", "+17872345678", true},  // PR
	{"", "+13101234", true},     // CA UAN, 7 digits
	{"", "+12005550123", false}, // no area code starts 2-0-0
	{"", "+1201555012", false},  // too short
	{"", "+120155501234", false},
	{"", "+11234567890", false},
	{"us", "(201) 555-0123", true},
	{"CA", "506 234 5678", true},
	// +44: GB, JE, GG, IM.
	{"", "+441212345678", true}, // GB fixed line
	{"", "+447400123456", true}, // GB mobile
	{"", "+448001234567", true}, // toll free
	{"", "+449012345678", true}, // premium rate
	{"", "+445612345678", true}, // VoIP
	{"", "+447640123456", true}, // pager
	{"", "+441534456789", true}, // JE fixed line
	{"", "+447797712345", true}, // JE mobile
	{"", "+441481256789", true}, // GG fixed line
	{"", "+447781123456", true}, // GG mobile
	{"", "+441624756789", true}, // IM fixed line
	{"", "+44121234567", false}, // too short
	{"", "+4412123456789", false},
	{"", "+440212345678", false},
	{"GB", "07400 123456", true},
	{"je", "01534 456789", true},
	{"GB", "0740012345", false},
	// +7: RU, KZ.
	{"", "+73011234567", true}, // RU fixed line
	{"", "+79123456789", true}, // RU mobile
	{"", "+78001234567", true}, // toll free
	{"", "+78091234567", true}, // premium rate
	{"", "+77123456789", true}, // KZ fixed line
	{"", "+77710009998", true}, // KZ mobile
	{"", "+7301123456", false},
	{"", "+791234567890", false},
	{"", "+70123456789", false},
	{"RU", "8 (912) 345-67-89", true},
	// +39: IT, VA.
	{"", "+390212345678", true},  // IT fixed line
	{"", "+393123456789", true},  // IT mobile
	{"", "+39800123456", true},   // toll free
	{"", "+39899123456", true},   // premium rate
	{"", "+39848123456", true},   // shared cost
	{"", "+3933101234501", true}, // voicemail
	{"", "+390669812345", true},  // VA fixed line
	{"", "+3902", false},
	{"", "+39021234567890123", false},
	{"IT", "02 1234 5678", true},
	{"VA", "06 6981 2345", true},
	// Non-geographic ("001").
	{"", "+80012345678", true},   // international freephone
	{"", "+80812345678", true},   // shared cost
	{"", "+870301234567", true},  // Inmarsat
	{"", "+881612345678", true},  // global mobile satellite
	{"", "+8823421234", true},    // international networks
	{"", "+883510012345", true},  // international networks
	{"", "+979123456789", true},  // international premium rate
	{"", "+8001234567", false},   // too short
	{"", "+800123456789", false}, // too long
	{"", "+80912345678", false},  // unassigned code
	{"", "+87012345", false},
	{"", "+88112345", false},
	{"", "+88212345678901234", false},
	{"", "+0012345678", false},
	// Other countries, other types.
	{"", "+4915123456789", true},
	{"", "+4930123456", true},
	{"", "+498001234567890", true},
	{"", "+499001234567", true},
	{"", "+4918012345", true},
	{"", "+49177991234567", true},
	{"", "+4915", false},
	{"", "+4990012345678901234", false},
	{"", "+33612345678", true},
	{"", "+33884012345", true},
	{"", "+3361234567", false},
	{"", "+34612345678", true},
	{"", "+819012345678", true},
	{"", "+61412345678", true},
	{"", "+611900123456", true},
	{"", "+5511961234567", true},
	{"", "+918123456789", true},
	{"", "+8613123456789", true},
	{"", "+27711234567", true},
	{"", "+254712123456", true},
	{"", "+41860123456789", true},
	{"", "+3114020", true},
	{"", "+43780123456", true},
	{"", "+6581234567", true},
	{"", "+658123456", false},
	{"DE", "030 123456", true},
	{"de", "0049 151 23456789", true},
	{"FR", "06 12 34 56 78", true},
	// Refused before phonenumbers sees them, or by its parser.
	{"", "", false},
	{"", "   ", false},
	{"", "015123456789", false},
	{"", "+" + strings.Repeat("1", 64), false},
	{"", "+49", false},
	{"", "+999123456789", false},
	{"", "hello", false},
	{"", "+", false},
	{"", "00", false},
	{"", "0049 151 23456789", false},
	{"", "+49 (0) 151-234 567 89", true},
	{"", "+1-800-FLOWERS", true}, // letters are digits on a keypad
	{"", "+49 151 23456789 ext. 12", true},
	{"DE", "1", false},
	{"", "+491", false},                   // too short
	{"", "+491234567890123456789", false}, // too long
	{"DE", "0049", false},
	{"US", "011", false},
	{"XX", "030 123456", false},
}

// oracleInputs returns every input TestClassifyMatchesBefore compares, as
// (DefaultRegion, raw) pairs: oracleTable, and for every region and
// non-geographic code phonenumbers has an example number of, each example
// in E.164 (and in national format for its region) with variants a digit
// shorter, a digit longer and with the last digit changed; then
// e164Inputs, the E.164 input parseE164 takes or leaves to Parse, with no
// default region and (every fourth, and every one after "+0", which Parse
// retries with the default region's international prefix) with one.
func oracleInputs() [][2]string {
	var in [][2]string
	for _, tc := range oracleTable {
		in = append(in, [2]string{tc.region, tc.raw})
	}
	variants := func(region, e164 string) {
		last := e164[len(e164)-1]
		in = append(in,
			[2]string{region, e164},
			[2]string{region, e164[:len(e164)-1]},
			[2]string{region, e164 + "5"},
			[2]string{region, e164[:len(e164)-1] + string('0'+(last-'0'+1)%10)},
		)
	}
	regions := make([]string, 0, len(phonenumbers.GetSupportedRegions()))
	for r := range phonenumbers.GetSupportedRegions() {
		regions = append(regions, r)
	}
	slices.Sort(regions)
	for i, r := range regions {
		for typ := phonenumbers.FIXED_LINE; typ < phonenumbers.UNKNOWN; typ++ {
			ex := phonenumbers.GetExampleNumberForType(r, typ)
			if ex == nil {
				continue
			}
			variants("", phonenumbers.Format(ex, phonenumbers.E164))
			national := phonenumbers.Format(ex, phonenumbers.NATIONAL)
			def := r
			if i%2 == 1 {
				def = strings.ToLower(r) // DefaultRegion may be given in lower case
			}
			in = append(in, [2]string{def, national}, [2]string{def, national + "1"})
		}
	}
	codes := make([]int, 0, len(phonenumbers.GetSupportedGlobalNetworkCallingCodes()))
	for cc := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		codes = append(codes, cc)
	}
	slices.Sort(codes)
	for _, cc := range codes {
		if ex := phonenumbers.GetExampleNumberForNonGeoEntity(cc); ex != nil {
			variants("", phonenumbers.Format(ex, phonenumbers.E164))
		}
	}
	defaults := []string{"DE", "it", "US", "001"}
	for i, raw := range e164Inputs() {
		in = append(in, [2]string{"", raw})
		if i%4 == 0 || strings.HasPrefix(raw, "+0") {
			in = append(in, [2]string{defaults[0], raw})
			defaults = append(defaults[1:], defaults[0])
		}
	}
	return in
}

// TestClassifyMatchesBefore holds classify, which calls GetNumberType once
// for both validity and type, to classifyBefore, which called
// IsValidNumber and GetNumberType: the same number (E.164, region, line
// type, carrier) or the same error (sentinel, API code, message) for every
// input, with and without carrier names.
func TestClassifyMatchesBefore(t *testing.T) {
	inputs := oracleInputs()
	valid, invalid := 0, 0
	regions, types, messages := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, in := range inputs {
		carriers := []bool{true}
		if i < len(oracleTable) {
			carriers = append(carriers, false) // the rest would only repeat it
		}
		for _, carrier := range carriers {
			c := Classifier{DefaultRegion: in[0], Carrier: carrier}
			got, gotErr := c.classify(in[1])
			want, wantErr := classifyBefore(c, in[1])
			if got != want {
				t.Errorf("region %q, %q, carrier %v: got %+v, before %+v", in[0], in[1], carrier, got, want)
			}
			if msg := errorDiff(gotErr, wantErr); msg != "" {
				t.Errorf("region %q, %q, carrier %v: %s", in[0], in[1], carrier, msg)
			}
			if wantErr == nil {
				valid++
				regions[want.Region], types[want.LineType] = true, true
			} else {
				invalid++
				// The message without the input: which refusal it is.
				m := wantErr.Error()
				if i := strings.LastIndexByte(m, '"'); i >= 0 {
					m = m[i+1:]
				}
				if strings.HasPrefix(m, " is not a valid phone number for ") {
					m = " is not a valid phone number for …"
				}
				messages[m] = true
			}
		}
	}
	t.Logf("%d inputs: %d valid, %d invalid classifications; %d regions, %d line types, %d refusals",
		len(inputs), valid, invalid, len(regions), len(types), len(messages))

	// The comparison is only as good as what it covers.
	for _, tc := range oracleTable {
		_, err := classifyBefore(Classifier{DefaultRegion: tc.region}, tc.raw)
		if (err == nil) != tc.valid {
			t.Errorf("oracleTable: region %q, %q: valid %v, want %v (%v)", tc.region, tc.raw, err == nil, tc.valid, err)
		}
	}
	for _, r := range []string{"US", "CA", "AG", "GB", "JE", "GG", "IM", "RU", "KZ", "IT", "VA", "001", "DE", "FR", "JP", "BR", "IN", "CN", "ZA", "AU"} {
		if !regions[r] {
			t.Errorf("no valid number of region %s compared", r)
		}
	}
	if len(regions) < 200 {
		t.Errorf("valid numbers of %d regions compared, want at least 200", len(regions))
	}
	for _, lt := range LineTypes() {
		if !types[lt] && lt != LineUnknown { // unknown: never a valid number's
			t.Errorf("no valid number of line type %s compared", lt)
		}
	}
	if len(messages) < 8 || valid < 2000 || invalid < 2000 {
		t.Errorf("compared %d valid and %d invalid classifications with %d kinds of refusal, want 2000, 2000 and 8: %v",
			valid, invalid, len(messages), messages)
	}
}

// errorDiff says how err differs from want, or "" if they are the same
// refusal.
func errorDiff(err, want error) string {
	switch {
	case err == nil && want == nil:
		return ""
	case err == nil || want == nil:
		return "error " + errString(err) + ", before " + errString(want)
	}
	var in, wantIn *verify.InputError
	if !errors.As(err, &in) || !errors.As(want, &wantIn) {
		if err.Error() != want.Error() {
			return "error " + err.Error() + ", before " + want.Error()
		}
		return ""
	}
	if in.Err != wantIn.Err || verify.ErrorCode(err) != verify.ErrorCode(want) || in.Msg != wantIn.Msg {
		return "error " + strconv.Quote(verify.ErrorCode(err)) + " " + strconv.Quote(in.Msg) +
			", before " + strconv.Quote(verify.ErrorCode(want)) + " " + strconv.Quote(wantIn.Msg)
	}
	return ""
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return strconv.Quote(err.Error())
}

// TestSharedCodeRegionsMatch checks the premise that lets classify drop
// IsValidNumber: IsValidNumberForRegion (which IsValidNumber calls with
// GetRegionCodeForNumber's answer) refuses a number whose country code is
// not its region's, a check GetNumberType does not make. For the region
// GetRegionCodeForNumber derives, which is one of those phonenumbers lists
// for the number's country code, the check always passes: each listed
// region has that country code ("001", the non-geographic entity, is
// exempt from the check).
func TestSharedCodeRegionsMatch(t *testing.T) {
	n := 0
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		for _, r := range phonenumbers.GetRegionCodesForCountryCode(cc) {
			n++
			if r != "001" && phonenumbers.GetCountryCodeForRegion(r) != cc {
				t.Errorf("region %s is listed for +%d but has country code +%d", r, cc, phonenumbers.GetCountryCodeForRegion(r))
			}
		}
	}
	if n < 240 {
		t.Errorf("checked %d regions, want all (at least 240)", n)
	}
}
