package directory

import (
	"strconv"

	"github.com/nyaruka/phonenumbers"

	"github.com/verigate/verigate/verify"
)

// DisplayMask shows a person's E.164 number as the sign-in front ends show
// it to them (the Entra page, RADIUS's Reply-Message): the country code,
// the first digits of the rest and the last three, "+49 151 *** 789". It
// shows no more digits than verify.MaskNumber does in logs: five after
// the +, then the last three.
func DisplayMask(e164 string) string {
	n, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return verify.MaskNumber(e164)
	}
	cc := strconv.Itoa(int(n.GetCountryCode()))
	nsn := phonenumbers.GetNationalSignificantNumber(n)
	if len(cc)+len(nsn) < 10 {
		if len(nsn) <= 3 {
			return "+" + cc + " ***"
		}
		return "+" + cc + " *** " + nsn[len(nsn)-3:]
	}
	head := 5 - len(cc)
	return "+" + cc + " " + nsn[:head] + " *** " + nsn[len(nsn)-3:]
}
