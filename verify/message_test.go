package verify_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/verify"
)

func TestMessageCode(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"Use this code to authenticate in authentik: 123456", "123456"},
		{"123456", "123456"},
		{"Your code: 0042", "0042"},
		{"Code 123 then 98765", "98765"},             // 3 digits are too few
		{"Call +4915123456789 or use 4711", "4711"},  // 13 digits are a number, not a code
		{"12345678901 and 1234567890", "1234567890"}, // 11 too many, 10 is the most
		{"no digits here", ""},
		{"١٢٣٤٥٦ Arabic-Indic digits are not read", ""},
		{"", ""},
	} {
		if got := verify.MessageCode(tc.body); got != tc.want {
			t.Errorf("MessageCode(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// TestRelaySMS: the body goes out as written, marked relayed, and the
// message is stored of its own: a pending verification of the number is
// neither resent nor disturbed, and the message has no code to check.
func TestRelaySMS(t *testing.T) {
	svc := verifytest.NewService(t)
	ctx := context.Background()
	const to = "+4915123456789"
	ver, err := svc.Start(ctx, verify.StartRequest{Tenant: "acme", To: to})
	if err != nil {
		t.Fatal(err)
	}
	const body = "Use this code to authenticate in authentik: 482913"
	m, err := svc.Relay(ctx, verify.MessageRequest{Tenant: "acme", To: "+49 151 23456789", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != verify.KindMessage || m.ID == ver.ID || m.Status != verify.StatusPending || m.Channel != verify.ChannelSMS || m.To != to {
		t.Fatalf("Relay = %+v: want a pending SMS message of its own to %s", m, to)
	}
	msgs := svc.Sender.Messages()
	last := msgs[len(msgs)-1]
	if last.Body != body || !last.Relayed || last.VerificationID != m.ID {
		t.Errorf("sent %+v: want the body as written, relayed, for %s", last, m.ID)
	}
	if _, err := svc.Check(ctx, "acme", m.ID, "482913"); !errors.Is(err, verify.ErrNotFound) {
		t.Errorf("Check(message) err = %v, want ErrNotFound", err)
	}
	code := verifytest.CodeOf(t, msgs[0].Body)
	if v, err := svc.CheckByNumber(ctx, "acme", to, code); err != nil || v.ID != ver.ID || v.Status != verify.StatusApproved {
		t.Errorf("the verification after a relay: %v, %v; want it approved by its own code", v, err)
	}
}

func TestRelayRefuses(t *testing.T) {
	svc := verifytest.NewService(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  verify.MessageRequest
		want error
	}{
		{"empty body", verify.MessageRequest{To: "+4915123456789"}, verify.ErrInvalidRequest},
		{"long body", verify.MessageRequest{To: "+4915123456789", Body: strings.Repeat("x", verify.MaxMessageBody+1)}, verify.ErrInvalidRequest},
		{"not UTF-8", verify.MessageRequest{To: "+4915123456789", Body: "code \xff 123456"}, verify.ErrInvalidRequest},
		{"call without a code", verify.MessageRequest{To: "+4915123456789", Body: "Hello", Channel: verify.ChannelCall}, verify.ErrInvalidRequest},
		{"bad channel", verify.MessageRequest{To: "+4915123456789", Body: "1234", Channel: "fax"}, verify.ErrInvalidRequest},
		{"bad number", verify.MessageRequest{To: "12", Body: "1234"}, verify.ErrInvalidNumber},
	} {
		tc.req.Tenant = "acme"
		if _, err := svc.Relay(ctx, tc.req); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if n := len(svc.Sender.Messages()) + len(svc.Caller.Calls()); n != 0 {
		t.Errorf("%d sends for refused relays", n)
	}
	// A body at the bound, in any script, is taken.
	if _, err := svc.Relay(ctx, verify.MessageRequest{Tenant: "acme", To: "+4915123456789", Body: strings.Repeat("я", verify.MaxMessageBody)}); err != nil {
		t.Errorf("a body of %d characters: %v", verify.MaxMessageBody, err)
	}
}

// TestRelayCall: a call reads the body's code in code mode, in the locale
// asked for; auto calls a landline; auto without a code texts.
func TestRelayCall(t *testing.T) {
	svc := verifytest.NewService(t)
	ctx := context.Background()
	m, err := svc.Relay(ctx, verify.MessageRequest{Tenant: "acme", To: "+4915123456789", Body: "Ihr Code: 7305 (gültig 5 Minuten)", Channel: verify.ChannelCall, Locale: "de"})
	if err != nil {
		t.Fatal(err)
	}
	calls := svc.Caller.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1", len(calls))
	}
	if c := calls[0]; c.Mode != verify.CallModeCode || c.Code != "7305" || c.Locale != "de" || c.VerificationID != m.ID {
		t.Errorf("call = %+v: want code mode reading 7305 in de", c)
	}
	if m.Route.Fallback != "" {
		t.Errorf("a message has fallback %q: its body is not kept to send again", m.Route.Fallback)
	}

	landline, err := svc.Relay(ctx, verify.MessageRequest{Tenant: "acme", To: "+493012345678", Body: "Code 123456", Channel: verify.ChannelAuto})
	if err != nil {
		t.Fatal(err)
	}
	if landline.Channel != verify.ChannelCall {
		t.Errorf("auto to a landline went by %s, want call", landline.Channel)
	}
	plain, err := svc.Relay(ctx, verify.MessageRequest{Tenant: "acme", To: "+4915123456788", Body: "Welcome!", Channel: verify.ChannelAuto})
	if err != nil {
		t.Fatal(err)
	}
	if plain.Channel != verify.ChannelSMS {
		t.Errorf("auto without a code went by %s, want sms", plain.Channel)
	}
	_, err = svc.Relay(ctx, verify.MessageRequest{Tenant: "acme", To: "+493012345679", Body: "Welcome!", Channel: verify.ChannelAuto})
	if !errors.Is(err, verify.ErrUnsupportedNumber) || !strings.Contains(err.Error(), "no code") {
		t.Errorf("auto without a code to a landline: %v, want unsupported_number saying the body has no code", err)
	}
}

// TestRelayLimits: relays count against the send limits of the number as
// verifications do, and the limit answers as it does for them.
func TestRelayLimits(t *testing.T) {
	svc := verifytest.NewService(t)
	ctx := context.Background()
	const to = "+4915123456789"
	var err error
	for i := 0; i < 20 && err == nil; i++ {
		_, err = svc.Relay(ctx, verify.MessageRequest{Tenant: "acme", To: to, Body: "code 1234"})
	}
	var le *verify.LimitError
	if !errors.As(err, &le) || le.Channel != verify.ChannelSMS {
		t.Fatalf("after many relays err = %v, want an SMS *LimitError", err)
	}
	if _, err := svc.Start(ctx, verify.StartRequest{Tenant: "acme", To: to}); !errors.As(err, &le) {
		t.Errorf("a verification after the relays filled the limit: err = %v, want *LimitError", err)
	}
}

// TestRelayReports: the provider's report ends a message as delivered,
// undelivered or failed, once, and tells the client.
func TestRelayReports(t *testing.T) {
	for _, tc := range []struct {
		channel verify.Channel
		events  []verify.EventType
		want    verify.Status
	}{
		{verify.ChannelSMS, []verify.EventType{verify.EventSent, verify.EventDelivered}, verify.StatusDelivered},
		{verify.ChannelSMS, []verify.EventType{verify.EventUndelivered, verify.EventDelivered}, verify.StatusUndelivered},
		{verify.ChannelSMS, []verify.EventType{verify.EventFailed}, verify.StatusFailed},
		{verify.ChannelCall, []verify.EventType{verify.EventRinging, verify.EventAnswered, verify.EventCompleted}, verify.StatusDelivered},
		{verify.ChannelCall, []verify.EventType{verify.EventNoAnswer}, verify.StatusUndelivered},
		{verify.ChannelCall, []verify.EventType{verify.EventBusy}, verify.StatusUndelivered},
	} {
		svc := verifytest.NewService(t)
		ctx := context.Background()
		m, err := svc.Relay(ctx, verify.MessageRequest{Tenant: "acme", To: "+4915123456789", Body: "code 1234", Channel: tc.channel,
			CallbackURL: "https://idp.example/cb"})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range tc.events {
			if err := svc.Report(ctx, m.ID, verify.Event{Type: e, Channel: tc.channel, Attempt: 1}); err != nil && !errors.Is(err, verify.ErrNotPending) {
				t.Fatalf("Report(%s): %v", e, err)
			}
		}
		got, err := svc.Get(ctx, "acme", m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != tc.want || len(got.Events) != len(tc.events)+1 {
			t.Errorf("%s %v: status %s with %d events, want %s with every event recorded", tc.channel, tc.events, got.Status, len(got.Events), tc.want)
		}
		notices := svc.Notifier.Notices()
		if len(notices) != 1 || notices[0].Status != tc.want || notices[0].Kind != verify.KindMessage {
			t.Errorf("%s %v: notices %+v, want one of %s", tc.channel, tc.events, notices, tc.want)
		}
		if n := len(svc.Sender.Messages()) + len(svc.Caller.Calls()); n != 1 {
			t.Errorf("%s %v: %d sends, want 1 (no fallback)", tc.channel, tc.events, n)
		}
	}
}
