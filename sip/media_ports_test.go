package sip

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func TestParsePortRange(t *testing.T) {
	for _, tc := range []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"20000-20999", 20000, 20999, true},
		{" 10000 - 10001 ", 10000, 10001, true},
		{"20000", 0, 0, false},
		{"20999-20000", 0, 0, false},
		{"80-90", 0, 0, false},
		{"60000-70000", 0, 0, false},
		{"a-b", 0, 0, false},
	} {
		lo, hi, err := ParsePortRange(tc.in)
		if (err == nil) != tc.ok || lo != tc.lo || hi != tc.hi {
			t.Errorf("%q: %d %d %v", tc.in, lo, hi, err)
		}
	}
	if _, err := NewPortAllocator("20001-20001"); err == nil {
		t.Error("a range without an even port must be refused")
	}
}

// allocatorForTest makes an allocator over a fixed test range.
func allocatorForTest(t *testing.T, spec string) *PortAllocator {
	t.Helper()
	a, err := NewPortAllocator(spec)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestPortAllocatorEvenPortsExhaustionAndReturn(t *testing.T) {
	a := allocatorForTest(t, "41001-41006") // even ports 41002, 41004, 41006
	if a.Size() != 3 {
		t.Fatalf("size %d, want 3", a.Size())
	}
	var conns []*PortConn
	seen := map[int]bool{}
	for range 3 {
		c, err := a.Listen(loopback)
		if err != nil {
			t.Fatal(err)
		}
		if c.Port()%2 != 0 || c.Port() < 41002 || c.Port() > 41006 || seen[c.Port()] {
			t.Fatalf("port %d", c.Port())
		}
		if got := c.LocalAddr().(*net.UDPAddr).Port; got != c.Port() {
			t.Fatalf("bound %d, reported %d", got, c.Port())
		}
		seen[c.Port()] = true
		conns = append(conns, c)
	}
	if _, err := a.Listen(loopback); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("fourth listen: %v, want ErrNoPorts", err)
	}
	freed := conns[1].Port()
	if err := conns[1].Close(); err != nil {
		t.Fatal(err)
	}
	_ = conns[1].Close() // twice is harmless and does not free twice
	if a.InUse() != 2 {
		t.Fatalf("in use %d, want 2", a.InUse())
	}
	c, err := a.Listen(loopback)
	if err != nil || c.Port() != freed {
		t.Fatalf("after close: %v port %v, want %d", err, c, freed)
	}
	for _, c := range append(conns, c) {
		_ = c.Close()
	}
	if a.InUse() != 0 {
		t.Fatalf("in use %d after closing all", a.InUse())
	}
}

func TestPortAllocatorSkipsPortHeldElsewhere(t *testing.T) {
	squatter, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 41102)))
	if err != nil {
		t.Fatalf("test needs port 41102 free: %v", err)
	}
	defer squatter.Close()
	a := allocatorForTest(t, "41102-41104")
	c, err := a.Listen(loopback)
	if err != nil || c.Port() != 41104 {
		t.Fatalf("got %v %v, want port 41104", c, err)
	}
	if _, err := a.Listen(loopback); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("err %v, want ErrNoPorts naming the bind failure", err)
	}
	_ = c.Close()
	if a.InUse() != 0 {
		t.Fatalf("in use %d", a.InUse())
	}
}

func TestPortAllocatorConcurrent(t *testing.T) {
	a := allocatorForTest(t, "41200-41399") // 100 ports
	var mu sync.Mutex
	held := map[int]int{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for range 50 {
				c, err := a.Listen(loopback)
				if errors.Is(err, ErrNoPorts) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if owner, dup := held[c.Port()]; dup {
					t.Errorf("port %d handed to %d and %d", c.Port(), owner, g)
				}
				held[c.Port()] = g
				mu.Unlock()
				mu.Lock()
				delete(held, c.Port())
				mu.Unlock()
				_ = c.Close()
			}
		})
	}
	wg.Wait()
	if a.InUse() != 0 {
		t.Fatalf("in use %d after all closed", a.InUse())
	}
}
