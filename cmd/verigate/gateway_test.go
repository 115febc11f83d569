package main

import (
	"strings"
	"testing"
)

func TestChooseProviders(t *testing.T) {
	tests := []struct {
		name        string
		sms         string
		twilio      bool
		trunks      int
		dev         bool
		want        providerChoice
		errContains string
	}{
		{name: "twilio alone carries both", twilio: true, want: providerChoice{sms: "twilio", call: "twilio"}},
		{name: "trunks win calls over twilio", twilio: true, trunks: 1, want: providerChoice{sms: "twilio", call: "sip"}},
		{name: "sms.provider wins over twilio", sms: "console", twilio: true, want: providerChoice{sms: "console", call: "twilio"}},
		{name: "console and trunks", sms: "console", trunks: 2, want: providerChoice{sms: "console", call: "sip"}},
		{name: "console without calls", sms: "console", want: providerChoice{sms: "console"}},
		{name: "dev without trunks calls the loopback phone", sms: "console", dev: true,
			want: providerChoice{sms: "console", call: "sip", loopback: true}},
		{name: "dev with trunks calls them", sms: "console", dev: true, trunks: 1, want: providerChoice{sms: "console", call: "sip"}},
		{name: "twilio wins over the loopback phone", dev: true, twilio: true, want: providerChoice{sms: "twilio", call: "twilio"}},
		{name: "no sms provider", trunks: 1, errContains: "no SMS provider configured"},
		{name: "twilio sms without twilio", sms: "twilio", errContains: "Twilio is not configured"},
		{name: "none with trunks only calls", sms: "none", trunks: 1, want: providerChoice{call: "sip"}},
		{name: "none with twilio calls through twilio", sms: "none", twilio: true, want: providerChoice{call: "twilio"}},
		{name: "none in dev calls the loopback phone", sms: "none", dev: true, want: providerChoice{call: "sip", loopback: true}},
		{name: "none without a call provider", sms: "none", errContains: "no call provider"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chooseProviders(tt.sms, tt.twilio, tt.trunks, tt.dev)
			if tt.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errContains) {
					t.Fatalf("err %v, want one saying %q", err, tt.errContains)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
