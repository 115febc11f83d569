package prompts

import (
	"strings"
	"unicode/utf16"
)

// Single-segment limits of an SMS (3GPP TS 23.038, 23.040): 140 octets
// carry 160 GSM-7 septets or 70 UCS-2 characters.
const (
	MaxGSM7Septets = 160
	MaxUCS2Units   = 70
)

// gsm7Basic is the GSM 03.38 default alphabet; gsm7Ext the characters of
// its extension table, which cost two septets (escape and character).
const (
	gsm7Basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsm7Ext = "\f^{}\\[~]|€"
)

// Encoding names how an SMS body travels.
type Encoding string

// The two encodings every handset reads.
const (
	GSM7 Encoding = "GSM-7"
	UCS2 Encoding = "UCS-2"
)

// SMSLength reports how body would be sent: GSM-7 when every character is
// in the default alphabet or its extension table, UCS-2 otherwise, with
// its length in septets or UTF-16 units, and whether it fits one segment.
func SMSLength(body string) (enc Encoding, units int, oneSegment bool) {
	septets := 0
	for _, r := range body {
		switch {
		case strings.ContainsRune(gsm7Basic, r):
			septets++
		case strings.ContainsRune(gsm7Ext, r):
			septets += 2
		default:
			n := len(utf16.Encode([]rune(body)))
			return UCS2, n, n <= MaxUCS2Units
		}
	}
	return GSM7, septets, septets <= MaxGSM7Septets
}

// gsm7Fold spells letters outside GSM-7 with the nearest ones inside it,
// as SMS providers' "smart encoding" does. It is used only when the
// correctly spelt body would not fit one UCS-2 segment.
var gsm7Fold = strings.NewReplacer(
	"á", "a", "â", "a", "ã", "a", "ą", "a", "ă", "a", "Á", "A", "Â", "A", "Ã", "A", "Ą", "A", "À", "A",
	"ç", "c", "ć", "c", "č", "c", "Ć", "C", "Č", "C",
	"ê", "e", "ë", "e", "ę", "e", "ě", "e", "È", "E", "Ê", "E", "Ę", "E",
	"í", "i", "î", "i", "ï", "i", "ı", "i", "Í", "I", "Î", "I", "İ", "I", "Ì", "I",
	"ł", "l", "Ł", "L", "ń", "n", "ň", "n", "Ń", "N",
	"ó", "o", "ô", "o", "õ", "o", "ő", "o", "Ó", "O", "Ô", "O", "Õ", "O", "Ò", "O",
	"ś", "s", "ş", "s", "š", "s", "ș", "s", "Ś", "S", "Ş", "S", "Š", "S",
	"ú", "u", "û", "u", "ű", "u", "ů", "u", "Ú", "U", "Û", "U", "Ù", "U",
	"ź", "z", "ż", "z", "ž", "z", "Ź", "Z", "Ż", "Z", "Ž", "Z",
	"ğ", "g", "Ğ", "G", "ř", "r", "ț", "t", "ý", "y", "ÿ", "y",
	"’", "'", "‘", "'", "“", "\"", "”", "\"", "«", "\"", "»", "\"", "–", "-", "—", "-", "\u00a0", " ", "\u202f", " ",
)
