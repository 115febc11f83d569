// Package loadtest holds what the load benchmarks share: the open-loop
// load generator (HalfLoad), a lean HTTP/1.1 client for loopback
// (Client, StringField), and a meter of the CPU each process spends per
// operation (CPUMeter). The load generator shares the machine with what
// it measures, so it is built to cost little and to say what it costs.
package loadtest

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// HalfLoad finds the rate pair sustains with 64 workers flat out for 3 s,
// then runs b.N pairs open loop at half that rate, each scheduled at a
// fixed time, and reports p50 and p99 latency from the scheduled time (so
// queueing behind a slow pair counts, unlike a closed loop).
func HalfLoad(b *testing.B, pair func() error) { HalfLoadMetered(b, pair, nil) }

// HalfLoadMetered is HalfLoad that also reports the CPU per pair cpu
// measures over the b.N timed pairs (none when cpu is nil).
func HalfLoadMetered(b *testing.B, pair func() error, cpu *CPUMeter) {
	const workers, probe = 64, 3 * time.Second
	var done atomic.Int64
	stop := time.Now().Add(probe)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if err := pair(); err != nil {
					b.Error(err)
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	rate := float64(done.Load()) / probe.Seconds() / 2

	b.ResetTimer()
	sched := make(chan time.Time, workers)
	lat := make([][]time.Duration, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for at := range sched {
				if d := time.Until(at); d > 0 {
					time.Sleep(d)
				}
				if err := pair(); err != nil {
					b.Error(err)
				}
				lat[w] = append(lat[w], time.Since(at))
			}
		}()
	}
	if cpu != nil {
		if err := cpu.Start(); err != nil {
			b.Fatal(err)
		}
	}
	t0 := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for i := range b.N {
		sched <- t0.Add(time.Duration(i) * interval)
	}
	close(sched)
	wg.Wait()
	b.StopTimer()
	if cpu != nil {
		cpu.Report(b, b.N)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(rate, "pairs/s_offered")
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
}
