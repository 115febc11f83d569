package callback

import (
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// ErrForbiddenAddress is wrapped by every refusal of a callback
// destination: an address of the gateway's own networks (loopback,
// private, link-local, ...) or cloud metadata, or a host written in a form
// resolvers disagree on.
var ErrForbiddenAddress = errors.New("callback destination not allowed")

// AddressError is a refused callback destination: Host as the URL or the
// dialer named it, and Class, what kind of address it is.
type AddressError struct {
	Host  string
	Class string
}

func (e *AddressError) Error() string {
	if e.Class == classNumeric {
		return e.Host + " is " + e.Class
	}
	return e.Host + " is a " + e.Class + " address"
}

// Unwrap lets errors.Is(err, ErrForbiddenAddress) match.
func (e *AddressError) Unwrap() error { return ErrForbiddenAddress }

// Address classes, as AddressError.Class and Classify name them.
const (
	ClassLoopback    = "loopback"
	ClassPrivate     = "private"
	ClassLinkLocal   = "link-local"
	ClassUnspecified = "unspecified"
	ClassMulticast   = "multicast"
	ClassCGNAT       = "shared (CGNAT, RFC 6598)"
	ClassReserved    = "reserved"
	ClassMetadata    = "cloud metadata"
	classNumeric     = "a numeric host other than a dotted-quad IPv4 or a bracketed IPv6 address"
)

// ranges are the networks callbacks refuse by default, most specific first
// (a metadata address is named as such, not as link-local).
var ranges = func() []struct {
	p     netip.Prefix
	class string
} {
	list := []struct{ prefix, class string }{
		// Cloud metadata and platform endpoints: never a client's callback.
		{"169.254.169.254/32", ClassMetadata}, // AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean
		{"169.254.170.2/32", ClassMetadata},   // AWS ECS task metadata
		{"100.100.100.200/32", ClassMetadata}, // Alibaba Cloud
		{"168.63.129.16/32", ClassMetadata},   // Azure platform (WireServer), a public address
		{"fd00:ec2::254/128", ClassMetadata},  // AWS IPv6
		// IPv4 (RFC 6890).
		{"0.0.0.0/8", ClassUnspecified}, // "this network": 0.0.0.0 reaches the host itself
		{"127.0.0.0/8", ClassLoopback},
		{"10.0.0.0/8", ClassPrivate},
		{"172.16.0.0/12", ClassPrivate},
		{"192.168.0.0/16", ClassPrivate},
		{"100.64.0.0/10", ClassCGNAT},
		{"169.254.0.0/16", ClassLinkLocal},
		{"192.0.0.0/24", ClassReserved}, // IETF protocol assignments
		{"224.0.0.0/4", ClassMulticast},
		{"240.0.0.0/4", ClassReserved}, // and 255.255.255.255
		// IPv6 (RFC 6890, RFC 4193).
		{"::/128", ClassUnspecified},
		{"::1/128", ClassLoopback},
		{"::/96", ClassReserved}, // IPv4-compatible, deprecated
		{"64:ff9b:1::/48", ClassPrivate},
		{"100::/64", ClassReserved}, // discard-only
		{"fc00::/7", ClassPrivate},
		{"fe80::/10", ClassLinkLocal},
		{"fec0::/10", ClassPrivate}, // site-local, deprecated
		{"ff00::/8", ClassMulticast},
	}
	out := make([]struct {
		p     netip.Prefix
		class string
	}, len(list))
	for i, r := range list {
		out[i].p, out[i].class = netip.MustParsePrefix(r.prefix), r.class
	}
	return out
}()

// Classify returns the class of ip when callbacks refuse it by default,
// "" for a public address. IPv4 written inside IPv6 is judged as the IPv4
// address it reaches: IPv4-mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96)
// and 6to4 (2002::/16).
func Classify(ip netip.Addr) string {
	ip = ip.WithZone("")
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && [8]byte(b[4:12]) == [8]byte{}:
			return Classify(netip.AddrFrom4([4]byte(b[12:16])))
		case b[0] == 0x20 && b[1] == 0x02:
			if c := Classify(netip.AddrFrom4([4]byte(b[2:6]))); c != "" {
				return c
			}
		}
	}
	if !ip.IsValid() {
		return ClassReserved
	}
	for _, r := range ranges {
		if r.p.Contains(ip) {
			return r.class
		}
	}
	return ""
}

// policy decides which destinations a Notifier may reach.
type policy struct {
	allowPrivate bool // everything but cloud metadata
}

// refuses reports whether class is refused under p.
func (p policy) refuses(class string) bool {
	return class != "" && (!p.allowPrivate || class == ClassMetadata)
}

// checkAddr refuses ip (host names it in the error) unless p allows it.
func (p policy) checkAddr(host string, ip netip.Addr) error {
	if c := Classify(ip); p.refuses(c) {
		return &AddressError{Host: host, Class: c}
	}
	return nil
}

// control is the net.Dialer Control of the callback client: it sees the
// address each connection is about to reach, after name resolution, so a
// name that resolves (or rebinds) to a refused address is refused too.
func (p policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &AddressError{Host: address, Class: ClassReserved}
	}
	return p.checkAddr(ap.Addr().String(), ap.Addr())
}

// checkURL is the check made before any connection, so a client learns
// at once: an address literal is classified; a host that some resolvers
// read as an IPv4 address ("127.1", "2130706433", "0x7f.1", "0177.0.0.1")
// is refused, since what it reaches depends on the resolver; names that
// are the machine itself (localhost) or cloud metadata by definition are
// refused. Other names are checked when they are dialled.
func (p policy) checkURL(u *url.URL) error {
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.checkAddr(host, ip)
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if looksNumeric(name) {
		return &AddressError{Host: host, Class: classNumeric}
	}
	switch {
	case name == "localhost" || strings.HasSuffix(name, ".localhost") || name == "ip6-localhost" || name == "ip6-loopback":
		if p.refuses(ClassLoopback) {
			return &AddressError{Host: host, Class: ClassLoopback}
		}
	case name == "metadata" || name == "metadata.google.internal" || name == "metadata.goog" ||
		name == "instance-data" || strings.HasPrefix(name, "instance-data."):
		return &AddressError{Host: host, Class: ClassMetadata}
	}
	return nil
}

// looksNumeric reports whether host is an IPv4 address as inet_aton reads
// it (and some resolvers with it): one to four dot-separated numbers, each
// decimal, octal (leading 0) or hexadecimal (0x), the last one filling the
// remaining bytes. Go's own parser accepts only the dotted-quad decimal
// form; what these other forms reach depends on the resolver.
func looksNumeric(host string) bool {
	parts := strings.Split(host, ".")
	if host == "" || len(parts) > 4 {
		return false
	}
	for _, part := range parts {
		digits, base := part, 10
		switch {
		case len(part) > 1 && (part[:2] == "0x" || part[:2] == "0X"):
			digits, base = part[2:], 16
		case len(part) > 1 && part[0] == '0':
			digits, base = part[1:], 8
		}
		if digits == "" && base == 16 {
			continue // "0x" alone reads as 0
		}
		if _, err := strconv.ParseUint(digits, base, 64); err != nil {
			return false
		}
	}
	return true
}
