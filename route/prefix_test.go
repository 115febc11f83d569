package route

import (
	"strconv"
	"testing"

	"github.com/nyaruka/phonenumbers"

	"github.com/verigate/verigate/verify"
)

// TestCallingCodeLenMatchesPhonenumbers holds verify.CallingCodeLen, a
// table of the ITU's two-digit codes, to phonenumbers for every calling
// code it knows, geographic and global (+800, +870, +881, +882, +883...).
func TestCallingCodeLenMatchesPhonenumbers(t *testing.T) {
	codes := phonenumbers.GetSupportedCallingCodes()
	for c := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		codes[c] = true
	}
	if len(codes) < 200 {
		t.Fatalf("phonenumbers knows %d calling codes, want the world's", len(codes))
	}
	for c := range codes {
		cc := strconv.Itoa(c)
		e164 := "+" + cc + "123456789"
		if got := verify.CallingCodeLen(e164); got != len(cc) {
			t.Errorf("CallingCodeLen(%s) = %d, want %d (+%s)", e164, got, len(cc), cc)
		}
		if got, want := verify.NumberPrefix(e164, 3), "+"+cc+"123"; got != want {
			t.Errorf("NumberPrefix(%s, 3) = %s, want %s", e164, got, want)
		}
	}
}
