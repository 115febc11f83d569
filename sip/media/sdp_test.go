package media

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/audio"
)

func sdp(lines ...string) []byte { return []byte(strings.Join(lines, "\r\n") + "\r\n") }

func TestBuildOffer(t *testing.T) {
	got := string(BuildOffer(OfferParams{Addr: netip.MustParseAddr("192.0.2.10"), Port: 20000, SessionID: 42, Version: 1}))
	want := string(sdp(
		"v=0",
		"o=verigate 42 1 IN IP4 192.0.2.10",
		"s=verigate",
		"c=IN IP4 192.0.2.10",
		"t=0 0",
		"m=audio 20000 RTP/AVP 0 8 101",
		"a=rtpmap:0 PCMU/8000",
		"a=rtpmap:8 PCMA/8000",
		"a=rtpmap:101 telephone-event/8000",
		"a=fmtp:101 0-16",
		"a=ptime:20",
		"a=sendrecv",
	))
	if got != want {
		t.Fatalf("offer:\n%s\nwant:\n%s", got, want)
	}
	// Our own offer, read back as if the peer had echoed it.
	a, err := ParseAnswer([]byte(got))
	if err != nil {
		t.Fatal(err)
	}
	if a.Addr != netip.MustParseAddrPort("192.0.2.10:20000") || a.Codec != audio.PCMU || a.DTMFPayloadType != 101 || a.Ptime != 20*time.Millisecond {
		t.Fatalf("parsed own offer as %+v", a)
	}
	v6 := string(BuildOffer(OfferParams{Addr: netip.MustParseAddr("2001:db8::1"), Port: 20002, Codecs: []audio.Codec{audio.PCMA}, DTMFPayloadType: -1}))
	if !strings.Contains(v6, "c=IN IP6 2001:db8::1\r\n") || !strings.Contains(v6, "m=audio 20002 RTP/AVP 8\r\n") || strings.Contains(v6, "telephone-event") {
		t.Fatalf("ipv6 PCMA-only offer without DTMF:\n%s", v6)
	}
}

func TestParseAnswer(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []byte
		want Answer
		err  error
	}{
		{
			name: "sipp style: PCMU and telephone-event 101",
			body: sdp("v=0", "o=user1 53655765 2353687637 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
				"m=audio 6000 RTP/AVP 0 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15"),
			want: Answer{Addr: netip.MustParseAddrPort("127.0.0.1:6000"), Codec: audio.PCMU, DTMFPayloadType: 101, Ptime: 20 * time.Millisecond, Direction: "sendrecv"},
		},
		{
			name: "asterisk style: PCMA preferred, renumbered telephone-event, ptime 30, media-level c=",
			body: sdp("v=0", "o=- 1 2 IN IP4 10.0.0.1", "s=Asterisk", "c=IN IP4 10.0.0.1", "t=0 0",
				"m=audio 10004 RTP/AVP 8 0 96", "c=IN IP4 10.0.0.2", "a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000",
				"a=rtpmap:96 telephone-event/8000", "a=fmtp:96 0-16", "a=ptime:30", "a=maxptime:150", "a=sendrecv"),
			want: Answer{Addr: netip.MustParseAddrPort("10.0.0.2:10004"), Codec: audio.PCMA, DTMFPayloadType: 96, Ptime: 30 * time.Millisecond, MaxPtime: 150 * time.Millisecond, Direction: "sendrecv"},
		},
		{
			name: "freeswitch style: wideband telephone-event first, lf line ends, video stream",
			body: []byte("v=0\no=FreeSWITCH 1 2 IN IP4 198.51.100.7\ns=FreeSWITCH\nc=IN IP4 198.51.100.7\nt=0 0\n" +
				"m=video 0 RTP/AVP 96\n" +
				"m=audio 16384 RTP/AVP 9 0 100 101\na=rtpmap:9 G722/8000\na=rtpmap:0 PCMU/8000\n" +
				"a=rtpmap:100 telephone-event/48000\na=rtpmap:101 telephone-event/8000\na=sendonly\n"),
			want: Answer{Addr: netip.MustParseAddrPort("198.51.100.7:16384"), Codec: audio.PCMU, DTMFPayloadType: 101, Ptime: 20 * time.Millisecond, Direction: "sendonly"},
		},
		{
			name: "no telephone-event: SIP INFO or in-band peer",
			body: sdp("v=0", "o=- 1 1 IN IP6 2001:db8::5", "s=-", "c=IN IP6 2001:db8::5", "t=0 0", "m=audio 7078 RTP/AVP 8"),
			want: Answer{Addr: netip.MustParseAddrPort("[2001:db8::5]:7078"), Codec: audio.PCMA, Ptime: 20 * time.Millisecond, Direction: "sendrecv"},
		},
		{
			name: "first audio rejected with port 0, second accepted",
			body: sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0", "m=audio 0 RTP/AVP 0", "m=audio 4000 RTP/AVP 0"),
			want: Answer{Addr: netip.MustParseAddrPort("192.0.2.1:4000"), Codec: audio.PCMU, Ptime: 20 * time.Millisecond, Direction: "sendrecv"},
		},
		{name: "rejected audio", body: sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0", "m=audio 0 RTP/AVP 0"), err: ErrNoAudio},
		{name: "srtp only", body: sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0", "m=audio 4000 RTP/SAVP 0"), err: ErrNoAudio},
		{name: "g729 only", body: sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0", "m=audio 4000 RTP/AVP 18 101", "a=rtpmap:101 telephone-event/8000"), err: ErrNoCommonCodec},
		{name: "static type remapped", body: sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0", "m=audio 4000 RTP/AVP 0", "a=rtpmap:0 opus/48000/2"), err: ErrNoCommonCodec},
		{name: "no address", body: sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0", "m=audio 4000 RTP/AVP 0"), err: ErrSDP},
		{name: "host name address", body: sdp("v=0", "c=IN IP4 pbx.example.com", "m=audio 4000 RTP/AVP 0"), err: ErrSDP},
		{name: "no version", body: sdp("c=IN IP4 192.0.2.1", "m=audio 4000 RTP/AVP 0"), err: ErrSDP},
		{name: "garbage", body: []byte("SIP/2.0 200 OK\r\n"), err: ErrSDP},
		{name: "bad port", body: sdp("v=0", "c=IN IP4 192.0.2.1", "m=audio 70000 RTP/AVP 0"), err: ErrSDP},
		{name: "bad payload type", body: sdp("v=0", "c=IN IP4 192.0.2.1", "m=audio 4000 RTP/AVP 0 300"), err: ErrSDP},
		{name: "empty", body: nil, err: ErrSDP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAnswer(tc.body)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v %v\nwant %+v", got, err, tc.want)
			}
		})
	}
}

func TestBuildAnswer(t *testing.T) {
	offer := BuildOffer(OfferParams{Addr: netip.MustParseAddr("127.0.0.1"), Port: 20000, SessionID: 7})
	body, neg, err := BuildAnswer(offer, OfferParams{Addr: netip.MustParseAddr("127.0.0.1"), Port: 30000, SessionID: 9})
	if err != nil {
		t.Fatal(err)
	}
	if neg.Addr != netip.MustParseAddrPort("127.0.0.1:20000") || neg.Codec != audio.PCMU || neg.DTMFPayloadType != 101 {
		t.Fatalf("negotiated %+v", neg)
	}
	// The gateway reads the answer back: one codec, telephone-event 101.
	a, err := ParseAnswer(body)
	if err != nil {
		t.Fatal(err)
	}
	if a.Addr != netip.MustParseAddrPort("127.0.0.1:30000") || a.Codec != audio.PCMU || a.DTMFPayloadType != 101 {
		t.Fatalf("answer reads as %+v:\n%s", a, body)
	}
	if !strings.Contains(string(body), "m=audio 30000 RTP/AVP 0 101\r\n") {
		t.Fatalf("answer must list only the chosen codec and telephone-event:\n%s", body)
	}
	// A phone that allows only A-law picks it from the offer.
	_, neg, err = BuildAnswer(offer, OfferParams{Addr: netip.MustParseAddr("127.0.0.1"), Port: 30000, Codecs: []audio.Codec{audio.PCMA}})
	if err != nil || neg.Codec != audio.PCMA {
		t.Fatalf("PCMA-only answer: %+v %v", neg, err)
	}
	// A sendonly offer is answered recvonly.
	so := []byte(strings.Replace(string(offer), "a=sendrecv", "a=sendonly", 1))
	body, _, err = BuildAnswer(so, OfferParams{Addr: netip.MustParseAddr("127.0.0.1"), Port: 30000})
	if err != nil || !strings.Contains(string(body), "a=recvonly") {
		t.Fatalf("answer to sendonly: %v\n%s", err, body)
	}
}

func FuzzParseAnswer(f *testing.F) {
	f.Add(BuildOffer(OfferParams{Addr: netip.MustParseAddr("127.0.0.1"), Port: 20000}))
	f.Add(sdp("v=0", "c=IN IP4 10.0.0.1", "m=audio 10004 RTP/AVP 8 0 96", "c=IN IP4 10.0.0.2", "a=rtpmap:96 telephone-event/8000", "a=ptime:30"))
	f.Add(sdp("v=0", "c=IN IP6 2001:db8::5", "m=audio 0 RTP/AVP 0", "m=audio 7078 RTP/AVP 8", "a=sendonly"))
	f.Add([]byte("v=0\nm=audio 1 RTP/AVP 0\nc=IN IP4 1.2.3.4/127\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAnswer(b)
		if err != nil {
			if !errors.Is(err, ErrSDP) && !errors.Is(err, ErrNoAudio) && !errors.Is(err, ErrNoCommonCodec) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if !a.Codec.Valid() || !a.Addr.IsValid() || a.Addr.Port() == 0 {
			t.Fatalf("accepted answer without codec or address: %+v", a)
		}
		if a.DTMFPayloadType != 0 && (a.DTMFPayloadType < 96 || a.DTMFPayloadType > 127) {
			t.Fatalf("telephone-event payload type %d", a.DTMFPayloadType)
		}
		// Whatever was accepted as an offer can be answered, and the answer parses.
		body, _, err := BuildAnswer(b, OfferParams{Addr: netip.MustParseAddr("127.0.0.1"), Port: 30000})
		if err != nil {
			t.Fatalf("parsed as answer but not as offer: %v", err)
		}
		if _, err := ParseAnswer(body); err != nil {
			t.Fatalf("own answer unreadable: %v\n%s", err, body)
		}
	})
}

// TestSendPtime: RFC 3264 §6.1, the offerer sends at the answer's ptime,
// within its maxptime, in what G.711 allows (multiples of 10 ms, 10-60 ms).
func TestSendPtime(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		ptime, maxptime, want time.Duration
	}{
		{0, 0, 20 * ms},
		{20 * ms, 0, 20 * ms},
		{30 * ms, 0, 30 * ms},
		{30 * ms, 150 * ms, 30 * ms},
		{40 * ms, 30 * ms, 30 * ms}, // maxptime wins
		{0, 10 * ms, 10 * ms},
		{25 * ms, 0, 20 * ms}, // down to a multiple of 10 ms
		{5 * ms, 0, 10 * ms},
		{1000 * ms, 0, 60 * ms},
	} {
		a := Answer{Ptime: tc.ptime, MaxPtime: tc.maxptime}
		if got := a.SendPtime(); got != tc.want {
			t.Errorf("ptime %v maxptime %v: send %v, want %v", tc.ptime, tc.maxptime, got, tc.want)
		}
	}
}
