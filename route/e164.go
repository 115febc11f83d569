package route

import (
	"regexp"
	"strconv"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// maxFastE164Digits bounds the digits parseE164 takes after the "+": E.164
// allows 15, phonenumbers up to 3 for the country code and 17 for the
// national significant number. Longer input goes to phonenumbers.Parse,
// which refuses it or knows what to do with it.
const maxFastE164Digits = 17

// parseE164 is phonenumbers.Parse(raw, region) for raw in E.164, "+" and
// digits only, which is what nearly every client sends: the same
// PhoneNumber, found without Parse's regular expressions (possible-number
// extraction, viability, extensions, normalization), which took more than
// half of a classification. ok is false whenever it cannot be sure its
// answer is Parse's: raw not "+" and 3 to 17 ASCII digits, a country code
// phonenumbers does not know (Parse then retries the digits with the
// default region's international prefix), a national significant number
// too short, too long, or one Parse would strip a national prefix from;
// the caller then calls Parse. TestParseE164MatchesParse holds it to Parse.
//
// What it mirrors, in phonenumbers v1.8.1's parseHelper: for "+" and digits,
// the possible-number extraction and the extension stripping leave raw as
// it is, raw is viable with 3 digits or more (Parse refuses 2), and
// normalization leaves ASCII digits as they are. maybeExtractCountryCode
// strips the "+" and takes the shortest 1-3 digit prefix phonenumbers has a
// country code for. parseHelper then applies the national prefix stripping
// of that code's main region to the rest, then checks its length and sets
// the Italian leading zero fields. Nothing else: RawInput,
// CountryCodeSource and PreferredDomesticCarrierCode are only kept by
// ParseAndKeepRawInput, and there is no extension.
func parseE164(raw, region string) (*phonenumbers.PhoneNumber, bool) {
	n := len(raw) - 1
	if n < 3 || n > maxFastE164Digits || raw[0] != '+' {
		return nil, false
	}
	for i := 1; i < len(raw); i++ {
		if raw[i] < '0' || raw[i] > '9' {
			return nil, false
		}
	}
	// extractCountryCode: the shortest prefix phonenumbers has a country
	// code for; none starts with 0.
	codes := e164Codes()
	var code *callingCode
	cc, ccLen := 0, 0
	for raw[1] != '0' && ccLen < 3 {
		cc = cc*10 + int(raw[1+ccLen]-'0')
		ccLen++
		if codes[cc].known {
			code = &codes[cc]
			break
		}
	}
	if code == nil || code.parse {
		return nil, false
	}
	nsn := raw[1+ccLen:]
	// Parse's length limits on the national significant number
	// (MIN_LENGTH_FOR_NSN, MAX_LENGTH_FOR_NSN): Parse has the error.
	if len(nsn) < 2 || len(nsn) > 17 {
		return nil, false
	}
	if code.region == region && !phonenumbers.GetSupportedRegions()[region] {
		// Parse uses the default region's metadata for a number of that
		// region, none for "001", the non-geographic entity.
		return nil, false
	}
	if !code.keepsNationalNumber(nsn) {
		return nil, false
	}
	nn, err := strconv.ParseUint(nsn, 10, 64)
	if err != nil {
		return nil, false
	}
	pn := &phonenumbers.PhoneNumber{CountryCode: new(int32(cc)), NationalNumber: new(nn)}
	// setItalianLeadingZerosForPhoneNumber: the zeros an NSN starts with
	// (+39 06…) are kept in these two fields, as the integer cannot; the
	// count only when more than one, and never the NSN's last digit, so
	// "+3900" has one.
	if nsn[0] == '0' {
		pn.ItalianLeadingZero = new(true)
		zeros := 1
		for zeros < len(nsn)-1 && nsn[zeros] == '0' {
			zeros++
		}
		if zeros != 1 {
			pn.NumberOfLeadingZeros = new(int32(zeros))
		}
	}
	return pn, true
}

// callingCode is what parseE164 needs to know of a country calling code.
type callingCode struct {
	known  bool   // phonenumbers has the code
	parse  bool   // leave its numbers to Parse: its national prefix does not compile
	region string // GetRegionCodeForCountryCode: the main region, "001" for a non-geographic code
	// nationalPrefix is the metadata's national prefix for parsing, anchored
	// as maybeStripNationalPrefixAndCarrierCode anchors it; nil if there is
	// none (or no metadata): Parse then strips nothing.
	nationalPrefix *regexp.Regexp
	// transform is the metadata's national prefix transform rule.
	transform string
}

// keepsNationalNumber reports whether Parse's national prefix stripping
// (maybeStripNationalPrefixAndCarrierCode) certainly leaves nsn as it is:
// the code has no national prefix, or nsn does not start with one, or the
// prefix matches the empty string and is not transformed (Argentina's
// "0?(?:(11|…)15)?" before a number starting with neither: the match is
// stripped, which is nothing). Anything else may change the number, and
// parseE164 leaves it to Parse.
func (c *callingCode) keepsNationalNumber(nsn string) bool {
	if c.nationalPrefix == nil || !c.nationalPrefix.MatchString(nsn) {
		return true
	}
	m := c.nationalPrefix.FindStringSubmatchIndex(nsn)
	groups := len(m)/2 - 1
	return m[1] == 0 && (c.transform == "" || m[2*groups] < 0)
}

// e164Codes indexes the country calling codes phonenumbers knows (1 to 3
// digits, so below 1000), built on first use from the library's public
// API and metadata (MetadataCollection is the collection the library
// loaded at init, the same values).
var e164Codes = sync.OnceValue(func() *[1000]callingCode {
	codes := new([1000]callingCode)
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return codes // no code known: everything goes to Parse
	}
	// As the library indexes its metadata: regions by id, the
	// non-geographic entities ("001") by country code.
	byRegion := map[string]*phonenumbers.PhoneMetadata{}
	nonGeo := map[int]*phonenumbers.PhoneMetadata{}
	for _, m := range coll.GetMetadata() {
		if m.GetId() == "001" {
			nonGeo[int(m.GetCountryCode())] = m
		} else {
			byRegion[m.GetId()] = m
		}
	}
	supported := phonenumbers.GetSupportedRegions()
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		if cc <= 0 || cc >= len(codes) {
			continue // cannot be a 1-3 digit prefix
		}
		c := callingCode{known: true, region: phonenumbers.GetRegionCodeForCountryCode(cc)}
		// getMetadataForRegionOrCallingCode, as parseHelper calls it.
		var m *phonenumbers.PhoneMetadata
		if c.region == "001" {
			m = nonGeo[cc]
		} else if supported[c.region] {
			m = byRegion[c.region]
		}
		if p := m.GetNationalPrefixForParsing(); p != "" {
			// The pattern Parse compiles (with regexp.MustCompile).
			c.nationalPrefix, err = regexp.Compile("^(?:" + p + ")")
			c.parse = err != nil
			c.transform = m.GetNationalPrefixTransformRule()
		}
		codes[cc] = c
	}
	return codes
})
