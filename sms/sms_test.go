package sms

import (
	"bytes"
	"context"
	"testing"

	"github.com/verigate/verigate/verify"
)

func TestConsolePrintsOneMaskedLine(t *testing.T) {
	var out bytes.Buffer
	c := NewConsole(&out)
	ref, err := c.Send(context.Background(), verify.Message{To: "+4915123456789", Body: "Your Verigate verification code is 123456.\nextra"})
	if err != nil || ref == "" {
		t.Fatalf("send: ref %q, %v", ref, err)
	}
	want := "sms to=+49151*****789 body=Your Verigate verification code is 123456. extra\n"
	if out.String() != want {
		t.Fatalf("printed %q, want %q", out.String(), want)
	}
}

func TestTemplate(t *testing.T) {
	tests := []struct {
		app, want string
	}{
		{"", "Your Verigate verification code is 123456."},
		{"Contoso", "Your Contoso verification code is 123456."},
	}
	for _, tt := range tests {
		if got := (Template{AppName: tt.app}).SMSBody("en", "123456"); got != tt.want {
			t.Errorf("app %q: %q, want %q", tt.app, got, tt.want)
		}
	}
}
