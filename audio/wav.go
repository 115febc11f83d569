package audio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// WAV format tags (the wFormatTag of the fmt chunk) that Verigate reads.
const (
	wavPCM        = 1
	wavALaw       = 6
	wavMuLaw      = 7
	wavExtensible = 0xFFFE
)

// ErrFormat is returned by ReadWAV for a file that is not a WAV Verigate
// can play: PCM 16-bit mono at 8 or 16 kHz, or G.711 µ-law/A-law mono at
// 8 kHz. The message names what the file holds instead.
var ErrFormat = errors.New("unsupported wav format")

// WAV is the audio of a WAV file, kept in its stored encoding.
type WAV struct {
	Format     int // 1 PCM, 6 A-law, 7 µ-law
	Channels   int
	SampleRate int
	Bits       int
	Data       []byte // the data chunk, as stored
}

// ReadWAV reads a RIFF/WAVE file. It walks the chunk list to find fmt and
// data rather than assuming a 44-byte header: sox writes an 18-byte fmt
// chunk and a fact chunk for G.711, editors add LIST chunks. A data chunk
// cut short (a recorder killed mid-call) yields the samples that are there.
// Format errors wrap ErrFormat.
func ReadWAV(r io.Reader) (*WAV, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("not a RIFF/WAVE file: read header: %w", err)
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return nil, fmt.Errorf("not a RIFF/WAVE file: %w", ErrFormat)
	}
	var w WAV
	var haveFmt bool
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			if !haveFmt {
				return nil, fmt.Errorf("wav without fmt chunk: %w", err)
			}
			return nil, fmt.Errorf("wav without data chunk: %w", err)
		}
		id := string(ch[0:4])
		size := int64(binary.LittleEndian.Uint32(ch[4:8]))
		switch id {
		case "fmt ":
			if size < 16 || size > 1<<16 {
				return nil, fmt.Errorf("fmt chunk of %d bytes: %w", size, ErrFormat)
			}
			b := make([]byte, size+size&1)
			if _, err := io.ReadFull(r, b); err != nil {
				return nil, fmt.Errorf("read fmt chunk: %w", err)
			}
			w.Format = int(binary.LittleEndian.Uint16(b[0:2]))
			w.Channels = int(binary.LittleEndian.Uint16(b[2:4]))
			w.SampleRate = int(binary.LittleEndian.Uint32(b[4:8]))
			w.Bits = int(binary.LittleEndian.Uint16(b[14:16]))
			if w.Format == wavExtensible && size >= 26 {
				// The sub-format GUID starts with the real format tag.
				w.Format = int(binary.LittleEndian.Uint16(b[24:26]))
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, fmt.Errorf("data chunk before fmt: %w", ErrFormat)
			}
			if err := w.check(); err != nil {
				return nil, err
			}
			// Streaming writers leave 0 or 0xFFFFFFFF here: read to the end then.
			var data []byte
			var err error
			if size == 0 || size == 0xFFFFFFFF {
				data, err = io.ReadAll(r)
			} else {
				data = make([]byte, size)
				var n int
				n, err = io.ReadFull(r, data)
				if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
					data, err = data[:n], nil // truncated file: keep what is there
				}
			}
			if err != nil {
				return nil, fmt.Errorf("read data chunk: %w", err)
			}
			if w.Bits == 16 && len(data)%2 == 1 {
				data = data[:len(data)-1]
			}
			w.Data = data
			return &w, nil
		default:
			if _, err := io.CopyN(io.Discard, r, size+size&1); err != nil {
				return nil, fmt.Errorf("skip %q chunk: %w", id, err)
			}
		}
	}
}

func (w *WAV) check() error {
	switch {
	case w.Channels != 1:
	case w.Format == wavPCM && w.Bits == 16 && (w.SampleRate == 8000 || w.SampleRate == 16000):
		return nil
	case (w.Format == wavMuLaw || w.Format == wavALaw) && w.Bits == 8 && w.SampleRate == 8000:
		return nil
	}
	return fmt.Errorf("%s: want 8 or 16 kHz mono 16-bit PCM, or 8 kHz mono G.711: %w", w, ErrFormat)
}

// String names the format for error messages: "16 kHz stereo PCM 16-bit".
func (w *WAV) String() string {
	enc := fmt.Sprintf("format %d", w.Format)
	switch w.Format {
	case wavPCM:
		enc = fmt.Sprintf("PCM %d-bit", w.Bits)
	case wavMuLaw:
		enc = "µ-law"
	case wavALaw:
		enc = "A-law"
	}
	ch := fmt.Sprintf("%d channels", w.Channels)
	switch w.Channels {
	case 1:
		ch = "mono"
	case 2:
		ch = "stereo"
	}
	return fmt.Sprintf("%g kHz %s %s", float64(w.SampleRate)/1000, ch, enc)
}

// Codec reports the G.711 codec the data is stored in; ok is false for
// linear PCM.
func (w *WAV) Codec() (c Codec, ok bool) {
	switch w.Format {
	case wavMuLaw:
		return PCMU, true
	case wavALaw:
		return PCMA, true
	}
	return PCMU, false
}

// PCM returns the audio as 8 kHz 16-bit linear samples. 16 kHz input goes
// through Downsample.
func (w *WAV) PCM() []int16 {
	if c, ok := w.Codec(); ok {
		return c.Decode(nil, w.Data)
	}
	out := make([]int16, len(w.Data)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(w.Data[2*i:]))
	}
	if w.SampleRate == 16000 {
		out = Downsample(out)
	}
	return out
}

// G711 returns the audio encoded in c at 8 kHz, ready for RTP.
// G.711 input in the other law is transcoded; input already in c is copied.
func (w *WAV) G711(c Codec) []byte {
	if from, ok := w.Codec(); ok {
		return Transcode(c, from, w.Data)
	}
	return c.Encode(nil, w.PCM())
}

// EncodeWAV wraps 8 kHz mono G.711 samples in a WAV file that players,
// Twilio's <Play> and sox accept (sox's layout: an 18-byte fmt chunk and a
// fact chunk).
func EncodeWAV(samples []byte, c Codec) []byte {
	const fmtSize, factSize = 18, 4
	size := 4 + (8 + fmtSize) + (8 + factSize) + 8 + len(samples) + len(samples)&1
	b := make([]byte, 0, 8+size)
	le := binary.LittleEndian
	format := uint16(wavMuLaw)
	if c == PCMA {
		format = wavALaw
	}
	b = append(b, "RIFF"...)
	b = le.AppendUint32(b, uint32(size))
	b = append(b, "WAVEfmt "...)
	b = le.AppendUint32(b, fmtSize)
	b = le.AppendUint16(b, format)
	b = le.AppendUint16(b, 1)    // mono
	b = le.AppendUint32(b, 8000) // samples per second
	b = le.AppendUint32(b, 8000) // bytes per second
	b = le.AppendUint16(b, 1)    // block align
	b = le.AppendUint16(b, 8)    // bits per sample
	b = le.AppendUint16(b, 0)    // no extension
	b = append(b, "fact"...)
	b = le.AppendUint32(b, factSize)
	b = le.AppendUint32(b, uint32(len(samples)))
	b = append(b, "data"...)
	b = le.AppendUint32(b, uint32(len(samples)))
	b = append(b, samples...)
	if len(samples)&1 == 1 {
		b = append(b, 0)
	}
	return b
}

// EncodePCMWAV returns samples as a 16-bit mono PCM WAV file at rate Hz
// (the canonical 44-byte header), the format test phones play and record.
func EncodePCMWAV(rate int, samples []int16) []byte {
	return AppendPCM(pcmHeader(rate, int64(2*len(samples))), samples)
}

// WAVWriter records 8 kHz mono audio into a WAV file. Write takes 16-bit
// little-endian linear PCM (what sip's MediaSession hands its recorder);
// Close fills in the RIFF and data sizes, which is why it needs a
// WriteSeeker.
type WAVWriter struct {
	w      io.WriteSeeker
	n      int64
	closed bool
}

// NewWAVWriter writes a 44-byte PCM header for 8 kHz 16-bit mono to w and
// returns a writer for the samples.
func NewWAVWriter(w io.WriteSeeker) (*WAVWriter, error) {
	ww := &WAVWriter{w: w}
	if _, err := w.Write(pcmHeader(SampleRate, 0)); err != nil {
		return nil, fmt.Errorf("write wav header: %w", err)
	}
	return ww, nil
}

// Write appends PCM bytes (16-bit little-endian samples).
func (ww *WAVWriter) Write(p []byte) (int, error) {
	n, err := ww.w.Write(p)
	ww.n += int64(n)
	return n, err
}

// Close patches the header with the final sizes. It does not close the
// underlying file, which the caller opened and owns.
func (ww *WAVWriter) Close() error {
	if ww.closed {
		return nil
	}
	ww.closed = true
	if ww.n%2 == 1 { // RIFF chunks are word aligned
		if _, err := ww.w.Write([]byte{0}); err != nil {
			return fmt.Errorf("pad wav: %w", err)
		}
	}
	if _, err := ww.w.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("seek wav header: %w", err)
	}
	if _, err := ww.w.Write(pcmHeader(SampleRate, ww.n)); err != nil {
		return fmt.Errorf("write wav header: %w", err)
	}
	_, err := ww.w.Seek(0, io.SeekEnd)
	return err
}

// pcmHeader builds the canonical 44-byte header of 16-bit mono PCM at rate.
func pcmHeader(rate int, dataLen int64) []byte {
	h := make([]byte, 44)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+dataLen+dataLen&1))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], wavPCM)
	binary.LittleEndian.PutUint16(h[22:], 1)              // mono
	binary.LittleEndian.PutUint32(h[24:], uint32(rate))   // sample rate
	binary.LittleEndian.PutUint32(h[28:], uint32(rate*2)) // byte rate
	binary.LittleEndian.PutUint16(h[32:], 2)              // block align
	binary.LittleEndian.PutUint16(h[34:], 16)             // bits per sample
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(dataLen))
	return h
}

// AppendPCM appends samples to dst as 16-bit little-endian bytes, the byte
// layout of WAVWriter and of sip's MediaSession recorder.
func AppendPCM(dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(s))
	}
	return dst
}
