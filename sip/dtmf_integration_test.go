package sip_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/internal/peertest"
	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/sip/media"
	"github.com/verigate/verigate/verify"
)

// dtmfCaller starts a gateway Caller on loopback with one trunk; cfg
// changes the sip configuration (tls_ca) before it starts.
func dtmfCaller(t *testing.T, rep verify.Reporter, trunk sip.Trunk, o sip.Options, cfg func(*sip.Config)) *sip.Caller {
	t.Helper()
	c := sip.Config{Listen: "127.0.0.1:0", RTPPorts: rtpRange(t), DefaultTrunk: trunk.Name, Trunks: []sip.Trunk{trunk}}
	if cfg != nil {
		cfg(&c)
	}
	if o.Audio == nil {
		o.Audio = tones{dur: 400 * time.Millisecond}
	}
	if o.Logger == nil {
		o.Logger = testLogger(t).With("side", "gateway")
	}
	if o.KeyTimeout == 0 {
		o.KeyTimeout = 3 * time.Second
	}
	caller, err := sip.NewCaller(c, o)
	if err != nil {
		t.Fatalf("NewCaller: %v", err)
	}
	t.Cleanup(func() { caller.Close() })
	caller.ReportTo(rep)
	return caller
}

// TestApproveEachDTMFMode places a call with the trunk set to each DTMF
// mode, to a test phone sending '#' that way, over UDP, TCP and TLS (the
// gateway trusting the test CA through sip.tls_ca), and a trunk left on
// auto taking SIP INFO and in-band keys.
func TestApproveEachDTMFMode(t *testing.T) {
	certs := peertest.NewCerts(t)
	type tc struct {
		transport string
		trunk     media.DTMFMode
		phone     media.DTMFMode
	}
	var cases []tc
	for _, tr := range []string{"udp", "tcp", "tls"} {
		for _, m := range []media.DTMFMode{media.DTMFRFC4733, media.DTMFInfo, media.DTMFInband} {
			cases = append(cases, tc{tr, m, m})
		}
	}
	cases = append(cases, tc{"udp", media.DTMFAuto, media.DTMFInfo}, tc{"udp", media.DTMFAuto, media.DTMFInband})
	for _, c := range cases {
		t.Run(c.transport+"/"+string(c.trunk)+"/phone-"+string(c.phone), func(t *testing.T) {
			pcfg := siptest.PhoneConfig{Press: "#", DTMF: c.phone, After: pressAfter, Ring: 100 * time.Millisecond}
			if c.transport == "tls" {
				pcfg.TLSListen, pcfg.TLSConfig = "127.0.0.1:0", certs.ServerTLS()
			}
			phone, ended := newPhone(t, pcfg)
			addr := phone.Addr().String()
			if c.transport == "tls" {
				addr = phone.TLSAddr().String()
			}
			rep := newReporter()
			caller := dtmfCaller(t, rep, sip.Trunk{Name: "phone", Address: addr, Transport: c.transport, DTMF: string(c.trunk)}, sip.Options{},
				func(cfg *sip.Config) { cfg.TLSCA = certs.CAFile })
			if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
				t.Fatalf("Call: %v", err)
			}
			rep.waitFor(t, "v1", verify.EventCompleted, 30*time.Second)
			pc := waitCall(t, ended, 10*time.Second)
			got := rep.types("v1")
			if !hasInOrder(got, verify.EventAnswered, verify.EventKeyPressed, verify.EventCallApproved, verify.EventCompleted) {
				t.Fatalf("events %v, want answered, key_pressed, call_approved, completed; phone %+v", got, pc)
			}
			if d, _ := detail(rep.all("v1"), verify.EventKeyPressed); d != "#" {
				t.Errorf("key_pressed %q, want #", d)
			}
			if pc.KeysSent != "#" || pc.Err != nil {
				t.Errorf("phone %+v, want # sent without error", pc)
			}
			if st := settled(t, caller); c.trunk != media.DTMFInfo && st.Media.DigitsReceived == 0 {
				// INFO keys do not pass the RTP receiver's counter.
				t.Errorf("media counted no digit: %+v", st.Media)
			}
		})
	}
}

// TestInbandIgnoresSpeech: on a trunk taking in-band DTMF, a phone that
// talks (speech-like noise, or the recorded prompts played back at the
// gateway as an echo would) and presses nothing must not approve; the call
// ends failed once the prompts are used up.
func TestInbandIgnoresSpeech(t *testing.T) {
	cat, err := prompts.Load(prompts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var echo []int16
	for _, id := range []prompts.ID{prompts.Greeting, prompts.PressPound, prompts.NoResponse} {
		g, err := cat.Audio("en", id, audio.PCMU)
		if err != nil {
			t.Fatal(err)
		}
		echo = audio.PCMU.Decode(echo, g)
	}
	for _, c := range []struct {
		name  string
		speak []int16
	}{
		{"noise", speechNoise(6 * time.Second)},
		{"prompt-echo", echo},
	} {
		t.Run(c.name, func(t *testing.T) {
			phone, ended := newPhone(t, siptest.PhoneConfig{DTMF: media.DTMFInband, Speak: c.speak, Ring: 100 * time.Millisecond})
			rep := newReporter()
			caller := dtmfCaller(t, rep, sip.Trunk{Name: "phone", Address: phone.Addr().String(), DTMF: "inband"},
				sip.Options{Audio: sip.PromptAudio{Catalogue: cat}, MaxPrompts: 2, KeyTimeout: 2 * time.Second}, nil)
			if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove, Locale: "en"}); err != nil {
				t.Fatalf("Call: %v", err)
			}
			rep.waitFor(t, "v1", verify.EventCompleted, 90*time.Second)
			pc := waitCall(t, ended, 10*time.Second)
			got := rep.types("v1")
			for _, ev := range got {
				if ev == verify.EventCallApproved || ev == verify.EventKeyPressed {
					t.Fatalf("speech was taken for a key: events %v", got)
				}
			}
			if !hasInOrder(got, verify.EventAnswered, verify.EventFailed, verify.EventCompleted) {
				t.Fatalf("events %v, want answered, failed, completed", got)
			}
			if pc.KeysSent != "" || pc.Heard == 0 {
				t.Errorf("phone %+v, want no key and the prompts heard", pc)
			}
			if st := settled(t, caller); st.Media.PacketsReceived == 0 || st.Media.DigitsReceived != 0 {
				t.Errorf("media %+v, want the phone's audio and no digit", st.Media)
			}
		})
	}
}

// speechNoise makes d of audio shaped like speech: syllables of about
// 200 ms with a voiced part (a gliding pitch of 90-250 Hz with its
// harmonics, the ones near DTMF frequencies included) and a noisy part,
// separated by short pauses, at a talking level.
func speechNoise(d time.Duration) []int16 {
	r := rand.New(rand.NewPCG(7, 11))
	total := int(d.Seconds() * 8000)
	out := make([]int16, 0, total+4000)
	for len(out) < total {
		n := 1200 + r.IntN(800)
		f0, f1 := 90+160*r.Float64(), 90+160*r.Float64()
		phase := 0.0
		for i := range n {
			env := math.Sin(math.Pi * float64(i) / float64(n))
			f := f0 + (f1-f0)*float64(i)/float64(n)
			phase += 2 * math.Pi * f / 8000
			var v float64
			for h := 1; h <= 12; h++ {
				v += math.Sin(float64(h)*phase) / float64(h)
			}
			if i > n*2/3 {
				v = 0.6*v + 1.5*(r.Float64()*2-1) // fricative tail
			}
			out = append(out, int16(4000*env*v))
		}
		out = append(out, make([]int16, 400+r.IntN(1200))...)
	}
	return out[:total]
}

// settled waits for the caller's calls to end (their media counters are
// added as the call's goroutine returns, just after it reports completed)
// and returns its counters.
func settled(t *testing.T, c *sip.Caller) sip.CallerStats {
	t.Helper()
	for i := 0; c.ActiveCalls() != 0 && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if n := c.ActiveCalls(); n != 0 {
		t.Fatalf("%d calls still active", n)
	}
	return c.Stats()
}
