package route_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/verigate/verigate/internal/twiliotest"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/verify"
)

// TestTwilioLateUndeliveredOfAResentSMS: Twilio reports the first SMS
// undelivered after the second was sent: no call. The second's
// undelivered report then falls back to a call, and # approves.
func TestTwilioLateUndeliveredOfAResentSMS(t *testing.T) {
	g := newTwilioGateway(t, route.Config{})
	// Neither message is settled by the fake: the test posts their fate.
	g.fake.SetSMSOutcome(deMobile, twiliotest.SMSOutcome{Statuses: []string{"queued", "sent"}})
	g.fake.SetPhone(deMobile, twiliotest.Phone{Keys: "#"})
	ctx := context.Background()
	v, err := g.Start(ctx, verify.StartRequest{Tenant: "t", To: deMobile, Channel: verify.ChannelAuto})
	if err != nil {
		t.Fatal(err)
	}
	if v.Route.Fallback != verify.ChannelCall {
		t.Fatalf("route %+v has no call fallback", v.Route)
	}
	if _, err := g.Start(ctx, verify.StartRequest{Tenant: "t", To: deMobile, Channel: verify.ChannelAuto}); err != nil {
		t.Fatal(err)
	}
	g.settle(t)
	msgs := g.fake.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
	undelivered := func(m twiliotest.Message) {
		t.Helper()
		p := url.Values{"AccountSid": {twSID}, "MessageSid": {m.Sid}, "SmsSid": {m.Sid}, "MessageStatus": {"undelivered"},
			"SmsStatus": {"undelivered"}, "ErrorCode": {"30003"}, "To": {deMobile}, "From": {twFrom}}
		status, _, err := g.fake.Post(ctx, m.StatusCallback, p, twiliotest.Signature(twToken, m.StatusCallback, p))
		if err != nil || status != http.StatusNoContent {
			t.Fatalf("undelivered callback for %s: HTTP %d, %v", m.Sid, status, err)
		}
		g.settle(t)
	}

	undelivered(msgs[0])
	if calls := g.fake.Calls(); len(calls) != 0 {
		t.Fatalf("Twilio placed %d calls for the first SMS's late undelivered report", len(calls))
	}
	if got, _ := g.Get(ctx, "t", v.ID); got.Status != verify.StatusPending || got.Channel != verify.ChannelSMS {
		t.Fatalf("after the late report: %s %s", got.Status, got.Channel)
	}

	undelivered(msgs[1])
	if calls := g.fake.Calls(); len(calls) != 1 {
		t.Fatalf("Twilio placed %d calls for the second SMS's undelivered report, want the fallback", len(calls))
	}
	if got, _ := g.Get(ctx, "t", v.ID); got.Status != verify.StatusApproved || got.Channel != verify.ChannelCall {
		t.Errorf("after the fallback call: %s %s", got.Status, got.Channel)
	}
}
