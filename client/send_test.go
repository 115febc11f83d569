package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/verigate/verigate/client"
)

// TestClientSend: a message the IdP wrote goes out as written, by SMS or
// as a call reading its code, and GetMessage reads it back; a verification
// is not a message.
func TestClientSend(t *testing.T) {
	g := newGateway(t)
	c := g.newClient(t, keyAcme)
	ctx := context.Background()

	m, err := c.Send(ctx, client.MessageRequest{To: number, Body: "Your login code is 482913", IdempotencyKey: "msg-1"})
	if err != nil {
		t.Fatal(err)
	}
	if m.ID == "" || m.Status != client.MessagePending || m.Channel != client.ChannelSMS || m.To != "+49151*****789" {
		t.Fatalf("send: %+v", m)
	}
	if sent := g.svc.Sender.Messages(); len(sent) != 1 || sent[0].Body != "Your login code is 482913" {
		t.Fatalf("sent %+v", sent)
	}
	again, err := c.Send(ctx, client.MessageRequest{To: number, Body: "Your login code is 482913", IdempotencyKey: "msg-1"})
	if err != nil || again.ID != m.ID || len(g.svc.Sender.Messages()) != 1 {
		t.Fatalf("a retry with the idempotency key: %+v %v", again, err)
	}
	got, err := c.GetMessage(ctx, m.ID)
	if err != nil || got.ID != m.ID || got.Status != client.MessagePending || len(got.Events) == 0 {
		t.Fatalf("get message: %+v %v", got, err)
	}

	call, err := c.Send(ctx, client.MessageRequest{To: "+4915123456780", Body: "Dein Code: 482913", Channel: client.ChannelCall, Locale: "de"})
	if err != nil || call.Channel != client.ChannelCall || call.Locale != "de" {
		t.Fatalf("send by call: %+v %v", call, err)
	}
	calls := g.svc.Caller.Calls()
	if len(calls) != 1 || !strings.Contains(calls[0].Code, "482913") {
		t.Fatalf("calls %+v, want one reading 482913", calls)
	}

	s, err := c.Start(ctx, client.StartRequest{To: "+4915123456781"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetMessage(ctx, s.ID); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("a verification read as a message: %v, want not_found", err)
	}
	if _, err := c.Send(ctx, client.MessageRequest{To: number, Body: "no code here", Channel: client.ChannelCall}); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("a call without a code: %v, want invalid_request", err)
	}
}
