package verify

// DefaultPrefixDigits is how many digits after the country code a
// destination prefix keeps when none is configured: the country code and
// the next three digits (+49151, +1212 555 → +1212, +26932), about where
// one operator's or one area's block of numbers starts. SMS pumping sprays
// adjacent numbers of one such block.
const DefaultPrefixDigits = 3

// NumberPrefix returns the start of the E.164 number e164 that send limits
// and the SMS-pumping watch count by: "+", the country calling code, and
// the next digits national digits (DefaultPrefixDigits if digits <= 0), or
// all of e164 when it is shorter. It returns "" for anything that does not
// start with "+" and a digit.
func NumberPrefix(e164 string, digits int) string {
	if len(e164) < 2 || e164[0] != '+' || e164[1] < '0' || e164[1] > '9' {
		return ""
	}
	if digits <= 0 {
		digits = DefaultPrefixDigits
	}
	n := 1 + CallingCodeLen(e164) + digits
	if n > len(e164) {
		return e164
	}
	return e164[:n]
}

// CallingCodeLen returns how many digits the ITU-T E.164 country calling
// code of e164 ("+" and digits) has: 1 for +1 and +7, 2 for the codes the
// ITU assigned with two digits, 3 for every other code. The codes form a
// prefix code, so the first digits decide; the route package's tests hold
// this to phonenumbers for every code it knows.
func CallingCodeLen(e164 string) int {
	if len(e164) < 2 || e164[0] != '+' {
		return 0
	}
	d1 := e164[1]
	if d1 == '1' || d1 == '7' {
		return 1
	}
	if len(e164) < 3 || e164[2] < '0' || e164[2] > '9' {
		return 1
	}
	if twoDigitCodes[int(d1-'0')*10+int(e164[2]-'0')] {
		return 2
	}
	return 3
}

// twoDigitCodes are the two-digit country calling codes (ITU-T E.164
// assigned codes): Egypt 20, South Africa 27, Europe 30-34, 36, 39, 40-41,
// 43-49, South America 51-58, South-East Asia and Oceania 60-66, East Asia
// 81, 82, 84, 86, and 90-95, 98.
var twoDigitCodes = func() (m [100]bool) {
	for _, c := range []int{20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49,
		51, 52, 53, 54, 55, 56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98} {
		m[c] = true
	}
	return m
}()
