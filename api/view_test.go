package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/verigate/verigate/verify"
)

func sampleVerification(s string) *verify.Verification {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890123000, time.FixedZone("X", 3600))
	return &verify.Verification{
		ID: "VE" + s, Tenant: "acme", To: "+4915123456789", Channel: verify.ChannelCall, CallMode: verify.CallModeApprove,
		Locale: s, Status: verify.StatusFailed, Reason: s, Attempts: 2, MaxAttempts: 5, Sends: 3,
		CodeHashes: []string{"secret-hash"},
		Route:      verify.Route{Channel: verify.ChannelCall, Provider: s, Trunk: s, SenderID: "x", Reasons: []string{s, "roaming"}},
		CreatedAt:  at, UpdatedAt: at.Add(time.Second), ExpiresAt: at.Add(10 * time.Minute).UTC(),
		Events: []verify.Event{
			{Type: verify.EventCreated, At: at, Channel: verify.ChannelSMS},
			{Type: verify.EventFailed, At: at, Provider: s, ErrorCode: "486", Detail: s, ProviderRef: "hidden", Key: "k", Attempt: 2},
		},
	}
}

// TestViewMatchesEncodingJSON holds the hand-written encoder to the
// encoding/json encoding of the view structs, for awkward strings too.
func TestViewMatchesEncodingJSON(t *testing.T) {
	strs := []string{"", "plain", `quo"te\back`, "tab\tnl\ncr\r\x00\x1f\x7f", "<script>&amp;</script>",
		"ünïcödé 日本", "\u2028\u2029", "bad \xff\xfe utf8", "\xed\xa0\x80 surrogate"}
	for _, s := range strs {
		assertView(t, sampleVerification(s))
	}
	sms := sampleVerification("x")
	sms.Channel, sms.Events, sms.Route.Reasons, sms.Reason = verify.ChannelSMS, nil, nil, ""
	assertView(t, sms)
}

func assertView(t *testing.T, v *verify.Verification) {
	t.Helper()
	want, _ := json.Marshal(viewOf(v))
	if got := appendView(nil, v); string(got) != string(want) {
		t.Errorf("appendView =\n%s\nencoding/json =\n%s", got, want)
	}
	want, _ = json.Marshal(checkView{ID: v.ID, Status: v.Status, AttemptsLeft: v.AttemptsLeft()})
	if got := appendCheck(nil, v); string(got) != string(want) {
		t.Errorf("appendCheck = %s, encoding/json = %s", got, want)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "<&>", "\xff", "\u2028", "日本\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q) = %s, encoding/json = %s", s, got, want)
		}
	})
}
