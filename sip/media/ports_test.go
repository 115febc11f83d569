package media

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

// TestPortAllocatorDraw pins the draw with a fixed random index: the first
// free port from there, wrapping at the top; a port freed recently only
// when nothing else is free, the one freed longest ago first.
func TestPortAllocatorDraw(t *testing.T) {
	// Even ports 41000-41008: indices 0-4. coolMax is 1 (5/4).
	for _, tc := range []struct {
		name    string
		held    []int // ports held by calls
		cooling []int // ports freed recently, oldest first
		draw    int   // the random index
		want    int   // port handed out, 0 for none
	}{
		{name: "fresh range, bottom drawn", draw: 0, want: 41000},
		{name: "fresh range, middle drawn", draw: 3, want: 41006},
		{name: "drawn port held: the next free", held: []int{41006}, draw: 3, want: 41008},
		{name: "wraps at the top", held: []int{41008}, draw: 4, want: 41000},
		{name: "nearly full: the last free port", held: []int{41000, 41004, 41006, 41008}, draw: 4, want: 41002},
		{name: "a cooling port is skipped while another is free", cooling: []int{41006}, draw: 3, want: 41008},
		{name: "full but cooling: the one freed longest ago", held: []int{41002, 41006, 41008}, cooling: []int{41004, 41000}, draw: 0, want: 41004},
		{name: "full", held: []int{41000, 41002, 41004, 41006, 41008}, draw: 2, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := allocatorForTest(t, "41000-41009")
			a.coolMax = len(tc.cooling) // keep them all cooling while set up
			for _, p := range append(append([]int{}, tc.cooling...), tc.held...) {
				a.state[(p-41000)/2] = portHeld
				a.inUse++
			}
			for _, p := range tc.cooling {
				a.release((p - 41000) / 2)
			}
			a.intn = func(n int) int {
				if n != 5 {
					t.Fatalf("draw among %d ports, want 5", n)
				}
				return tc.draw
			}
			idx, ok := a.take()
			got := 0
			if ok {
				got = a.first + 2*idx
			}
			if got != tc.want {
				t.Fatalf("port %d, want %d", got, tc.want)
			}
		})
	}
}

// TestPortAllocatorCooling: a freed port stays out of the draw until
// coolMax ports freed after it have been.
func TestPortAllocatorCooling(t *testing.T) {
	a := allocatorForTest(t, "41000-41015") // 8 ports, coolMax 2
	if a.coolMax != 2 {
		t.Fatalf("coolMax %d, want 2", a.coolMax)
	}
	for i := range 8 {
		a.state[i] = portHeld
		a.inUse++
	}
	for _, i := range []int{5, 1, 6} {
		a.release(i)
	}
	want := []portState{portHeld, portCooling, portHeld, portHeld, portHeld, portFree, portCooling, portHeld}
	for i, st := range want {
		if a.state[i] != st {
			t.Errorf("port index %d state %d, want %d", i, a.state[i], st)
		}
	}
	if a.InUse() != 5 {
		t.Errorf("in use %d, want 5", a.InUse())
	}
	a.release(5) // not held: nothing changes
	if a.InUse() != 5 || len(a.cooling) != 2 {
		t.Errorf("releasing a free port: in use %d, cooling %v", a.InUse(), a.cooling)
	}
}

// TestPortAllocatorRandomOrder: the ports of a fresh range come in no
// predictable order, so a stranger cannot aim RTP at the next call's port
// (they used to come in order from the bottom). Twenty ports drawn all
// from the lowest tenth of 250 happens by chance once in 10^20.
func TestPortAllocatorRandomOrder(t *testing.T) {
	a := allocatorForTest(t, "41500-41999")
	var conns []*PortConn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	low := 0
	for range 20 {
		c, err := a.Listen(loopback)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if c.Port() < 41550 {
			low++
		}
	}
	if low == len(conns) {
		var ports []int
		for _, c := range conns {
			ports = append(ports, c.Port())
		}
		t.Fatalf("ports %v all from the bottom of the range", ports)
	}
}
