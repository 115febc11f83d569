package sip_test

import (
	"bufio"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/testbuf"

	"github.com/verigate/verigate/internal/peertest"
	"github.com/verigate/verigate/sip"
)

// TestSIPPortGarbageLogBounded: a stranger sends 1,000 datagrams of 30 KB
// that do not parse as SIP to the gateway's SIP port. sipgo logs each
// with the whole datagram; the gateway's log must stay small, with no
// line longer than maxLine, and still say what happened.
func TestSIPPortGarbageLogBounded(t *testing.T) {
	const (
		datagrams = 1000
		size      = 30 << 10
		maxLine   = 2 << 10
		maxTotal  = 32 << 10
	)
	var logs testbuf.Buffer
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "phone", Address: "127.0.0.1:9"},
		sip.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	base := len(logs.String())
	stranger := peertest.NewStranger(t)
	// The first line of each is the whole datagram: sipgo's error quotes it too.
	garbage := []byte(strings.Repeat("A", size-4) + "\r\n\r\n")
	options := peertest.SIPRequest{Method: "OPTIONS", URI: "sip:" + caller.Addr().String(),
		From: "<sip:stranger@127.0.0.2>;tag=1", To: "<sip:gateway@127.0.0.1>", CallID: "garbage-sync"}
	for i := range datagrams {
		stranger.Send(t, caller.Addr(), garbage)
		if i%4 == 3 {
			// The listener reads in order: once the OPTIONS is answered,
			// the garbage before it was parsed (and logged). Four at a
			// time fit the socket's receive buffer.
			options.CSeq = i
			if code := stranger.Request(t, caller.Addr(), options, 10*time.Second); code != 200 {
				t.Fatalf("OPTIONS answered %d", code)
			}
		}
	}
	out := logs.String()[base:]
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	lines, parseLines, long, loud := 0, 0, 0, 0
	for sc.Scan() {
		lines++
		if n := len(sc.Text()); n > maxLine {
			if long++; long == 1 {
				t.Errorf("line %d is %d bytes, want at most %d: %.300s…", lines, n, maxLine, sc.Text())
			}
		}
		if strings.Contains(sc.Text(), "failed to parse") {
			parseLines++
			if !strings.Contains(sc.Text(), "level=WARN") {
				loud++
			}
		}
	}
	if long > 0 || loud > 0 {
		t.Errorf("%d lines longer than %d bytes, %d parse failures above WARN", long, maxLine, loud)
	}
	if len(out) > maxTotal {
		t.Errorf("%d datagrams logged %d bytes in %d lines, want at most %d bytes", datagrams, len(out), lines, maxTotal)
	}
	if parseLines == 0 {
		t.Errorf("no line says datagrams failed to parse:\n%s", out)
	}
	t.Logf("%d datagrams of %d bytes: %d bytes logged in %d lines", datagrams, size, len(out), lines)
}
