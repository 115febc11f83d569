package sms

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/verigate/verigate/verify"
)

func TestConsolePrintsOneMaskedLine(t *testing.T) {
	var out bytes.Buffer
	var handed []verify.Message
	c := NewConsole(&out)
	c.OnSend = func(m verify.Message) { handed = append(handed, m) }
	m := verify.Message{To: "+4915123456789", Body: "Your Verigate verification code is 123456.\nextra"}
	ref, err := c.Send(context.Background(), m)
	if err != nil || ref == "" {
		t.Fatalf("send: ref %q, %v", ref, err)
	}
	want := "sms to=+49151*****789 body=Your Verigate verification code is 123456. extra\n"
	if out.String() != want {
		t.Fatalf("printed %q, want %q", out.String(), want)
	}
	if len(handed) != 1 || handed[0].To != m.To || handed[0].Body != m.Body {
		t.Fatalf("OnSend was handed %+v, want the message once", handed)
	}
}

// TestConsoleFailedPrintNotHanded: a message the console could not print
// was not sent, so OnSend does not hear of it.
func TestConsoleFailedPrintNotHanded(t *testing.T) {
	c := NewConsole(failingWriter{})
	c.OnSend = func(verify.Message) { t.Error("OnSend called for a message not printed") }
	if _, err := c.Send(context.Background(), verify.Message{To: "+4915123456789", Body: "x"}); err == nil {
		t.Fatal("send to a failing writer succeeded")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

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
