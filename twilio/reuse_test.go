package twilio_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/verigate/verigate/internal/httpclient"
	"github.com/verigate/verigate/internal/twiliotest"
	"github.com/verigate/verigate/twilio"
	"github.com/verigate/verigate/verify"
)

// TestSendReusesConnections sends many messages at once through the
// Provider (twilio-go on the gateway's outbound transport) to a fake
// Twilio over TLS, and counts the connections the fake accepted: a few
// per message in flight (internal/httpclient's TestReuse says why not
// exactly one), not one per message, over HTTP/1.1 and HTTP/2.
func TestSendReusesConnections(t *testing.T) {
	const workers, perWorker = 16, 25
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", h2), func(t *testing.T) {
			fake := twiliotest.New(twiliotest.Config{AccountSID: accountSID, AuthToken: authToken, TLS: true, HTTP2: h2, SMSStatuses: []string{}})
			defer fake.Close()
			prov, err := twilio.New(twilio.Config{
				AccountSID: accountSID, AuthToken: authToken, From: fromNumber,
				BaseURL: fake.URL, PublicURL: publicURL, Secret: "a server secret of enough length",
			}, twilio.WithTransport(httpclient.NewTransport(httpclient.Options{TLSConfig: fake.ClientTLS()})))
			if err != nil {
				t.Fatal(err)
			}
			defer prov.Close()
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range perWorker {
						to := fmt.Sprintf("+4915112%03d%03d", w, i)
						if _, err := prov.Send(context.Background(), verify.Message{VerificationID: "v", To: to, Body: "Your code is 123456."}); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if n := len(fake.Messages()); n != workers*perWorker {
				t.Fatalf("fake got %d messages, want %d", n, workers*perWorker)
			}
			n := fake.Connections()
			t.Logf("%d messages, %d at a time: %d connections", workers*perWorker, workers, n)
			if n > 4*workers {
				t.Errorf("%d messages, %d at a time, opened %d connections; want at most %d", workers*perWorker, workers, n, 4*workers)
			}
		})
	}
}
