package audio

import (
	"fmt"
	"strings"
)

// Codec is a G.711 variant negotiated in SDP. Its value is the static RTP
// payload type of RFC 3551, so a Codec can be written into an RTP header as is.
type Codec uint8

// The two codecs every PBX and trunk speaks. Wideband codecs are deliberately
// absent: the prompts are 8 kHz speech and G.711 passes through any gateway
// without transcoding.
const (
	PCMU Codec = 0 // G.711 µ-law, RTP payload type 0 (North America, Japan)
	PCMA Codec = 8 // G.711 A-law, RTP payload type 8 (everywhere else)
)

// ParseCodec reads a codec as operators, file names and SDP write it:
// ulaw, mulaw, µlaw, u-law, mu-law, pcmu or g711u for PCMU; alaw, a-law,
// pcma or g711a for PCMA; in any case.
func ParseCodec(s string) (Codec, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "ulaw", "mulaw", "µlaw", "u-law", "mu-law", "pcmu", "g711u":
		return PCMU, nil
	case "alaw", "a-law", "pcma", "g711a":
		return PCMA, nil
	}
	return PCMU, fmt.Errorf("unknown G.711 law %q: want ulaw or alaw", s)
}

// PayloadType returns the static RTP payload type of c.
func (c Codec) PayloadType() uint8 { return uint8(c) }

// Valid reports whether c is PCMU or PCMA.
func (c Codec) Valid() bool { return c == PCMU || c == PCMA }

// String returns the SDP encoding name ("PCMU" or "PCMA").
func (c Codec) String() string {
	switch c {
	case PCMU:
		return "PCMU"
	case PCMA:
		return "PCMA"
	}
	return fmt.Sprintf("Codec(%d)", uint8(c))
}

// Name returns "ulaw" or "alaw", the names used in file names and on the
// command line (ParseCodec reads them back).
func (c Codec) Name() string {
	if c == PCMA {
		return "alaw"
	}
	return "ulaw"
}

// Silence returns the byte that encodes a zero sample in c. It is not 0x00:
// a buffer of zero bytes is a loud buzz in µ-law.
func (c Codec) Silence() byte {
	if c == PCMA {
		return 0xD5
	}
	return 0xFF
}

// Encode appends the G.711 encoding of the 16-bit linear samples to dst.
func (c Codec) Encode(dst []byte, pcm []int16) []byte {
	enc := EncodeMuLaw
	if c == PCMA {
		enc = EncodeALaw
	}
	for _, s := range pcm {
		dst = append(dst, enc(s))
	}
	return dst
}

// Decode appends the 16-bit linear samples encoded in g711 to dst.
func (c Codec) Decode(dst []int16, g711 []byte) []int16 {
	tab := &ulawToLinear
	if c == PCMA {
		tab = &alawToLinear
	}
	for _, b := range g711 {
		dst = append(dst, tab[b])
	}
	return dst
}

// Transcode converts G.711 audio from one law to the other through the
// linear value, as ITU-T G.711 defines it. It returns a new slice; when
// from == to it returns a copy of src.
func Transcode(to, from Codec, src []byte) []byte {
	out := make([]byte, len(src))
	if to == from {
		copy(out, src)
		return out
	}
	tab := &ulawToALaw
	if from == PCMA {
		tab = &alawToULaw
	}
	for i, b := range src {
		out[i] = tab[b]
	}
	return out
}

// The decode and cross-law tables are computed once from the reference
// algorithms below and never written afterwards.
var (
	ulawToLinear [256]int16
	alawToLinear [256]int16
	ulawToALaw   [256]byte
	alawToULaw   [256]byte
)

func init() {
	for i := range 256 {
		ulawToLinear[i] = DecodeMuLaw(byte(i))
		alawToLinear[i] = DecodeALaw(byte(i))
	}
	for i := range 256 {
		ulawToALaw[i] = EncodeALaw(ulawToLinear[i])
		alawToULaw[i] = EncodeMuLaw(alawToLinear[i])
	}
}

const (
	ulawBias = 0x84 // 132: the bias of the 16-bit µ-law decoder
	ulawClip = 8159 // largest 14-bit magnitude before the bias
)

// EncodeMuLaw encodes one 16-bit linear sample as G.711 µ-law. It follows
// the reference implementation behind most of the world's G.711 (Sun's
// g711.c, also Python's audioop and sox): the sample is taken to 14 bits by
// an arithmetic shift, biased by 33, and its segment and 4-bit step are
// inverted into the byte.
func EncodeMuLaw(s int16) byte {
	v := int(s) >> 2
	mask := 0xFF
	if v < 0 {
		v = -v
		mask = 0x7F
	}
	if v > ulawClip {
		v = ulawClip
	}
	v += ulawBias >> 2
	seg := 0
	for x := v >> 6; x > 0; x >>= 1 {
		seg++
	}
	if seg > 7 {
		return byte(0x7F ^ mask)
	}
	return byte((seg<<4 | (v>>(seg+1))&0x0F) ^ mask)
}

// DecodeMuLaw decodes one G.711 µ-law byte into a 16-bit linear sample.
func DecodeMuLaw(b byte) int16 {
	b = ^b
	exp := int(b>>4) & 0x07
	mant := int(b & 0x0F)
	v := ((mant << 3) + ulawBias) << exp
	v -= ulawBias
	if b&0x80 != 0 {
		return int16(-v)
	}
	return int16(v)
}

// EncodeALaw encodes one 16-bit linear sample as G.711 A-law (ITU-T G.711
// table 1; even bits inverted with 0x55 as the standard requires).
func EncodeALaw(s int16) byte {
	v := int(s) >> 3 // A-law works on 13-bit magnitudes
	sign := 0x80
	if v < 0 {
		v = -v - 1
		sign = 0
	}
	var out int
	if v < 32 {
		out = v >> 1
	} else {
		exp := 1
		for x := v >> 5; x > 1; x >>= 1 {
			exp++
		}
		if exp > 7 {
			out = 0x7F
		} else {
			out = exp<<4 | (v>>exp)&0x0F
		}
	}
	return byte(out|sign) ^ 0x55
}

// DecodeALaw decodes one G.711 A-law byte into a 16-bit linear sample.
func DecodeALaw(b byte) int16 {
	b ^= 0x55
	exp := int(b>>4) & 0x07
	mant := int(b & 0x0F)
	var v int
	if exp == 0 {
		v = mant<<4 + 8
	} else {
		v = (mant<<4 + 0x108) << (exp - 1)
	}
	if b&0x80 == 0 {
		return int16(-v)
	}
	return int16(v)
}
