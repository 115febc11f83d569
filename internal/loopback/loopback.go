// Package loopback tells whether a configured host is this machine: the
// one case in which a setting may use a plain-text scheme (ldap:// without
// StartTLS, an http:// authority or Graph URL for tests and fakes).
package loopback

import "net/netip"

// Host reports whether h, a URL's Hostname(), is "localhost" or a loopback
// IP address.
func Host(h string) bool {
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}
