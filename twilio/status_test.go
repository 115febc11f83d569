package twilio

import "testing"

// TestSIPFailure: a call status callback's SipResponseCode becomes the
// event's error code only when it says why the call failed.
func TestSIPFailure(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"180", ""},
		{"200", ""},
		{"302", "302"},
		{"486", "486"},
		{"487", "487"},
		{"603", "603"},
		{"abc", ""},
	} {
		if got := sipFailure(tt.in); got != tt.want {
			t.Errorf("sipFailure(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
