package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verigate/verigate/api"
	"github.com/verigate/verigate/sip"
)

// watchTrunks starts, in the gateway's background, the OPTIONS keep-alive
// of every trunk with `keepalive` and the registration of every trunk with
// `register: true`; both log their state changes. A trunk that is down
// leaves the gateway ready (SMS still works) unless `sip.require_trunk` is
// set: then each such trunk adds a /readyz check "sip_trunk_<name>" that
// fails while it is not answering or not registered.
//
// Each watched trunk also has a gauge on st's collectors:
// verigate_sip_trunk_up (keep-alive answering) and
// verigate_sip_trunk_registered, labelled with the trunk's name.
func watchTrunks(bg context.Context, g *gateway, caller *sip.Caller, cfg sip.Config, ready map[string]api.ReadyCheck, st *state, log *slog.Logger) error {
	for _, t := range cfg.Trunks {
		var checks []func() error
		if t.KeepAlive > 0 {
			ka := sip.NewKeepAlive(sip.Config{Trunks: []sip.Trunk{t}}, caller.Requester(),
				sip.KeepAliveOptions{Interval: t.KeepAlive, Logger: log})
			g.goBackground(bg, func(ctx context.Context) { _ = ka.Run(ctx) })
			checks = append(checks, ka.Ready)
			st.collectors = append(st.collectors, trunkGauge(metricTrunkUp,
				"1 while the trunk answers its OPTIONS keep-alive, else 0 (trunks with keepalive set).", t.Name, ka.Ready))
		}
		if t.Register {
			reg, err := caller.Registration(bg, t.Name, sip.RegisterOptions{Logger: log})
			if err != nil {
				return fmt.Errorf("sip trunk %s: register: %w", t.Name, err)
			}
			g.goBackground(bg, func(ctx context.Context) { _ = reg.Run(ctx) })
			registered := func() error {
				if st := reg.State(); !st.Registered {
					reason := st.Error
					if reason == "" {
						reason = "not registered yet"
					}
					return fmt.Errorf("sip trunk %s not registered: %s", t.Name, reason)
				}
				return nil
			}
			checks = append(checks, registered)
			st.collectors = append(st.collectors, trunkGauge(metricTrunkRegistered,
				"1 while the trunk's registration holds, else 0 (trunks with register: true).", t.Name, registered))
		}
		if cfg.RequireTrunk && len(checks) > 0 {
			ready["sip_trunk_"+t.Name] = func(context.Context) error {
				for _, check := range checks {
					if err := check(); err != nil {
						return err
					}
				}
				return nil
			}
		}
	}
	return nil
}

// The trunks' gauges.
const (
	metricTrunkUp         = "verigate_sip_trunk_up"
	metricTrunkRegistered = "verigate_sip_trunk_registered"
)

// trunkGauge is a gauge named name for trunk: 1 while ok returns nil.
func trunkGauge(name, help, trunk string, ok func() error) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: name, Help: help, ConstLabels: prometheus.Labels{"trunk": trunk},
	}, func() float64 {
		if ok() != nil {
			return 0
		}
		return 1
	})
}
