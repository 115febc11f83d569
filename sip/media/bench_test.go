package media

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/audio"
)

// BenchmarkMediaConcurrentSessions paces N calls at once over loopback: each
// call is a gateway session playing 3 s of prompt audio and a phone session
// that presses '#' by RFC 4733 part-way through. It reports the send
// lateness of the gateway's packets against their absolute deadlines
// (p50/p99/max), DTMF lost (gateway digits short of the keys pressed) and
// heap plus stack in use per gateway session. Run with -benchtime=1x.
func BenchmarkMediaConcurrentSessions(b *testing.B) {
	for _, n := range []int{100, 500} {
		b.Run(fmt.Sprintf("calls=%d", n), func(b *testing.B) {
			for range b.N {
				benchSessions(b, n)
			}
		})
	}
}

func benchSessions(b *testing.B, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prompt := make([]byte, 150*FrameSamples) // 3 s, shared as embedded prompts are
	for i := range prompt {
		prompt[i] = byte(i)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	gws := make([]*Session, n)
	phones := make([]*Session, n)
	for i := range n {
		cg, cp := listenLoopback(b), listenLoopback(b)
		var err error
		gws[i], err = NewSession(ctx, Config{Conn: cg, Remote: addrOf(cp), Codec: audio.PCMU, DTMFPayloadType: 101})
		if err != nil {
			b.Fatal(err)
		}
		phones[i], err = NewSession(ctx, Config{Conn: cp, Remote: addrOf(cg), Codec: audio.PCMU, DTMFPayloadType: 101})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	var digits sync.Map
	memCh := make(chan uint64, 1)
	for i := range n {
		gw, phone := gws[i], phones[i]
		wg.Go(func() {
			if err := gw.Play(ctx, prompt); err != nil {
				b.Error(err)
			}
		})
		wg.Go(func() {
			// Spread the key presses over the middle of the prompt.
			time.Sleep(500*time.Millisecond + time.Duration(i%100)*15*time.Millisecond)
			if err := phone.SendDTMF(ctx, '#', 100*time.Millisecond); err != nil {
				b.Error(err)
			}
		})
		wg.Go(func() {
			select {
			case d := <-gw.Digits():
				digits.Store(i, d)
			case <-time.After(10 * time.Second):
			}
		})
	}
	go func() {
		// Sample memory while every session is busy.
		time.Sleep(1500 * time.Millisecond)
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		memCh <- m.HeapInuse + m.StackInuse
	}()
	wg.Wait()
	b.StopTimer()
	inUse := <-memCh
	var late LatenessHistogram
	got := 0
	for i := range n {
		_ = phones[i].Close()
		_ = gws[i].Close()
		st := gws[i].Stats()
		late.Merge(&st.SendLateness)
		if d, ok := digits.Load(i); ok && d.(rune) == '#' && st.DigitsReceived == 1 {
			got++
		}
	}
	// Both ends of every call live in this process: charge half the
	// growth to each gateway session (the phone side is the same type).
	perSession := float64(inUse-(before.HeapInuse+before.StackInuse)) / float64(2*n) / 1024
	b.ReportMetric(100*float64(late.Above(5*time.Millisecond))/float64(max(late.Count(), 1)), "%late>5ms")
	b.ReportMetric(float64(late.Quantile(0.50).Microseconds())/1000, "p50-late-ms")
	b.ReportMetric(float64(late.Quantile(0.99).Microseconds())/1000, "p99-late-ms")
	b.ReportMetric(float64(late.Max().Microseconds())/1000, "max-late-ms")
	b.ReportMetric(float64(n-got), "dtmf-lost")
	b.ReportMetric(perSession, "KiB/session")
	b.ReportMetric(float64(late.Count()), "packets")
}

func BenchmarkRFC4733Reader(b *testing.B) {
	pkts := rawAll(b, sippPound)
	b.ReportAllocs()
	var r RFC4733Reader
	for i := range b.N {
		// A new timestamp every event, as on the wire.
		ts := uint32(i / len(pkts))
		p := pkts[i%len(pkts)]
		if _, _, err := r.Read(ts, p[12:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseAnswer(b *testing.B) {
	body := BuildOffer(OfferParams{Addr: netip.MustParseAddr("192.0.2.1"), Port: 20000})
	b.ReportAllocs()
	for range b.N {
		if _, err := ParseAnswer(body); err != nil {
			b.Fatal(err)
		}
	}
}
