package media

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrDTMFPayload marks a telephone-event payload that is not an RFC 4733
// named event Verigate understands.
var ErrDTMFPayload = errors.New("invalid telephone-event payload")

// DTMFEvent is the payload of one RFC 4733 telephone-event packet:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     event     |E|R| volume    |          duration             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// event is 0-9, 10 (*), 11 (#), 12-15 (A-D), 16 (flash); E marks the end of
// the event; volume is in -dBm0 (0-63); duration is in timestamp units
// since the event's RTP timestamp, which stays the same in every packet of
// the event, end retransmissions included.
type DTMFEvent struct {
	Event    uint8
	End      bool
	Volume   uint8
	Duration uint16
}

// dtmfEventLen is the size of one event block. RFC 4733 §2.5.1.5 lets a
// packet carry several blocks (redundancy); the first one is the event.
const dtmfEventLen = 4

// Unmarshal reads the first event block of a telephone-event payload.
func (e *DTMFEvent) Unmarshal(b []byte) error {
	if len(b) < dtmfEventLen {
		return fmt.Errorf("%d bytes: %w", len(b), ErrDTMFPayload)
	}
	if b[0] > 16 {
		return fmt.Errorf("event %d: %w", b[0], ErrDTMFPayload)
	}
	e.Event = b[0]
	e.End = b[1]&0x80 != 0
	e.Volume = b[1] & 0x3F
	e.Duration = binary.BigEndian.Uint16(b[2:4])
	return nil
}

// Marshal appends the 4-byte event block to dst.
func (e DTMFEvent) Marshal(dst []byte) []byte {
	f := e.Volume & 0x3F
	if e.End {
		f |= 0x80
	}
	return append(dst, e.Event, f, byte(e.Duration>>8), byte(e.Duration))
}

// Digit returns the key of the event ('0'-'9', '*', '#', 'A'-'D') and
// false for flash.
func (e DTMFEvent) Digit() (rune, bool) { return EventDigit(e.Event) }

const dtmfKeys = "0123456789*#ABCD"

// EventDigit maps an RFC 4733 event code to its key.
func EventDigit(ev uint8) (rune, bool) {
	if int(ev) < len(dtmfKeys) {
		return rune(dtmfKeys[ev]), true
	}
	return 0, false
}

// DigitEvent maps a key to its RFC 4733 event code ('a'-'d' accepted).
func DigitEvent(r rune) (uint8, bool) {
	if r >= 'a' && r <= 'd' {
		r -= 'a' - 'A'
	}
	for i, k := range dtmfKeys {
		if k == r {
			return uint8(i), true
		}
	}
	return 0, false
}

// RFC4733Reader turns telephone-event packets into key presses, exactly one
// per event however many packets carry it. It follows RFC 4733 §2.5:
//
//   - §2.5.1.2: every packet of an event, end retransmissions included,
//     carries the event's start timestamp, and a new event a new one. The
//     reader identifies events by timestamp, never by sequence number:
//     sipp repeats the end packet three times with one sequence number,
//     baresip numbers its events in the audio sequence.
//   - §2.5.1.2: the marker bit flags an event's first packet, but that
//     packet may be lost or repeated, so the reader does not rely on it.
//   - §2.5.1.3: an event longer than the 16-bit duration can carry is sent
//     in segments; a segment ends without the E bit and the next starts at
//     its timestamp plus its duration. A packet of the same event code at
//     where an unfinished event near the largest duration had reached
//     (within segmentSlack, in case that segment's last packets were lost)
//     continues it and is no key.
//     Without this a held '0' followed by '#' would read "00#".
//   - §2.5.1.4: the final packet of an event and of each segment is sent
//     three times; the copies carry a known timestamp and are ignored.
//   - An event that has not ended is over once another event starts: it
//     can no longer be continued, so a later press of the same key is a
//     key of its own.
//
// The digit is delivered on the first packet seen of a new event, not on
// its end: the caller hears the reaction as soon as the key goes down (the
// prompt can stop at once), and a digit whose end packets are all lost is
// still delivered. A packet seen again later (an end retransmission, or a
// packet reordered behind a later event) matches a remembered timestamp and
// is ignored. The cost is that a key whose first packet arrives but which
// the sender later abandons still counts; no sender here does that.
//
// An RFC4733Reader is not safe for concurrent use; a Session owns one.
type RFC4733Reader struct {
	// recent remembers the last events and segments so that their late
	// packets do not count twice and a segment can find its event.
	recent [8]eventSeen
	n      int // how many entries of recent are valid
	next   int
}

// eventSeen is what the reader remembers of one event or segment.
type eventSeen struct {
	ts    uint32 // the start timestamp of the event or segment
	event uint8
	dur   uint16 // the largest duration seen
	ended bool   // the E bit was seen, or it was continued or superseded
}

// segmentSlack is how far past where an unfinished event had reached the
// next segment may start and still continue it: the three sends of a
// segment's last packet (§2.5.1.4) at 20 ms apiece may all be lost.
const segmentSlack = 3 * FrameSamples

// Read takes the RTP timestamp and payload of a telephone-event packet and
// returns the key when the packet starts a new event. ok is false for
// continuation, segment and end packets of a known event and for flash.
// err wraps ErrDTMFPayload for a malformed payload.
func (r *RFC4733Reader) Read(timestamp uint32, payload []byte) (digit rune, ok bool, err error) {
	var e DTMFEvent
	if err := e.Unmarshal(payload); err != nil {
		return 0, false, err
	}
	for i := range r.n {
		if p := &r.recent[i]; p.ts == timestamp {
			p.dur = max(p.dur, e.Duration)
			p.ended = p.ended || e.End
			return 0, false, nil
		}
	}
	segment := false
	for i := range r.n {
		p := &r.recent[i]
		// Only an event that came near the largest duration can have been
		// cut into segments; anything else at a new timestamp is a new key.
		if p.ended || p.event != e.Event || p.dur < 0xFFFF-2*segmentSlack {
			continue
		}
		if off := timestamp - p.ts; off >= uint32(p.dur) && off <= uint32(p.dur)+segmentSlack {
			segment = true
		}
	}
	// Whatever this packet starts, the events before it are over.
	for i := range r.n {
		r.recent[i].ended = true
	}
	r.recent[r.next] = eventSeen{ts: timestamp, event: e.Event, dur: e.Duration, ended: e.End}
	r.next = (r.next + 1) % len(r.recent)
	if r.n < len(r.recent) {
		r.n++
	}
	if segment {
		return 0, false, nil
	}
	d, ok := e.Digit()
	return d, ok, nil
}
