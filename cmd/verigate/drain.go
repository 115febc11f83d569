package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/verigate/verigate/config"
)

// errDraining is /readyz's "drain" check once the gateway drains.
var errDraining = errors.New("gateway draining: shutting down")

// readyDrain is the readiness check that fails from the moment Drain
// begins, so that a load balancer takes the gateway out at once.
func (g *gateway) readyDrain(context.Context) error {
	if g.service != nil && g.service.Draining() {
		return errDraining
	}
	return nil
}

// Drain is the first step of a shutdown (docs/DRAIN.md), run while the
// HTTP server still serves, so that checks, approvals and providers'
// webhooks of the verifications in flight keep arriving:
//
//  1. readiness fails and new verifications are refused (verify.ErrDraining:
//     503 with Retry-After on every front end), new SIP calls too;
//  2. the SIP calls in progress get until timeout less config.DrainReserve
//     to end by themselves;
//  3. the calls still in progress are hung up (CANCEL or BYE) and their
//     outcome recorded (failed, "gateway shutting down");
//  4. the callbacks queued in memory are delivered until timeout; those
//     in Redis stay there for the other gateways (or this one restarted).
//
// What is left is logged and counted. Close then stops the rest.
func (g *gateway) Drain(timeout time.Duration, log *slog.Logger) {
	start := time.Now()
	g.service.Drain()
	log.Info("draining: new verifications refused, readiness failing", "drain_timeout", timeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if g.sip != nil {
		calls, stop := context.WithTimeout(ctx, timeout-config.DrainReserve(timeout))
		if n := g.sip.ActiveCalls(); n > 0 {
			log.Info("draining: waiting for calls in progress", "calls", n)
		}
		left := g.sip.Drain(calls)
		stop()
		if left > 0 {
			log.Warn("draining: drain timeout reached, hanging up the calls in progress", "calls", left)
		}
		// Hangs up what is left and records each outcome; closing again
		// later (Close) does nothing.
		if err := g.sip.Close(); err != nil {
			log.Warn("draining: sip caller close", "err", err)
		}
	}
	if g.callbacks != nil {
		if left := g.callbacks.Flush(ctx); left > 0 {
			// Run counts and logs them again as it stops (result "shutdown").
			log.Warn("draining: callbacks in memory not delivered by the drain timeout", "count", left)
		}
	}
	log.Info("drained", "after", time.Since(start).Round(time.Millisecond))
}
