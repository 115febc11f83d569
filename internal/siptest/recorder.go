package siptest

import (
	"io"
	"log/slog"

	"github.com/verigate/verigate/audio"
)

// maxGapFill bounds the silence a Recorder writes for a timestamp jump, so
// a peer's timestamp reset cannot make it write minutes of zeros.
const maxGapFill = 10 * 8000

// Recorder writes the audio a media.Session hears, decoded to 8 kHz 16-bit
// little-endian PCM (an audio.WAVWriter records a call), to its writer.
// Timestamp gaps up to 10 s (a pause, an RFC 4733 event in between) become
// silence, so the recording keeps the call's timing. Its Audio method is a
// media.Config.OnAudio; after a failed write it writes nothing more.
type Recorder struct {
	w       io.Writer
	codec   audio.Codec
	log     *slog.Logger
	pcm     []byte
	lin     []int16
	next    uint32 // the timestamp the next packet continues from
	started bool
}

// NewRecorder records audio in codec to w, logging a failed write to log.
func NewRecorder(w io.Writer, codec audio.Codec, log *slog.Logger) *Recorder {
	return &Recorder{w: w, codec: codec, log: log}
}

// Audio takes one packet's timestamp and payload.
func (r *Recorder) Audio(timestamp uint32, payload []byte) {
	if r.w == nil {
		return
	}
	r.pcm = r.pcm[:0]
	if r.started {
		if gap := timestamp - r.next; gap > 0 && gap <= maxGapFill {
			r.pcm = append(r.pcm, make([]byte, 2*gap)...)
		}
	}
	r.lin = r.codec.Decode(r.lin[:0], payload)
	r.pcm = audio.AppendPCM(r.pcm, r.lin)
	r.next, r.started = timestamp+uint32(len(payload)), true
	if _, err := r.w.Write(r.pcm); err != nil {
		r.log.Warn("recorder failed, recording stopped", "err", err)
		r.w = nil
	}
}
