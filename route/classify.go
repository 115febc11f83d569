package route

import (
	"errors"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/verigate/verigate/verify"
)

// Line types, as verify.Number.LineType names them: one per phonenumbers
// type. LineFixedOrMobile is what the library says for the NANP (US, CA and
// the other +1 countries) and a few others, where the digits do not tell a
// landline from a mobile: routing treats it as "may be a mobile", never as
// a mobile, and a number lookup (HLR, Twilio Lookup) can settle it.
const (
	LineMobile        = "mobile"
	LineFixed         = "fixed_line"
	LineFixedOrMobile = "fixed_line_or_mobile"
	LineTollFree      = "toll_free"
	LinePremiumRate   = "premium_rate"
	LineSharedCost    = "shared_cost"
	LineVoIP          = "voip"
	LinePersonal      = "personal_number"
	LinePager         = "pager"
	LineUAN           = "uan"
	LineVoicemail     = "voicemail"
	LineUnknown       = "unknown"
)

const (
	maxRawNumberLength = 64
	// DefaultCacheSize is how many classified numbers a Classifier keeps.
	DefaultCacheSize = 10000
	carrierLanguage  = "en"
)

var lineTypes = map[phonenumbers.PhoneNumberType]string{
	phonenumbers.FIXED_LINE:           LineFixed,
	phonenumbers.MOBILE:               LineMobile,
	phonenumbers.FIXED_LINE_OR_MOBILE: LineFixedOrMobile,
	phonenumbers.TOLL_FREE:            LineTollFree,
	phonenumbers.PREMIUM_RATE:         LinePremiumRate,
	phonenumbers.SHARED_COST:          LineSharedCost,
	phonenumbers.VOIP:                 LineVoIP,
	phonenumbers.PERSONAL_NUMBER:      LinePersonal,
	phonenumbers.PAGER:                LinePager,
	phonenumbers.UAN:                  LineUAN,
	phonenumbers.VOICEMAIL:            LineVoicemail,
	phonenumbers.UNKNOWN:              LineUnknown,
}

// LineTypes lists every line type a Classifier can report, for validating
// rules.
func LineTypes() []string {
	return []string{LineMobile, LineFixed, LineFixedOrMobile, LineTollFree, LinePremiumRate,
		LineSharedCost, LineVoIP, LinePersonal, LinePager, LineUAN, LineVoicemail, LineUnknown}
}

// Classifier parses and classifies numbers. DefaultRegion (ISO 3166-1
// alpha-2, e.g. "DE") lets clients send national numbers; without it only
// international input (+49…) is accepted. The zero value works and caches
// nothing; NewClassifier adds the cache and carrier names.
type Classifier struct {
	DefaultRegion string
	// Carrier adds the name of the carrier the number's prefix was
	// allocated to (phonenumbers' carrier data, English names). The data
	// (about 1 MiB of heap) is loaded on the first number that needs it,
	// never at start. The number may since have been ported.
	Carrier bool

	cache *lru[string, classified]
}

type classified struct {
	num verify.Number
	err error
}

// ClassifierOptions configures NewClassifier.
type ClassifierOptions struct {
	DefaultRegion string
	Carrier       bool
	// CacheSize bounds the cache of classified numbers (valid or not);
	// DefaultCacheSize if 0, no cache if negative.
	CacheSize int
}

// NewClassifier returns a Classifier that remembers the last
// opts.CacheSize numbers it classified. It is safe for concurrent use.
func NewClassifier(opts ClassifierOptions) *Classifier {
	c := &Classifier{DefaultRegion: strings.ToUpper(opts.DefaultRegion), Carrier: opts.Carrier}
	switch {
	case opts.CacheSize == 0:
		c.cache = newLRU[string, classified](DefaultCacheSize)
	case opts.CacheSize > 0:
		c.cache = newLRU[string, classified](opts.CacheSize)
	}
	return c
}

var _ verify.NumberParser = Classifier{}
var _ verify.NumberParser = (*Classifier)(nil)

// ParseNumber implements verify.NumberParser: the number in E.164 with its
// region, line type and (when Carrier is set) carrier name, or an
// *verify.InputError wrapping verify.ErrInvalidNumber saying what is wrong.
func (c Classifier) ParseNumber(raw string) (verify.Number, error) {
	if c.cache == nil {
		return c.classify(raw)
	}
	if r, ok := c.cache.get(raw); ok {
		return r.num, r.err
	}
	num, err := c.classify(raw)
	if len(raw) <= maxRawNumberLength {
		c.cache.put(raw, classified{num: num, err: err})
	}
	return num, err
}

func (c Classifier) classify(raw string) (verify.Number, error) {
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
	// E.164 input, nearly all of it, skips Parse's regular expressions;
	// parseE164 gives Parse's answer or leaves the number to Parse.
	pn, ok := parseE164(raw, region)
	if !ok {
		var err error
		if pn, err = phonenumbers.Parse(raw, region); err != nil {
			return verify.Number{}, verify.Invalid(verify.ErrInvalidNumber, "%q is not a phone number: %s", raw, parseHint(err))
		}
	}
	// One GetNumberType answers both "is it valid" and "what type".
	// IsValidNumber is IsValidNumberForRegion for the region
	// GetRegionCodeForNumber derives ("001" for +800 and the other
	// non-geographic codes), which is GetNumberType != UNKNOWN: both run the
	// same type matching on that region's metadata, and the one check
	// IsValidNumberForRegion adds (the region has the number's country
	// code) holds for a region derived from that code. Calling both ran the
	// type matching twice and the region derivation (itself type matching
	// where regions share a code: +1, +7, +39, +44) three times.
	// TestClassifyMatchesBefore holds this to the old calls.
	typ := phonenumbers.GetNumberType(pn)
	if typ == phonenumbers.UNKNOWN {
		return verify.Number{}, verify.Invalid(verify.ErrInvalidNumber, "%q is not a valid phone number for %s: check the digits and the country code", raw, regionName(pn))
	}
	num := verify.Number{
		E164:     phonenumbers.Format(pn, phonenumbers.E164),
		Region:   phonenumbers.GetRegionCodeForNumber(pn),
		LineType: lineTypes[typ],
	}
	if num.LineType == "" {
		num.LineType = LineUnknown // a type added by a later phonenumbers
	}
	if c.Carrier && hasCarrier(num.LineType) {
		// An error here only means the embedded data could not be read;
		// the carrier is a detail, the number is still valid.
		num.Carrier, _ = phonenumbers.GetCarrierForNumber(pn, carrierLanguage)
	}
	return num, nil
}

// hasCarrier reports whether phonenumbers' carrier data can name a carrier
// for a number of line type t: it covers mobile ranges only.
func hasCarrier(t string) bool {
	switch t {
	case LineMobile, LineFixedOrMobile, LinePager, LineVoicemail, LineVoIP:
		return true
	}
	return false
}

func parseHint(err error) string {
	switch {
	case errors.Is(err, phonenumbers.ErrInvalidCountryCode):
		return "the country code is not valid"
	case errors.Is(err, phonenumbers.ErrTooShortNSN), errors.Is(err, phonenumbers.ErrTooShortAfterIDD):
		return "it is too short"
	case errors.Is(err, phonenumbers.ErrNumTooLong):
		return "it is too long"
	default:
		return "use digits, optionally starting with + and the country code"
	}
}

func regionName(pn *phonenumbers.PhoneNumber) string {
	if r := phonenumbers.GetRegionCodeForNumber(pn); r != "" && r != "ZZ" {
		return r
	}
	return "its country code"
}
