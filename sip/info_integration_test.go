package sip_test

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

// TestCallerAnswersINFO drives the gateway's SIP INFO handling from a bare
// sipgo phone: a body that is not DTMF gets 415, a malformed one 400, an
// INFO of no call 481; keys by application/dtmf-relay and application/dtmf
// get 200 and approve, and an INFO sent again with its CSeq (a PBX
// repeating itself) gets 200 and no second key.
func TestCallerAnswersINFO(t *testing.T) {
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("info-phone"))
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The phone's media port: read and drop what the gateway plays.
	media, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer media.Close()
	heard := make(chan struct{})
	go func() {
		buf := make([]byte, 1500)
		for first := true; ; first = false {
			if _, _, err := media.ReadFrom(buf); err != nil {
				return
			}
			if first {
				close(heard)
			}
		}
	}()
	addr := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	contact := sipmsg.ContactHeader{Address: sipmsg.Uri{Scheme: "sip", User: "phone", Host: "127.0.0.1", Port: int(addr.Port())}}
	dua := &sipgo.DialogUA{Client: client, ContactHDR: contact, RewriteContact: true}
	dialogs := make(chan *sipgo.DialogServerSession, 1)
	var current atomic.Pointer[sipgo.DialogServerSession]
	srv.OnInvite(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		d, err := dua.ReadInvite(req, tx)
		if err != nil {
			t.Errorf("ReadInvite: %v", err)
			return
		}
		current.Store(d)
		answer, _, err := sip.BuildAnswer(req.Body(), sip.OfferParams{
			Addr: netip.MustParseAddr("127.0.0.1"), Port: media.LocalAddr().(*net.UDPAddr).Port, DTMFPayloadType: -1})
		if err != nil {
			t.Errorf("BuildAnswer: %v", err)
			return
		}
		if err := d.RespondSDP(answer); err != nil {
			t.Errorf("answer: %v", err)
			return
		}
		dialogs <- d
		<-d.Context().Done()
	})
	srv.OnAck(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		if d := current.Load(); d != nil {
			_ = d.ReadAck(req, tx)
		}
	})
	srv.OnBye(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 200, "OK", nil))
	})

	// Handlers first: sipgo's server reads its handler map unlocked.
	go srv.ServeUDP(pc)

	rep := newReporter()
	caller := dtmfCaller(t, rep, sip.Trunk{Name: "phone", Address: addr.String(), DTMF: "info"}, sip.Options{KeyTimeout: 5 * time.Second}, nil)
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatalf("Call: %v", err)
	}
	var d *sipgo.DialogServerSession
	select {
	case d = <-dialogs:
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway's call did not arrive")
	}
	// Keys count once the gateway's media runs: wait for its first packet.
	select {
	case <-heard:
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway sent no audio")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	info := func(ct, body string) *sipmsg.Request {
		req := sipmsg.NewRequest(sipmsg.INFO, d.InviteRequest.Contact().Address)
		req.AppendHeader(sipmsg.NewHeader("Content-Type", ct))
		req.SetBody([]byte(body))
		return req
	}
	send := func(what string, req *sipmsg.Request, want int) {
		t.Helper()
		res, err := d.Do(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if res.StatusCode != want {
			t.Fatalf("%s answered %d %s, want %d", what, res.StatusCode, res.Reason, want)
		}
	}
	send("text/plain info", info("text/plain", "hello"), 415)
	send("malformed dtmf-relay", info("application/dtmf-relay", "Signal=x\r\n"), 400)

	stranger := sipmsg.NewRequest(sipmsg.INFO, d.InviteRequest.Contact().Address)
	stranger.AppendHeader(sipmsg.NewHeader("Content-Type", "application/dtmf"))
	stranger.SetBody([]byte("#"))
	stranger.SetDestination(d.InviteRequest.Source())
	if res, err := client.Do(ctx, stranger); err != nil || res.StatusCode != 481 {
		t.Fatalf("info of no call: %v %v, want 481", res, err)
	}

	// '1' twice with one CSeq, then '#': with the repeat dropped the
	// gateway hears '1' (not recognised, asked again), then '#' approves;
	// had the repeat counted, a second '1' would have been heard.
	one := info("application/dtmf-relay", "Signal=1\r\nDuration=100\r\n")
	send("dtmf-relay 1", one, 200)
	again := one.Clone()
	again.RemoveHeader("Via")
	if res, err := client.Do(ctx, again, sipgo.ClientRequestAddVia); err != nil || res.StatusCode != 200 {
		t.Fatalf("repeated info: %v %v, want 200", res, err)
	}
	send("application/dtmf #", info("application/dtmf", "#"), 200)
	rep.waitFor(t, "v1", verify.EventCompleted, 30*time.Second)
	got := rep.types("v1")
	if !hasInOrder(got, verify.EventAnswered, verify.EventKeyPressed, verify.EventCallApproved, verify.EventCompleted) {
		t.Fatalf("events %v, want answered, key_pressed, call_approved, completed", got)
	}
	if keys := keysPressed(rep); keys != "1#" {
		t.Fatalf("keys %q, want 1# (the repeated INFO dropped)", keys)
	}
}

func keysPressed(rep *reporter) string {
	var keys string
	for _, ev := range rep.all("v1") {
		if ev.Type == verify.EventKeyPressed {
			keys += ev.Detail
		}
	}
	return keys
}
