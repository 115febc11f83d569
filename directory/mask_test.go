package directory

import "testing"

func TestDisplayMask(t *testing.T) {
	for in, want := range map[string]string{
		"+4915123456789": "+49 151 *** 789",
		"+14155550123":   "+1 4155 *** 123",
		"+49301234567":   "+49 301 *** 567",
		"+3531234567":    "+353 12 *** 567",
		"+4930123":       "+49 *** 123", // too short to show more
	} {
		if got := DisplayMask(in); got != want {
			t.Errorf("DisplayMask(%s) = %q, want %q", in, got, want)
		}
	}
}
