// Package sms holds the text of verification messages, the SMS providers
// that are not Twilio (the console provider for development), and the
// DeliveryWatch, a Sender wrapper that reports an SMS undelivered when no
// delivery report came in time (so the Service can fall back to a call).
package sms

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/verigate/verigate/verify"
)

// DefaultAppName names the service in messages when none is configured.
const DefaultAppName = "Verigate"

// Template is the default verify.Formatter: "Your <app> verification code
// is 123456." The prompts package supplies the localised catalogue.
type Template struct{ AppName string }

var _ verify.AppFormatter = Template{}

// SMSBody implements verify.Formatter.
func (t Template) SMSBody(_, code string) string {
	app := t.AppName
	if app == "" {
		app = DefaultAppName
	}
	return "Your " + app + " verification code is " + code + "."
}

// SMSBodyFor implements verify.AppFormatter.
func (t Template) SMSBodyFor(locale, app, code string) string {
	return Template{AppName: app}.SMSBody(locale, code)
}

// Console is a development Sender that prints each message on one line,
// `sms to=<masked number> body=<text>`, instead of sending it. The body
// carries the code: use it only where the output is yours.
type Console struct {
	// OnSend, when set (before the first Send), is handed each message
	// once it is printed: `verigate demo` shows it as the phone receives it.
	OnSend func(verify.Message)

	mu  sync.Mutex
	out io.Writer
	seq atomic.Uint64
}

var _ verify.Sender = (*Console)(nil)

// NewConsole returns a Console writing to out.
func NewConsole(out io.Writer) *Console { return &Console{out: out} }

// Send implements verify.Sender.
func (c *Console) Send(_ context.Context, m verify.Message) (string, error) {
	body := strings.ReplaceAll(m.Body, "\n", " ")
	c.mu.Lock()
	_, err := fmt.Fprintf(c.out, "sms to=%s body=%s\n", verify.MaskNumber(m.To), body)
	c.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("console sms: %w", err)
	}
	if c.OnSend != nil {
		c.OnSend(m)
	}
	return fmt.Sprintf("console-%d", c.seq.Add(1)), nil
}
