package siptest

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/verigate/verigate/audio"
)

// TestRecorderKeepsTiming: a timestamp gap in the peer's audio (a pause,
// or an RFC 4733 event in between) becomes silence in the recording; a
// jump past 10 s (a timestamp reset) does not.
func TestRecorderKeepsTiming(t *testing.T) {
	loud := bytes.Repeat([]byte{0x80}, 160) // loudest positive µ-law
	tests := []struct {
		name    string
		second  uint32 // timestamp of the second frame; the first is 0x1000
		samples int
	}{
		{"contiguous", 0x1000 + 160, 320},
		{"20 ms gap", 0x1000 + 320, 480},
		{"reset", 0x1000 + 11*8000, 320},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			r := NewRecorder(&buf, audio.PCMU, slog.New(slog.DiscardHandler))
			r.Audio(0x1000, loud)
			r.Audio(tt.second, loud)
			pcm := buf.Bytes()
			if len(pcm) != 2*tt.samples {
				t.Fatalf("recorded %d samples, want %d", len(pcm)/2, tt.samples)
			}
			gap := tt.samples - 320
			for i := 0; i < len(pcm); i += 2 {
				v := int16(uint16(pcm[i]) | uint16(pcm[i+1])<<8)
				inGap := i/2 >= 160 && i/2 < 160+gap
				if (inGap && v != 0) || (!inGap && v != 32124) {
					t.Fatalf("sample %d = %d", i/2, v)
				}
			}
		})
	}
}
