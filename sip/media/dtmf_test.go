package media

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/verigate/verigate/audio"
)

func TestParseINFO(t *testing.T) {
	for _, tc := range []struct {
		ct, body string
		digit    rune
		dur      time.Duration
		err      error
	}{
		{"application/dtmf-relay", "Signal=#\r\nDuration=160\r\n", '#', 160 * time.Millisecond, nil},
		{"application/dtmf-relay", "Signal=5\nDuration=250", '5', 250 * time.Millisecond, nil},
		{"Application/DTMF-Relay; charset=utf-8", "signal = * \r\n duration = 100 \r\n", '*', 100 * time.Millisecond, nil},
		{"application/dtmf-relay", "Signal=11\r\nDuration=160\r\n", '#', 160 * time.Millisecond, nil}, // event number
		{"application/dtmf-relay", "Signal=a\r\n", 'A', 0, nil},
		{"application/dtmf", "#", '#', 0, nil},
		{"application/dtmf", " 7\r\n", '7', 0, nil},
		{"application/dtmf", "10", '*', 0, nil},
		{"application/dtmf-relay", "Duration=160\r\n", 0, 0, ErrINFOBody},
		{"application/dtmf-relay", "Signal=16\r\n", 0, 0, ErrINFOBody}, // flash
		{"application/dtmf-relay", "Signal=##\r\n", 0, 0, ErrINFOBody},
		{"application/dtmf-relay", "Signal=1\r\nDuration=-5\r\n", 0, 0, ErrINFOBody},
		{"application/dtmf", "", 0, 0, ErrINFOBody},
		{"application/dtmf", "x", 0, 0, ErrINFOBody},
		{"application/sdp", "v=0", 0, 0, ErrINFOContentType},
		{"application/media_control+xml", "<media_control/>", 0, 0, ErrINFOContentType},
		{"", "#", 0, 0, ErrINFOContentType},
	} {
		d, dur, err := ParseINFO(tc.ct, []byte(tc.body))
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%q %q: err %v, want %v", tc.ct, tc.body, err, tc.err)
			}
			continue
		}
		if err != nil || d != tc.digit || dur != tc.dur {
			t.Errorf("%q %q: %q %v %v, want %q %v", tc.ct, tc.body, d, dur, err, tc.digit, tc.dur)
		}
	}
	ct, body, err := FormatINFO('#', 160*time.Millisecond)
	if err != nil || ct != "application/dtmf-relay" || string(body) != "Signal=#\r\nDuration=160\r\n" {
		t.Fatalf("FormatINFO: %q %q %v", ct, body, err)
	}
	if _, _, err := FormatINFO('x', 0); err == nil {
		t.Fatal("FormatINFO accepted a non-key")
	}
}

func FuzzParseINFO(f *testing.F) {
	f.Add("application/dtmf-relay", []byte("Signal=#\r\nDuration=160\r\n"))
	f.Add("application/dtmf", []byte("#"))
	f.Add("application/dtmf-relay; x=y", []byte("Signal=11\nDuration=99999999999999999999"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		d, dur, err := ParseINFO(ct, body)
		if err != nil {
			if !errors.Is(err, ErrINFOBody) && !errors.Is(err, ErrINFOContentType) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if _, ok := DigitEvent(d); !ok || (d >= 'a' && d <= 'd') {
			t.Fatalf("key %q", d)
		}
		if dur < 0 || dur > time.Minute {
			t.Fatalf("duration %v", dur)
		}
		// What the test phone would send for it parses back to the same key.
		ct2, b2, err := FormatINFO(d, dur)
		if err != nil {
			t.Fatal(err)
		}
		if d2, dur2, err := ParseINFO(ct2, b2); err != nil || d2 != d || dur2 != dur.Truncate(time.Millisecond) {
			t.Fatalf("round trip %q %v -> %q %v %v", d, dur, d2, dur2, err)
		}
	})
}

func TestParseDTMFMode(t *testing.T) {
	for in, want := range map[string]DTMFMode{"": DTMFAuto, "auto": DTMFAuto, "RFC4733": DTMFRFC4733, " info ": DTMFInfo, "inband": DTMFInband} {
		if got, err := ParseDTMFMode(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	if _, err := ParseDTMFMode("2833"); err == nil {
		t.Error("unknown mode accepted")
	}
}

// takeDigits waits for n digits (5 s at most), then closes the session so
// that nothing is in flight and returns them with any extra that arrived.
func takeDigits(t *testing.T, s *Session, n int) string {
	t.Helper()
	var got []rune
	deadline := time.After(5 * time.Second)
	for len(got) < n {
		select {
		case r := <-s.Digits():
			got = append(got, r)
		case <-deadline:
			t.Errorf("only %q after 5 s, want %d digits", string(got), n)
			n = 0
		}
	}
	_ = s.Close()
	for {
		select {
		case r := <-s.Digits():
			got = append(got, r)
		default:
			return string(got)
		}
	}
}

// waitReceived waits until the session has accepted n packets.
func waitReceived(t *testing.T, s *Session, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().PacketsReceived < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d packets accepted", s.Stats().PacketsReceived, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSessionINFOModeAndDuplicates(t *testing.T) {
	peer := listenLoopback(t)
	defer peer.Close()
	s, err := NewSession(t.Context(), Config{Conn: listenLoopback(t), Remote: addrOf(peer), Codec: audio.PCMU, DTMFPayloadType: 101, DTMF: DTMFInfo})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, cseq := range []uint32{5, 5, 4, 6} { // a repeat, an older one, then a new press
		s.HandleINFO(cseq, '#')
	}
	// RFC 4733 is not this trunk's mode: its event is ignored.
	to := s.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, h := range sippPound {
		if _, err := peer.WriteToUDPAddrPort(raw(t, h), to); err != nil {
			t.Fatal(err)
		}
	}
	waitReceived(t, s, uint64(len(sippPound)))
	if got := takeDigits(t, s, 2); got != "##" {
		t.Fatalf("digits %q, want ## (two INFO presses, duplicates and RFC 4733 ignored)", got)
	}
}

// TestSessionAutoKeepsFirstSource: a PBX that relays a key both as
// RFC 4733 and as SIP INFO must not count it twice.
func TestSessionAutoKeepsFirstSource(t *testing.T) {
	peer := listenLoopback(t)
	defer peer.Close()
	s, err := NewSession(t.Context(), Config{Conn: listenLoopback(t), Remote: addrOf(peer), Codec: audio.PCMU, DTMFPayloadType: 101})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	to := s.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, h := range sippPound {
		if _, err := peer.WriteToUDPAddrPort(raw(t, h), to); err != nil {
			t.Fatal(err)
		}
	}
	waitReceived(t, s, uint64(len(sippPound)))
	s.HandleINFO(1, '#')
	if got := takeDigits(t, s, 1); got != "#" {
		t.Fatalf("digits %q, want one # (the INFO copy of the key ignored)", got)
	}
}

func TestSessionInbandOverLoopback(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   DTMFMode
		dtmfPT int
		codec  audio.Codec
	}{
		{"inband mode", DTMFInband, 101, audio.PCMA},
		{"auto without telephone-event", DTMFAuto, 0, audio.PCMU},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cg, cp := listenLoopback(t), listenLoopback(t)
			gw, err := NewSession(t.Context(), Config{Conn: cg, Remote: addrOf(cp), Codec: tc.codec, DTMFPayloadType: tc.dtmfPT, DTMF: tc.mode})
			if err != nil {
				t.Fatal(err)
			}
			defer gw.Close()
			phone, err := NewSession(t.Context(), Config{Conn: cp, Remote: addrOf(cg), Codec: tc.codec, DTMFPayloadType: tc.dtmfPT})
			if err != nil {
				t.Fatal(err)
			}
			defer phone.Close()
			// The phone first echoes the gateway's prompt (speech), then presses 1 and #.
			speech := readFixture(t, "espeak_prompt_ulaw.wav").G711(tc.codec)
			if err := phone.Play(t.Context(), speech[:8000]); err != nil {
				t.Fatal(err)
			}
			for _, k := range "1#" {
				if err := phone.SendInbandDTMF(t.Context(), k, 80*time.Millisecond); err != nil {
					t.Fatal(err)
				}
			}
			if got := takeDigits(t, gw, 2); got != "1#" {
				t.Fatalf("digits %q, want 1#", got)
			}
		})
	}
}

// TestSessionInbandDuringSilence: a phone keeps a silence stream going
// and presses keys in-band; the tones replace its frames.
func TestSessionInbandDuringSilence(t *testing.T) {
	cg, cp := listenLoopback(t), listenLoopback(t)
	gw, err := NewSession(t.Context(), Config{Conn: cg, Remote: addrOf(cp), Codec: audio.PCMU, DTMF: DTMFInband})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	phone, err := NewSession(t.Context(), Config{Conn: cp, Remote: addrOf(cg), Codec: audio.PCMU})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	silenceDone := make(chan error, 1)
	go func() { silenceDone <- phone.Silence(t.Context(), time.Hour) }()
	time.Sleep(60 * time.Millisecond)
	for _, k := range "#1" {
		if err := phone.SendInbandDTMF(t.Context(), k, 80*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if got := takeDigits(t, gw, 2); got != "#1" {
		t.Fatalf("digits %q, want #1", got)
	}
	_ = phone.Close()
	if err := <-silenceDone; !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("silence ended with %v", err)
	}
	// 3 frames of silence, then each key's 7 frames of tone and pause.
	if st := phone.Stats(); st.PacketsSent < 14 {
		t.Fatalf("phone sent %d packets, want the keys inside its stream", st.PacketsSent)
	}
}
