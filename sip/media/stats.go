package media

import (
	"time"
)

// latenessBucket is the resolution of LatenessHistogram.
const latenessBucket = 100 * time.Microsecond

const latenessBuckets = 500 // 0-50 ms in 100 µs steps; later goes to the overflow

// LatenessHistogram counts how late each RTP packet left compared with its
// absolute deadline (start of the talkspurt + n×20 ms): the send jitter a
// receiver's jitter buffer has to absorb. Fixed buckets keep it small (2 KiB)
// and mergeable across sessions for the benchmarks.
type LatenessHistogram struct {
	buckets  [latenessBuckets]uint32
	overflow uint32
	count    uint64
	sum      time.Duration
	max      time.Duration
}

// Add records one packet that left d after its deadline (negative d, an
// early timer, counts as 0).
func (h *LatenessHistogram) Add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.count++
	h.sum += d
	if d > h.max {
		h.max = d
	}
	i := int(d / latenessBucket)
	if i >= latenessBuckets {
		h.overflow++
		return
	}
	h.buckets[i]++
}

// Merge adds the counts of o to h.
func (h *LatenessHistogram) Merge(o *LatenessHistogram) {
	for i := range h.buckets {
		h.buckets[i] += o.buckets[i]
	}
	h.overflow += o.overflow
	h.count += o.count
	h.sum += o.sum
	if o.max > h.max {
		h.max = o.max
	}
}

// Count returns the number of packets recorded.
func (h *LatenessHistogram) Count() uint64 { return h.count }

// Above returns how many packets were later than d (to bucket resolution).
func (h *LatenessHistogram) Above(d time.Duration) uint64 {
	i := int(d / latenessBucket)
	if i >= latenessBuckets {
		i = latenessBuckets
	}
	var below uint64
	for _, n := range h.buckets[:i] {
		below += uint64(n)
	}
	return h.count - below
}

// Sum returns the total lateness of the packets recorded.
func (h *LatenessHistogram) Sum() time.Duration { return h.sum }

// Max returns the largest lateness recorded.
func (h *LatenessHistogram) Max() time.Duration { return h.max }

// Quantile returns the upper edge of the bucket holding quantile q (0..1),
// so it errs on the late side by at most 100 µs. Past 50 ms it returns Max.
func (h *LatenessHistogram) Quantile(q float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	rank := uint64(q*float64(h.count) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, n := range h.buckets {
		seen += uint64(n)
		if seen >= rank {
			return time.Duration(i+1) * latenessBucket
		}
	}
	return h.max
}

// Stats is a snapshot of a Session's counters.
type Stats struct {
	PacketsSent     uint64
	SendErrors      uint64 // sends the socket refused (peer port closed, ICMP)
	PacketsReceived uint64 // accepted: negotiated payload type from the negotiated peer
	PacketsDropped  uint64 // malformed, unexpected payload type or source
	DigitsReceived  uint64
	DigitsDropped   uint64 // Digits() buffer full: nobody was reading
	// PacketsLost counts the sequence numbers the accepted packets skipped
	// (a jump of more than maxSeqGap is a new stream, not loss).
	PacketsLost uint64
	// Keys taken by source (the DTMF mode decides which sources count).
	DigitsRFC4733, DigitsInfo, DigitsInband uint64
	SendLateness                            LatenessHistogram
}

// maxSeqGap is the largest forward jump of RTP sequence numbers counted as
// loss: a bigger one is another stream (a sender whose telephone-events
// carry their own sequence) or a restart, and loss there is not known.
const maxSeqGap = 100

// lossCounter counts the sequence numbers skipped in one received RTP
// stream. Late, duplicate and repeated packets (RFC 4733 end packets share
// a number) count nothing.
type lossCounter struct {
	last uint16
	seen bool
}

// next takes the sequence number of an accepted packet and returns how many
// numbers it skipped.
func (l *lossCounter) next(seq uint16) uint64 {
	if !l.seen {
		l.last, l.seen = seq, true
		return 0
	}
	gap := seq - l.last // modulo 2^16
	if gap == 0 || gap > 0x8000 {
		return 0 // duplicate or late
	}
	l.last = seq
	if gap > maxSeqGap {
		return 0
	}
	return uint64(gap - 1)
}

// Add adds the counters of o to s (the Caller sums its calls' sessions).
func (s *Stats) Add(o *Stats) {
	s.PacketsSent += o.PacketsSent
	s.SendErrors += o.SendErrors
	s.PacketsReceived += o.PacketsReceived
	s.PacketsDropped += o.PacketsDropped
	s.PacketsLost += o.PacketsLost
	s.DigitsReceived += o.DigitsReceived
	s.DigitsDropped += o.DigitsDropped
	s.DigitsRFC4733 += o.DigitsRFC4733
	s.DigitsInfo += o.DigitsInfo
	s.DigitsInband += o.DigitsInband
	s.SendLateness.Merge(&o.SendLateness)
}
