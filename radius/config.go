// Package radius is Verigate's RADIUS front end (RFC 2865): a VPN
// concentrator, firewall or Wi-Fi controller (the NAS) sends its logins
// here, Verigate checks the password (primary authentication: LDAP bind,
// an upstream RADIUS server, or none when something in front already
// did), finds the person's phone in the user directory and rings it
// ("Press the pound key to finish verifying your account"), or texts a
// code and answers with an Access-Challenge.
//
// Every Access-Request must carry a valid Message-Authenticator (RFC 3579,
// HMAC-MD5 under the client's secret) and every answer carries one: that
// closes BlastRADIUS (CVE-2024-3596). Packets from unknown addresses,
// without or with a wrong Message-Authenticator, or larger than 4096 bytes
// are dropped unanswered and counted. A NAS retransmits while the phone
// rings: duplicates (same client, identifier and request authenticator)
// start nothing and get the first answer again.
//
// Limits, fraud blocks and routing are verify.Service's, shared with the
// REST API: a person is not called more often through RADIUS.
package radius

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/verigate/verigate/internal/loopback"
)

// Defaults.
const (
	DefaultTenant = "radius"
	// DefaultAnswerTimeout is how long an Access-Request waits for the
	// call's outcome. It must stay under the NAS's own RADIUS timeout
	// (raise that to 60 s), or the NAS gives up before the answer.
	DefaultAnswerTimeout    = 50 * time.Second
	DefaultChallengeTimeout = 5 * time.Minute
	DefaultDuplicateWindow  = 2 * time.Minute
	DefaultMaxInFlight      = 256
	// MaxPacket is RFC 2865's largest packet; longer datagrams are dropped
	// before they are parsed.
	MaxPacket = 4096
)

// Config is the radius: section of the configuration. The server is off
// while Listen is empty.
type Config struct {
	// Listen is the UDP address, e.g. 0.0.0.0:1812.
	Listen string `yaml:"listen"`
	// Clients are the NASes allowed to ask, by source address or network.
	Clients []Client `yaml:"clients"`
	// Tenant owns the verifications RADIUS starts: its limits and
	// blocks are the same as the REST API's for the same numbers.
	Tenant string `yaml:"tenant"`
	// Primary checks the password before the phone rings.
	Primary Primary `yaml:"primary"`
	// SecondFactor is call (the press-# call, default) or sms (an
	// Access-Challenge for a texted code).
	SecondFactor string `yaml:"second_factor"`
	// Locale of the call and SMS; the gateway's fallback when empty.
	Locale string `yaml:"locale"`
	// AnswerTimeout bounds the wait for the call's outcome: keep it under
	// the NAS's timeout.
	AnswerTimeout time.Duration `yaml:"answer_timeout"`
	// ChallengeTimeout is how long an Access-Challenge's State is valid.
	ChallengeTimeout time.Duration `yaml:"challenge_timeout"`
	// DuplicateWindow is how long an answer is kept for retransmissions.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// MaxInFlight bounds the logins handled at once; more are dropped
	// (the NAS retries).
	MaxInFlight int `yaml:"max_in_flight"`
}

// Client is a NAS: its address (192.0.2.10) or network (10.0.0.0/8) and
// the shared secret.
type Client struct {
	Address string `yaml:"address"`
	Secret  string `yaml:"secret" secret:"true"`
	// Name is shown in logs; the address when empty.
	Name string `yaml:"name"`
}

// Primary selects the password check.
type Primary struct {
	// Mode is none, ldap or radius; required, so that none is a choice.
	Mode   string      `yaml:"mode"`
	LDAP   LDAPAuth    `yaml:"ldap"`
	RADIUS UpstreamRAD `yaml:"radius"`
}

// LDAPAuth binds as the user to check the password.
type LDAPAuth struct {
	URL        string `yaml:"url"`
	StartTLS   bool   `yaml:"start_tls"`
	CAFile     string `yaml:"ca_file"`
	ServerName string `yaml:"server_name"`
	// UserDN is a DN template, {username} replaced by the escaped user
	// name: uid={username},ou=people,dc=example,dc=com. Or, in AD,
	// {username}@contoso.com (a UPN binds too).
	UserDN string `yaml:"user_dn"`
	// Without UserDN: search BaseDN for Filter ({username} replaced by
	// the escaped name) as BindDN, then bind as the one entry found.
	BaseDN       string        `yaml:"base_dn"`
	Filter       string        `yaml:"filter"`
	BindDN       string        `yaml:"bind_dn"`
	BindPassword string        `yaml:"bind_password" secret:"true"`
	Timeout      time.Duration `yaml:"timeout"`
}

// UpstreamRAD forwards PAP to another RADIUS server.
type UpstreamRAD struct {
	Address string        `yaml:"address"`
	Secret  string        `yaml:"secret" secret:"true"`
	Timeout time.Duration `yaml:"timeout"` // per try; 3s when 0
	Retries int           `yaml:"retries"` // tries after the first; 2 when 0
}

// Enabled reports whether the server is configured.
func (c Config) Enabled() bool { return c.Listen != "" }

// WithDefaults fills in every unset setting.
func (c Config) WithDefaults() Config {
	if c.Tenant == "" {
		c.Tenant = DefaultTenant
	}
	if c.SecondFactor == "" {
		c.SecondFactor = "call"
	}
	if c.AnswerTimeout == 0 {
		c.AnswerTimeout = DefaultAnswerTimeout
	}
	if c.ChallengeTimeout == 0 {
		c.ChallengeTimeout = DefaultChallengeTimeout
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.Primary.LDAP.Timeout == 0 {
		c.Primary.LDAP.Timeout = 5 * time.Second
	}
	if c.Primary.LDAP.Filter == "" {
		c.Primary.LDAP.Filter = "(uid={username})"
	}
	if c.Primary.RADIUS.Timeout == 0 {
		c.Primary.RADIUS.Timeout = 3 * time.Second
	}
	if c.Primary.RADIUS.Retries == 0 {
		c.Primary.RADIUS.Retries = 2
	}
	return c
}

// Validate checks the section (nothing when it is off), naming each key
// at fault, all errors at once.
func (c Config) Validate(prefix string) error {
	if !c.Enabled() {
		return nil
	}
	c = c.WithDefaults()
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", prefix, key, fmt.Sprintf(format, args...)))
	}
	if _, err := netip.ParseAddrPort(c.Listen); err != nil {
		bad("listen", "must be an address and port such as 0.0.0.0:1812, not %q", c.Listen)
	}
	if len(c.Clients) == 0 {
		bad("clients", "must list at least one NAS (address and secret)")
	}
	for i, cl := range c.Clients {
		if _, err := parseClientAddress(cl.Address); err != nil {
			bad(fmt.Sprintf("clients[%d].address", i), "must be an IP address or a network such as 10.0.0.0/8, not %q", cl.Address)
		}
		if len(cl.Secret) < 6 {
			// A short secret is guessed offline from one captured packet.
			bad(fmt.Sprintf("clients[%d].secret", i), "must be at least 6 characters (use 16 or more random ones)")
		}
	}
	switch c.SecondFactor {
	case "call", "sms":
	default:
		bad("second_factor", "must be call or sms, not %q", c.SecondFactor)
	}
	if c.AnswerTimeout < 100*time.Millisecond || c.AnswerTimeout > 5*time.Minute {
		bad("answer_timeout", "must be between 100ms and 5m (and under the NAS's timeout), not %s", c.AnswerTimeout)
	}
	if c.ChallengeTimeout < time.Second || c.ChallengeTimeout > time.Hour {
		bad("challenge_timeout", "must be between 1s and 1h, not %s", c.ChallengeTimeout)
	}
	if c.DuplicateWindow < time.Second || c.DuplicateWindow > time.Hour {
		bad("duplicate_window", "must be between 1s and 1h, not %s", c.DuplicateWindow)
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > 100000 {
		bad("max_in_flight", "must be between 1 and 100000, not %d", c.MaxInFlight)
	}
	switch c.Primary.Mode {
	case "":
		// No default: none without saying so would make a login a phone
		// approval alone, whatever the password.
		bad("primary.mode", "must be set: ldap, radius, or none when the NAS or a proxy in front checks the password")
	case "none":
	case "ldap":
		l := c.Primary.LDAP
		u, err := url.Parse(l.URL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "ldap" && u.Scheme != "ldaps"):
			bad("primary.ldap.url", "must be ldaps://host[:port] or ldap://host[:port], not %q", l.URL)
		case u.Scheme == "ldaps" && l.StartTLS:
			bad("primary.ldap.start_tls", "is for ldap://; ldaps:// is TLS from the start")
		case u.Scheme == "ldap" && !l.StartTLS && !loopback.Host(u.Hostname()):
			bad("primary.ldap.start_tls", "must be true for ldap:// to %s: passwords must not cross the network in clear", u.Hostname())
		}
		switch {
		case l.UserDN != "" && !strings.Contains(l.UserDN, "{username}"):
			bad("primary.ldap.user_dn", "must contain {username}")
		case l.UserDN == "" && l.BaseDN == "":
			bad("primary.ldap.user_dn", "or primary.ldap.base_dn (search, then bind) must be set")
		case l.UserDN == "" && !strings.Contains(l.Filter, "{username}"):
			bad("primary.ldap.filter", "must contain {username}")
		}
	case "radius":
		r := c.Primary.RADIUS
		if _, err := netip.ParseAddrPort(r.Address); err != nil {
			bad("primary.radius.address", "must be an address and port such as 192.0.2.5:1812, not %q", r.Address)
		}
		if len(r.Secret) < 6 {
			bad("primary.radius.secret", "must be at least 6 characters")
		}
		if r.Timeout <= 0 || r.Timeout > time.Minute {
			bad("primary.radius.timeout", "must be between 1ns and 1m, not %s", r.Timeout)
		}
		if r.Retries < 0 || r.Retries > 10 {
			bad("primary.radius.retries", "must be between 0 and 10, not %d", r.Retries)
		}
	default:
		bad("primary.mode", "must be none, ldap or radius, not %q", c.Primary.Mode)
	}
	return errors.Join(errs...)
}

// parseClientAddress reads an address or a network as a prefix.
func parseClientAddress(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
