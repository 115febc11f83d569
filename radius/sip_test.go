package radius

import (
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

// silence speaks every prompt as 400 ms of silence, so that a call
// reaches the prompt asking for the key quickly.
type silence struct{}

func (silence) Audio(_ string, _ prompts.ID, c audio.Codec) ([]byte, error) {
	return c.Encode(nil, make([]int16, 3200)), nil
}

// TestCallOverSIP: the login rings a SIP test phone through the gateway's
// SIP caller; # on the phone accepts it, 0# (fraud) rejects it, and the
// number is blocked afterwards.
func TestCallOverSIP(t *testing.T) {
	tests := []struct {
		press string
		code  radius.Code
		msg   string
		ports string
	}{
		{"#", radius.CodeAccessAccept, msgApproved, "47200-47249"},
		{"0#", radius.CodeAccessReject, msgFraud, "47250-47299"},
	}
	for _, tt := range tests {
		t.Run(tt.press, func(t *testing.T) {
			ended := make(chan siptest.PhoneCall, 1)
			phone, err := siptest.NewPhone(siptest.PhoneConfig{
				Listen: "127.0.0.1:0", RTPPorts: tt.ports, Press: tt.press,
				// After the 400 ms greeting and the pause, while the
				// prompt that asks for the key plays.
				After: 1200 * time.Millisecond, Logger: testLogger(t),
				OnCallEnd: func(pc siptest.PhoneCall) { ended <- pc },
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { phone.Close() })
			sc := phone.LoopbackConfig(sip.DefaultConfig())
			sc.RTPPorts = "47300-47399"
			caller, err := sip.NewCaller(sc, sip.Options{Audio: silence{}, Logger: testLogger(t), KeyTimeout: 3 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { caller.Close() })
			svc := verifytest.NewService(t, verifytest.WithConfig(func(c *verify.Config) {
				c.Callers = map[string]verify.Caller{sip.Provider: caller}
				c.DefaultCaller = sip.Provider
			}))
			caller.ReportTo(svc)
			cfg := testConfig()
			cfg.AnswerTimeout = 30 * time.Second
			s := startServer(t, cfg, Options{Verifier: svc})

			resp := exchange(t, s, accessRequest(t, testSecret, "alice", "pw", nil), 40*time.Second)
			if resp.Code != tt.code || rfc2865.ReplyMessage_GetString(resp) != tt.msg {
				t.Fatalf("answer %v %q, want %v %q", resp.Code, rfc2865.ReplyMessage_GetString(resp), tt.code, tt.msg)
			}
			select {
			case pc := <-ended:
				if pc.KeysSent != tt.press {
					t.Errorf("phone pressed %q", pc.KeysSent)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the call did not end")
			}
			if tt.press == "0#" {
				// The fraud report blocks the number: the next login is
				// refused by the limiter, with its message, and rings nobody.
				again := exchange(t, s, accessRequest(t, testSecret, "alice", "pw", nil), 10*time.Second)
				if again.Code != radius.CodeAccessReject || decided(s, radius.CodeAccessReject, "limited") != 1 {
					t.Fatalf("login after fraud: %v %q", again.Code, rfc2865.ReplyMessage_GetString(again))
				}
			}
		})
	}
}
