package audio

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"
)

// The reference digests were computed with Python's audioop module (a C
// port of Sun's g711.c, the reference most G.711 software shares) over the
// same inputs: every 16-bit sample from -32768 to 32767 for the encoders,
// every byte 0..255 for the decoders, samples as little-endian int16.
const (
	refMuLawEncode = "81d633c9e6972a18c74a58720b96cb8ca0bdd096d4060b646dd708c3b846019a"
	refALawEncode  = "38488f6fd710f4686360edc4d38639f96c491595ef93f8eb8d62d5e07ca6ce7b"
	refMuLawDecode = "3dab54339e520bb2c924826e3b72a917a2b612e9fd12fc867500f1d983a75827"
	refALawDecode  = "e04788d110e58ff8c70c93b8480190d973e3b67876b6119abbaec766cc75c174"
)

func TestG711MatchesReferenceImplementation(t *testing.T) {
	var mu, al []byte
	for v := -32768; v <= 32767; v++ {
		mu = append(mu, EncodeMuLaw(int16(v)))
		al = append(al, EncodeALaw(int16(v)))
	}
	var muDec, alDec []byte
	for b := range 256 {
		muDec = binary.LittleEndian.AppendUint16(muDec, uint16(DecodeMuLaw(byte(b))))
		alDec = binary.LittleEndian.AppendUint16(alDec, uint16(DecodeALaw(byte(b))))
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"mu-law encode", mu, refMuLawEncode},
		{"a-law encode", al, refALawEncode},
		{"mu-law decode", muDec, refMuLawDecode},
		{"a-law decode", alDec, refALawDecode},
	} {
		sum := sha256.Sum256(tc.data)
		if got := hex.EncodeToString(sum[:]); got != tc.want {
			t.Errorf("%s: digest %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestG711KnownValues spot-checks values from the G.711 tables so that a
// failure of the digest test above can be read.
func TestG711KnownValues(t *testing.T) {
	for _, tc := range []struct {
		in     int16
		mu, al byte
	}{
		{0, 0xFF, 0xD5}, {-1, 0x7E, 0x55}, {8, 0xFE, 0xD5}, {100, 0xF2, 0xD3}, {-100, 0x72, 0x53},
		{1000, 0xCE, 0xFA}, {-4000, 0x2F, 0x1A}, {12345, 0x97, 0xBD}, {32767, 0x80, 0xAA}, {-32768, 0x00, 0x2A},
	} {
		if got := EncodeMuLaw(tc.in); got != tc.mu {
			t.Errorf("EncodeMuLaw(%d) = %#x, want %#x", tc.in, got, tc.mu)
		}
		if got := EncodeALaw(tc.in); got != tc.al {
			t.Errorf("EncodeALaw(%d) = %#x, want %#x", tc.in, got, tc.al)
		}
	}
	// Decoder values from ITU-T G.711's tables, around zero and at the peaks.
	for _, tc := range []struct {
		c    Codec
		code byte
		pcm  int16
	}{
		{PCMU, 0xFF, 0}, {PCMU, 0x7F, 0}, {PCMU, 0xFE, 8}, {PCMU, 0x7E, -8}, {PCMU, 0xEF, 132}, {PCMU, 0x6F, -132},
		{PCMA, 0xD5, 8}, {PCMA, 0x55, -8},
	} {
		if got := tc.c.Decode(nil, []byte{tc.code})[0]; got != tc.pcm {
			t.Errorf("%v decode %#02x = %d, want %d", tc.c, tc.code, got, tc.pcm)
		}
	}
	if DecodeMuLaw(0x80) != 32124 || DecodeMuLaw(0x00) != -32124 || DecodeALaw(0xAA) != 32256 || DecodeALaw(0x2A) != -32256 {
		t.Error("peak values differ from the G.711 tables")
	}
	if PCMU.Silence() != EncodeMuLaw(0) || PCMA.Silence() != EncodeALaw(0) {
		t.Error("silence byte is not the encoding of 0")
	}
}

func TestG711RoundTripAndTranscode(t *testing.T) {
	for _, c := range []Codec{PCMU, PCMA} {
		for b := range 256 {
			pcm := c.Decode(nil, []byte{byte(b)})
			again := c.Encode(nil, pcm)[0]
			// µ-law has two zeros (0x7F and 0xFF); all else must round-trip.
			if again != byte(b) && !(c == PCMU && b == 0x7F && again == 0xFF) {
				t.Errorf("%v: %#x decodes to %d, encodes back to %#x", c, b, pcm[0], again)
			}
		}
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	toA := Transcode(PCMA, PCMU, all)
	for i, b := range toA {
		if want := EncodeALaw(DecodeMuLaw(byte(i))); b != want {
			t.Fatalf("µ→A %#x: %#x, want %#x", i, b, want)
		}
	}
	same := Transcode(PCMU, PCMU, all)
	same[0] = 1
	if all[0] != 0 {
		t.Fatal("Transcode to the same law must copy")
	}
}

// TestG711Monotonic: a louder sample never gets a quieter code, and the
// silence byte decodes to (almost) zero.
func TestG711Monotonic(t *testing.T) {
	for _, c := range []Codec{PCMU, PCMA} {
		prev := int16(-32768)
		for s := -32768; s <= 32767; s += 7 {
			got := c.Decode(nil, c.Encode(nil, []int16{int16(s)}))[0]
			if got < prev {
				t.Fatalf("%v: %d decodes to %d, below %d", c, s, got, prev)
			}
			prev = got
		}
		if got := c.Decode(nil, []byte{c.Silence()})[0]; got > 8 || got < -8 {
			t.Errorf("%v silence decodes to %d", c, got)
		}
	}
}

func TestCodecNames(t *testing.T) {
	if PCMU.PayloadType() != 0 || PCMA.PayloadType() != 8 {
		t.Error("payload types are not PCMU 0 and PCMA 8")
	}
	for _, tc := range []struct {
		c         Codec
		sdp, name string
		valid     bool
	}{
		{PCMU, "PCMU", "ulaw", true},
		{PCMA, "PCMA", "alaw", true},
		{Codec(9), "Codec(9)", "ulaw", false},
	} {
		if tc.c.String() != tc.sdp || tc.c.Name() != tc.name || tc.c.Valid() != tc.valid {
			t.Errorf("%d: String %q Name %q Valid %v", uint8(tc.c), tc.c.String(), tc.c.Name(), tc.c.Valid())
		}
	}
	for in, want := range map[string]Codec{
		"ulaw": PCMU, "PCMU": PCMU, "mulaw": PCMU, "µlaw": PCMU, " g711u ": PCMU,
		"alaw": PCMA, "PCMA": PCMA, "A-law": PCMA, "g711a": PCMA,
	} {
		if got, err := ParseCodec(in); err != nil || got != want {
			t.Errorf("ParseCodec(%q) = %v, %v", in, got, err)
		}
	}
	for _, c := range []Codec{PCMU, PCMA} {
		if got, err := ParseCodec(c.Name()); err != nil || got != c {
			t.Errorf("ParseCodec(%v.Name()) = %v, %v", c, got, err)
		}
	}
	if _, err := ParseCodec("g722"); err == nil {
		t.Error("ParseCodec(g722) accepted")
	}
}
