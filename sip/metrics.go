package sip

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verigate/verigate/verify"
)

// callMetrics are the Caller's Prometheus series counted as calls go; the
// media counters (RTP, DTMF, send lateness) are read from Stats when
// scraped. Labels: the trunk's configured name, and fixed outcome sets.
type callMetrics struct {
	calls *prometheus.CounterVec   // trunk, outcome
	setup *prometheus.HistogramVec // trunk
}

func newCallMetrics() *callMetrics {
	return &callMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verigate_sip_calls_total",
			Help: "SIP calls placed, by trunk and outcome: answered, or how an unanswered call ended (no_answer, busy, rejected, invalid_number, failed).",
		}, []string{"trunk", "outcome"}),
		setup: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "verigate_sip_call_setup_seconds",
			Help:    "Time from the INVITE to the answer (200 OK) of answered SIP calls, ringing included, by trunk.",
			Buckets: []float64{.25, .5, 1, 2, 3, 5, 8, 13, 21, 34, 60},
		}, []string{"trunk"}),
	}
}

// answered counts an answered call that took setup to answer.
func (m *callMetrics) answered(trunk string, setup time.Duration) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(trunk, "answered").Inc()
	m.setup.WithLabelValues(trunk).Observe(setup.Seconds())
}

// unanswered counts a call that ended with ev before an answer.
func (m *callMetrics) unanswered(trunk string, ev verify.EventType) {
	if m == nil {
		return
	}
	outcome := "failed"
	switch ev {
	case verify.EventNoAnswer, verify.EventBusy, verify.EventRejected, verify.EventInvalidNumber:
		outcome = string(ev)
	}
	m.calls.WithLabelValues(trunk, outcome).Inc()
}

var (
	descActive = prometheus.NewDesc("verigate_sip_active_calls",
		"SIP calls in progress (placed and not over).", nil, nil)
	descRTP = prometheus.NewDesc("verigate_rtp_packets_total",
		"RTP packets of the SIP calls that are over, by kind: sent, send_error (the socket refused), received (accepted), dropped (malformed, unexpected payload type or source), lost (sequence numbers skipped by the received stream).",
		[]string{"kind"}, nil)
	descDTMF = prometheus.NewDesc("verigate_dtmf_keys_total",
		"Keys taken from the phone in SIP calls that are over, by source: rfc4733, info, inband.",
		[]string{"source"}, nil)
	descLateness = prometheus.NewDesc("verigate_rtp_send_lateness_seconds",
		"How late each RTP packet of the SIP calls that are over left after its deadline: the send jitter the phone's jitter buffer absorbs.",
		nil, nil)
)

// latenessBounds are the buckets of verigate_rtp_send_lateness_seconds.
var latenessBounds = []time.Duration{
	500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond,
}

// Describe implements prometheus.Collector.
func (c *Caller) Describe(ch chan<- *prometheus.Desc) {
	c.metrics.calls.Describe(ch)
	c.metrics.setup.Describe(ch)
	ch <- descActive
	ch <- descRTP
	ch <- descDTMF
	ch <- descLateness
}

// Collect implements prometheus.Collector.
func (c *Caller) Collect(ch chan<- prometheus.Metric) {
	c.metrics.calls.Collect(ch)
	c.metrics.setup.Collect(ch)
	c.mu.Lock()
	active := len(c.calls)
	c.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(active))
	m := c.Stats().Media
	for _, kv := range []struct {
		kind string
		n    uint64
	}{
		{"sent", m.PacketsSent}, {"send_error", m.SendErrors}, {"received", m.PacketsReceived},
		{"dropped", m.PacketsDropped}, {"lost", m.PacketsLost},
	} {
		ch <- prometheus.MustNewConstMetric(descRTP, prometheus.CounterValue, float64(kv.n), kv.kind)
	}
	for _, kv := range []struct {
		source string
		n      uint64
	}{{"rfc4733", m.DigitsRFC4733}, {"info", m.DigitsInfo}, {"inband", m.DigitsInband}} {
		ch <- prometheus.MustNewConstMetric(descDTMF, prometheus.CounterValue, float64(kv.n), kv.source)
	}
	h := &m.SendLateness
	buckets := make(map[float64]uint64, len(latenessBounds))
	for _, b := range latenessBounds {
		buckets[b.Seconds()] = h.Count() - h.Above(b)
	}
	ch <- prometheus.MustNewConstHistogram(descLateness, h.Count(), h.Sum().Seconds(), buckets)
}
