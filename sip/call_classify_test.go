package sip_test

import (
	"testing"

	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

func TestClassifyResponse(t *testing.T) {
	tests := []struct {
		code int
		want verify.EventType
	}{
		{486, verify.EventBusy},
		{600, verify.EventBusy},
		{480, verify.EventNoAnswer},
		{408, verify.EventNoAnswer},
		{487, verify.EventNoAnswer},
		{404, verify.EventInvalidNumber},
		{484, verify.EventInvalidNumber},
		{403, verify.EventRejected},
		{603, verify.EventRejected},
		{400, verify.EventFailed},
		{401, verify.EventFailed},
		{407, verify.EventFailed},
		{488, verify.EventFailed},
		{500, verify.EventFailed},
		{503, verify.EventFailed},
		{604, verify.EventFailed},
		{606, verify.EventFailed},
	}
	for _, tt := range tests {
		if got := sip.ClassifyResponse(tt.code); got != tt.want {
			t.Errorf("ClassifyResponse(%d) = %s, want %s", tt.code, got, tt.want)
		}
	}
}
