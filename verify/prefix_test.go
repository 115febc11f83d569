package verify

import "testing"

func TestNumberPrefix(t *testing.T) {
	tests := []struct {
		e164   string
		digits int
		want   string
	}{
		{"+4915123456789", 0, "+49151"},
		{"+4915123456789", 3, "+49151"},
		{"+4915123456789", 5, "+4915123"},
		{"+12125550123", 3, "+1212"},
		{"+79161234567", 3, "+7916"},
		{"+2693212345", 3, "+269321"},
		{"+88216123456", 2, "+88216"},
		{"+4930", 3, "+4930"}, // shorter than the prefix: all of it
		{"", 3, ""},
		{"4915123456789", 3, ""},
		{"+", 3, ""},
		{"+x49", 3, ""},
	}
	for _, tc := range tests {
		if got := NumberPrefix(tc.e164, tc.digits); got != tc.want {
			t.Errorf("NumberPrefix(%q, %d) = %q, want %q", tc.e164, tc.digits, got, tc.want)
		}
	}
}
