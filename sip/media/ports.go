package media

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
)

// ErrNoPorts is returned by PortAllocator.Listen when every port of the
// range is in use: the gateway is at its call capacity.
var ErrNoPorts = errors.New("no free rtp port")

// PortAllocator hands out even RTP ports from the configured range (the odd
// port above each is left for RTCP, as RFC 3550 §11 expects, so firewalls
// opened for the range see conventional pairs). Each port is drawn at
// random among the free ones, so a stranger cannot tell which port the
// next call's media will use and spray RTP at it. A port returns to the
// pool when the connection Listen gave is closed, after the ports freed
// before it: a late packet of an ended call must not land on the next one.
// It is safe for concurrent use.
type PortAllocator struct {
	mu    sync.Mutex
	first int // first even port
	count int // number of even ports
	state []portState
	// cooling holds the ports freed most recently, oldest first; they are
	// handed out again only when no other port is free.
	cooling []int
	coolMax int
	inUse   int
	// intn draws a random index below n; tests replace it.
	intn func(n int) int
}

type portState uint8

const (
	portFree portState = iota
	portHeld
	portCooling
)

// maxCooling bounds the ports kept out of the draw after their call ended.
const maxCooling = 64

// ParsePortRange reads a range such as "20000-20999".
func ParsePortRange(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || lo < 1024 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("rtp port range %q: want LOW-HIGH within 1024-65535", s)
	}
	return lo, hi, nil
}

// NewPortAllocator makes an allocator over a range such as "20000-20999".
// The range must hold at least one even port.
func NewPortAllocator(spec string) (*PortAllocator, error) {
	lo, hi, err := ParsePortRange(spec)
	if err != nil {
		return nil, err
	}
	first := lo + lo%2
	if first > hi {
		return nil, fmt.Errorf("rtp port range %q holds no even port", spec)
	}
	n := (hi-first)/2 + 1
	// math/rand/v2's generator is seeded by the runtime from the system's
	// random source, so the draws are not predictable from outside.
	return &PortAllocator{first: first, count: n, state: make([]portState, n),
		coolMax: min(n/4, maxCooling), intn: rand.IntN}, nil
}

// Size returns how many ports the allocator can hand out at once.
func (a *PortAllocator) Size() int { return a.count }

// InUse returns how many ports are currently taken.
func (a *PortAllocator) InUse() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inUse
}

// Listen binds a UDP socket on ip and a free even port of the range. A port
// that another program holds is skipped. Closing the returned connection
// gives the port back. Returns ErrNoPorts when the range is exhausted.
func (a *PortAllocator) Listen(ip netip.Addr) (*PortConn, error) {
	var lastErr error
	for range a.count {
		idx, ok := a.take()
		if !ok {
			break
		}
		port := a.first + 2*idx
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
		if err != nil {
			// Busy outside our control: leave it marked for this round and
			// free it afterwards, so the loop tries the other ports first.
			defer a.release(idx)
			lastErr = err
			continue
		}
		return &PortConn{UDPConn: c, a: a, idx: idx}, nil
	}
	if lastErr != nil {
		return nil, fmt.Errorf("%w: last bind error: %w", ErrNoPorts, lastErr)
	}
	return nil, ErrNoPorts
}

// take marks a port held and returns its index: the first free one from
// a random start (so the draw finds the last free port of a nearly full
// range in one pass), else the one that has cooled longest.
func (a *PortAllocator) take() (int, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	start := a.intn(a.count)
	for i := range a.count {
		idx := (start + i) % a.count
		if a.state[idx] == portFree {
			a.state[idx] = portHeld
			a.inUse++
			return idx, true
		}
	}
	if len(a.cooling) > 0 {
		idx := a.cooling[0]
		a.cooling = a.cooling[1:]
		a.state[idx] = portHeld
		a.inUse++
		return idx, true
	}
	return 0, false
}

// release gives a held port back: it cools, and the port that has cooled
// longest becomes free when more than coolMax are cooling.
func (a *PortAllocator) release(idx int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state[idx] != portHeld {
		return
	}
	a.inUse--
	a.state[idx] = portCooling
	a.cooling = append(a.cooling, idx)
	if len(a.cooling) > a.coolMax {
		a.state[a.cooling[0]] = portFree
		a.cooling = a.cooling[1:]
	}
}

// PortConn is a UDP socket bound to a port of a PortAllocator. Close closes
// the socket and returns the port; it is safe to call more than once.
type PortConn struct {
	*net.UDPConn
	a    *PortAllocator
	idx  int
	once sync.Once
}

// Port returns the bound port.
func (c *PortConn) Port() int { return c.a.first + 2*c.idx }

// Close closes the socket and gives the port back to the allocator.
func (c *PortConn) Close() error {
	var err error
	c.once.Do(func() {
		err = c.UDPConn.Close()
		c.a.release(c.idx)
	})
	return err
}
