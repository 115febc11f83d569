package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The fixtures were made with sox (see testdata/README.md): a 0.1 s 440 Hz
// tone at half scale in three encodings. The G.711 ones have sox's 18-byte
// fmt chunk and a fact chunk, so the data starts at byte 58, not 44.
func readFixture(t *testing.T, name string) *WAV {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := ReadWAV(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return w
}

func TestReadWAVFindsDataChunk(t *testing.T) {
	raw, err := os.ReadFile("testdata/sox_ulaw_440hz.wav")
	if err != nil {
		t.Fatal(err)
	}
	w := readFixture(t, "sox_ulaw_440hz.wav")
	if w.Format != 7 || w.SampleRate != 8000 || len(w.Data) != 800 {
		t.Fatalf("format %d rate %d, %d bytes", w.Format, w.SampleRate, len(w.Data))
	}
	if !bytes.Equal(w.Data, raw[58:]) {
		t.Fatal("data is not the bytes after the data chunk header at offset 58")
	}
	if got := w.G711(PCMU); !bytes.Equal(got, w.Data) {
		t.Fatal("µ-law file played as µ-law must be passed through")
	}
}

func TestReadWAVEncodingsAgree(t *testing.T) {
	u := readFixture(t, "sox_ulaw_440hz.wav").PCM()
	a := readFixture(t, "sox_alaw_440hz.wav").PCM()
	p := readFixture(t, "sox_pcm16k_440hz.wav").PCM()
	if len(u) != 800 || len(a) != 800 || len(p) != 800 {
		t.Fatalf("sample counts %d %d %d, want 800 at 8 kHz", len(u), len(a), len(p))
	}
	// Same tone: the three decodings differ only by quantisation and the
	// 16 kHz file's low-pass filter, at most a step or two of the 16384 amplitude.
	for i := range u {
		if d := abs(int(u[i]) - int(a[i])); d > 1100 { // one quantisation step near the peak is 1024
			t.Fatalf("sample %d: µ-law %d vs A-law %d", i, u[i], a[i])
		}
		if d := abs(int(u[i]) - int(p[i])); d > 2500 { // plus the filter's ripple
			t.Fatalf("sample %d: µ-law %d vs 16 kHz PCM %d", i, u[i], p[i])
		}
	}
	if peak := maxAbs(u); peak < 15000 || peak > 17500 {
		t.Fatalf("peak %d, want about 16384", peak)
	}
}

func TestReadWAVRejects(t *testing.T) {
	hdr := func(format, channels, rate, bits int) []byte {
		b := pcmHeader(8000, 4)
		binary.LittleEndian.PutUint16(b[20:], uint16(format))
		binary.LittleEndian.PutUint16(b[22:], uint16(channels))
		binary.LittleEndian.PutUint32(b[24:], uint32(rate))
		binary.LittleEndian.PutUint16(b[34:], uint16(bits))
		return append(b, 0, 0, 0, 0)
	}
	for name, b := range map[string][]byte{
		"stereo":     hdr(1, 2, 8000, 16),
		"44.1 kHz":   hdr(1, 1, 44100, 16),
		"8-bit pcm":  hdr(1, 1, 8000, 8),
		"mp3":        hdr(0x55, 1, 8000, 0),
		"16 kHz mu":  hdr(7, 1, 16000, 8),
		"not riff":   []byte("RIFX\x00\x00\x00\x00WAVEfmt "),
		"data first": append([]byte("RIFF\x10\x00\x00\x00WAVEdata\x00\x00\x00\x00"), 0),
	} {
		if _, err := ReadWAV(bytes.NewReader(b)); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err %v, want ErrFormat", name, err)
		}
	}
	if _, err := ReadWAV(bytes.NewReader([]byte("RIFF\x04\x00\x00\x00WAVE"))); err == nil {
		t.Error("a wav without chunks must fail")
	}
}

func TestWAVWriterRoundTrip(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "rec.wav"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ww, err := NewWAVWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	pcm := []int16{0, 1000, -1000, 32767, -32768}
	for range 3 { // several writes, as a recorder gets them
		if _, err := ww.Write(AppendPCM(nil, pcm)); err != nil {
			t.Fatal(err)
		}
	}
	if err := ww.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	w, err := ReadWAV(f)
	if err != nil {
		t.Fatal(err)
	}
	got := w.PCM()
	if len(got) != 15 || got[3] != 32767 || got[14] != -32768 || w.SampleRate != 8000 {
		t.Fatalf("read back %v at %d Hz", got, w.SampleRate)
	}
	if st, _ := f.Stat(); st.Size() != 44+30 {
		t.Fatalf("file is %d bytes, want 74", st.Size())
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func maxAbs(s []int16) int {
	m := 0
	for _, v := range s {
		m = max(m, abs(int(v)))
	}
	return m
}
