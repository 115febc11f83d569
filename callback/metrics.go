package callback

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Notifier's Prometheus series. They count whether or not
// they are registered (Register).
type metrics struct {
	deliveries *prometheus.CounterVec // notices finished, by result
	failures   *prometheus.CounterVec // failed attempts, by reason
	retries    prometheus.Counter
	fallbacks  prometheus.Counter
	depth      *prometheus.GaugeVec // by queue
}

func newMetrics() *metrics {
	return &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verigate_callback_deliveries_total",
			Help: "Callback notices finished, by result: delivered, refused (a 4xx or 3xx answer), forbidden (destination not allowed), expired (max attempts or age reached), queue_full, shutdown (left in memory when the gateway stopped).",
		}, []string{"result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verigate_callback_failures_total",
			Help: "Callback attempts that failed and may be retried, by reason: network, http_408, http_429, http_5xx.",
		}, []string{"reason"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verigate_callback_retries_total", Help: "Callback retries scheduled.",
		}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verigate_callback_queue_fallbacks_total",
			Help: "Callback notices kept in this gateway's memory because the Redis queue did not accept them.",
		}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "verigate_callback_queue_depth",
			Help: "Callback notices queued (the shared queue for redis, this gateway's for memory), sampled by the delivery workers.",
		}, []string{"queue"}),
	}
}

// Register adds the Notifier's series to reg.
func (n *Notifier) Register(reg prometheus.Registerer) error {
	m := n.metrics
	for _, c := range []prometheus.Collector{m.deliveries, m.failures, m.retries, m.fallbacks, m.depth} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("callback: register metrics: %w", err)
		}
	}
	return nil
}
