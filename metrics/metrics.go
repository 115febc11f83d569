// Package metrics holds the gateway's Prometheus series that belong to no
// single front end: the verification lifecycle (sends, delivery reports,
// ends by status and approval method, limit hits) as a
// verify.LifecycleObserver, Redis latency and errors as a go-redis hook,
// and verigate_build_info. Every label is bounded: channel, provider and
// policy come from the configuration, country is an ISO region or
// "unknown", status and method are fixed sets; no number, tenant or ID is
// ever a label.
package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verigate/verigate/verify"
)

// Approval methods: how a person proved they hold the number.
const (
	MethodSMSCode   = "sms_code"   // typed the code an SMS carried
	MethodVoiceKey  = "voice_key"  // pressed # in a call
	MethodVoiceCode = "voice_code" // typed the code a call read out
	MethodClient    = "client"     // the client approved without a code
)

// Verifications counts the verification lifecycle; it implements
// verify.LifecycleObserver and prometheus.Collector.
type Verifications struct {
	sends    *prometheus.CounterVec // channel, provider, country, send
	reports  *prometheus.CounterVec // channel, provider, country, status
	ended    *prometheus.CounterVec // channel, provider, country, status
	approved *prometheus.CounterVec // channel, provider, country, method
	limits   *prometheus.CounterVec // channel, policy
}

var _ verify.LifecycleObserver = (*Verifications)(nil)

// NewVerifications returns the lifecycle's series, unregistered.
func NewVerifications() *Verifications {
	lbl := []string{"channel", "provider", "country"}
	with := func(extra string) []string { return append(append([]string(nil), lbl...), extra) }
	return &Verifications{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verigate_verification_sends_total",
			Help: "Codes sent or calls placed, by channel, provider, country (ISO region) and send (first: a new verification; resend).",
		}, with("send")),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verigate_delivery_reports_total",
			Help: "Delivery outcomes reported by providers (delivered, undelivered, no_answer, busy, rejected, invalid_number, failed), by channel, provider and country.",
		}, with("status")),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verigate_verifications_ended_total",
			Help: "Verifications that reached a final status (approved, denied: fraud reported, failed, expired, canceled, max_attempts_reached), by channel, provider and country. An expiry is counted once, by the gateway whose check or expiry sweep (every 2 s) finds it.",
		}, with("status")),
		approved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verigate_verifications_approved_total",
			Help: "Verifications approved, by channel, provider, country and method (sms_code, voice_key: # pressed in a call, voice_code: code read out in a call, client: approved by the client).",
		}, with("method")),
		limits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verigate_limit_hits_total",
			Help: "Requests a limit refused, by channel (empty for a check lock) and policy.",
		}, []string{"channel", "policy"}),
	}
}

// Describe implements prometheus.Collector.
func (m *Verifications) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Verifications) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

func (m *Verifications) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.sends, m.reports, m.ended, m.approved, m.limits}
}

// Sent implements verify.LifecycleObserver.
func (m *Verifications) Sent(v *verify.Verification, provider string, resent bool) {
	send := "first"
	if resent {
		send = "resend"
	}
	m.sends.WithLabelValues(string(v.Channel), provider, Country(v.Country), send).Inc()
}

// Reported implements verify.LifecycleObserver.
func (m *Verifications) Reported(v *verify.Verification, provider string, ev verify.Event) {
	ch := ev.Channel
	if ch == "" {
		ch = v.Channel
	}
	m.reports.WithLabelValues(string(ch), provider, Country(v.Country), string(ev.Type)).Inc()
}

// Ended implements verify.LifecycleObserver.
func (m *Verifications) Ended(v *verify.Verification, provider string, ev verify.Event) {
	country := Country(v.Country)
	m.ended.WithLabelValues(string(v.Channel), provider, country, string(v.Status)).Inc()
	if v.Status == verify.StatusApproved {
		m.approved.WithLabelValues(string(v.Channel), provider, country, Method(v, ev)).Inc()
	}
}

// Limited implements verify.LifecycleObserver.
func (m *Verifications) Limited(channel verify.Channel, policy string) {
	m.limits.WithLabelValues(string(channel), policy).Inc()
}

// Method names how v, approved by ev, was approved.
func Method(v *verify.Verification, ev verify.Event) string {
	switch {
	case ev.Type == verify.EventApproved && ev.Detail == verify.DetailApprovedByClient:
		return MethodClient
	case ev.Type != verify.EventApproved:
		return MethodVoiceKey // a call's event carrying the approval
	case v.Channel == verify.ChannelCall:
		return MethodVoiceCode
	}
	return MethodSMSCode
}

// Country bounds a region label: an ISO 3166 alpha-2 region as the number
// parser gives it, "other" for a non-geographic one (001), else "unknown".
func Country(region string) string {
	switch {
	case region == "":
		return "unknown"
	case region == "001":
		return "other"
	case len(region) == 2 && upper(region[0]) && upper(region[1]):
		return region
	}
	return "unknown"
}

func upper(b byte) bool { return b >= 'A' && b <= 'Z' }

// BuildInfo is verigate_build_info{version, goversion}, always 1.
func BuildInfo(version string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "verigate_build_info",
		Help:        "Always 1; its labels say which build of the gateway runs.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}
