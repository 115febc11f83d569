package sip

import (
	"errors"
	"fmt"
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
// opened for the range see conventional pairs). A port returns to the pool
// when the connection Listen gave is closed. It is safe for concurrent use.
type PortAllocator struct {
	mu    sync.Mutex
	first int // first even port
	count int // number of even ports
	used  []bool
	next  int // round-robin cursor: a port freed now is reused last
	inUse int
}

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
	return &PortAllocator{first: first, count: n, used: make([]bool, n)}, nil
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

func (a *PortAllocator) take() (int, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for range a.count {
		i := a.next
		a.next = (a.next + 1) % a.count
		if !a.used[i] {
			a.used[i] = true
			a.inUse++
			return i, true
		}
	}
	return 0, false
}

func (a *PortAllocator) release(idx int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.used[idx] {
		a.used[idx] = false
		a.inUse--
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
