package sip

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/verigate/verigate/sip/media"
	"github.com/verigate/verigate/verify"
)

// Config is the sip section of Verigate's configuration. The config
// package embeds it under `sip`; every scalar key is also the environment
// variable VERIGATE_SIP_<KEY> (trunks come only from YAML).
type Config struct {
	// Listen is where the user agent receives SIP (UDP and TCP) and the
	// address its outbound INVITEs leave from, so a trunk that admits
	// calls by source address sees the same port it would answer to.
	Listen string `yaml:"listen"`
	// PublicAddress is the host (or host:port) written into Contact and
	// SDP when the gateway sits behind NAT. Empty: the listen address, or
	// the local address that routes to the trunk when listening on 0.0.0.0.
	PublicAddress string `yaml:"public_address"`
	// RTPPorts is the UDP port range for media, "first-last".
	RTPPorts string `yaml:"rtp_ports"`
	// DefaultTrunk takes the calls whose route names no trunk.
	DefaultTrunk string `yaml:"default_trunk"`
	// Trunks are the PBXs and SIP trunks calls can go to.
	Trunks []Trunk `yaml:"trunks"`
	// TLSCA is a PEM file of CA certificates trusted, besides the system's
	// roots, for trunks reached over tls (a PBX with a private CA).
	TLSCA string `yaml:"tls_ca"`
	// RequireTrunk makes /readyz fail while a trunk with keepalive is not
	// answering or a trunk with register is not registered. Off by
	// default: SMS still works when a trunk is down, so the gateway stays
	// ready and the trunk's state goes to the log.
	RequireTrunk bool `yaml:"require_trunk"`
	// RingTimeout CANCELs a call not answered in time (no_answer);
	// DefaultRingLimit if 0. A trunk or PBX that gives up sooner answers
	// 480 or 408 itself, which is no_answer too.
	RingTimeout time.Duration `yaml:"ring_timeout"`
}

// Trunk is one PBX or SIP trunk.
type Trunk struct {
	Name string `yaml:"name"`
	// Address is host[:port] of the PBX; the port defaults to 5060 (5061 for tls).
	Address string `yaml:"address"`
	// Transport is udp (default), tcp or tls.
	Transport string `yaml:"transport"`
	// Username and Password answer digest challenges (401 and 407).
	Username string `yaml:"username"`
	Password string `yaml:"password" secret:"true"`
	// FromUser is the user part of the From URI (the account on the PBX);
	// Username when empty, "verigate" when both are.
	FromUser string `yaml:"from_user"`
	// CallerID is the display name shown to the person called.
	CallerID string `yaml:"caller_id"`
	// Dial rewrites the E.164 number into the Request-URI user the PBX
	// expects; see Rewrite. Default "+{e164}".
	Dial string `yaml:"dial"`
	// DTMF is where the trunk hands over key presses: rfc4733, info,
	// inband or auto (default). With info or inband the SDP offer carries
	// no telephone-event, so the PBX does not switch to RFC 4733.
	DTMF string `yaml:"dtmf"`
	// Register keeps the gateway registered at the trunk (REGISTER with
	// digest, refreshed before expiry, retried after a failure).
	Register bool `yaml:"register"`
	// KeepAlive is the interval of OPTIONS probes to the trunk; 0 sends none.
	KeepAlive time.Duration `yaml:"keepalive"`
}

// Defaults for Config.
const (
	DefaultListen    = "0.0.0.0:5060"
	DefaultRTPPorts  = "20000-20999"
	DefaultDial      = "+{e164}"
	DefaultRingLimit = 45 * time.Second
)

// DefaultConfig returns the sip section with its defaults and no trunk.
func DefaultConfig() Config {
	return Config{Listen: DefaultListen, RTPPorts: DefaultRTPPorts}
}

// Trunk returns the trunk called name, or the default trunk when name is
// empty. ErrNoTrunk if there is none.
func (c Config) Trunk(name string) (Trunk, error) {
	if name == "" {
		name = c.DefaultTrunk
	}
	if name == "" && len(c.Trunks) == 1 {
		return c.Trunks[0].withDefaults(), nil
	}
	for _, t := range c.Trunks {
		if t.Name == name {
			return t.withDefaults(), nil
		}
	}
	return Trunk{}, fmt.Errorf("%w: %q", ErrNoTrunk, name)
}

// ErrNoTrunk means a call named a trunk that is not configured.
var ErrNoTrunk = errors.New("no such sip trunk")

func (t Trunk) withDefaults() Trunk {
	if t.Transport == "" {
		t.Transport = "udp"
	}
	t.Transport = strings.ToLower(t.Transport)
	if t.Dial == "" {
		t.Dial = DefaultDial
	}
	if mode, err := media.ParseDTMFMode(t.DTMF); err == nil {
		t.DTMF = string(mode)
	}
	if t.FromUser == "" {
		t.FromUser = t.Username
	}
	if t.FromUser == "" {
		t.FromUser = "verigate"
	}
	if _, _, err := net.SplitHostPort(t.Address); err != nil {
		port := "5060"
		if t.Transport == "tls" {
			port = "5061"
		}
		t.Address = net.JoinHostPort(strings.Trim(t.Address, "[]"), port)
	}
	return t
}

// Validate reports every invalid setting, each naming its key
// (sip.trunks[1].transport: ...).
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("sip.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, _, err := splitHostPort(c.Listen); err != nil {
		bad("listen", "must be host:port such as 0.0.0.0:5060, not %q", c.Listen)
	}
	if c.PublicAddress != "" {
		host := c.PublicAddress
		if h, _, err := net.SplitHostPort(c.PublicAddress); err == nil {
			host = h
		}
		if host == "" || strings.ContainsAny(host, " /") || net.ParseIP(host).IsUnspecified() {
			bad("public_address", "must be a host or host:port reachable by the trunk, not %q", c.PublicAddress)
		}
	}
	if _, _, err := checkPortRange(c.RTPPorts); err != nil {
		bad("rtp_ports", "%v", err)
	}
	if c.RingTimeout < 0 || c.RingTimeout > 0 && c.RingTimeout < time.Second {
		bad("ring_timeout", "must be 0 (the default, %s) or at least 1s, not %s", DefaultRingLimit, c.RingTimeout)
	}
	names := map[string]bool{}
	for i, t := range c.Trunks {
		key := fmt.Sprintf("trunks[%d]", i)
		switch {
		case t.Name == "":
			bad(key+".name", "must not be empty")
		case names[t.Name]:
			bad(key+".name", "%q is used by another trunk", t.Name)
		}
		names[t.Name] = true
		if t.Address == "" {
			bad(key+".address", "must not be empty")
		} else if _, _, err := splitHostPort(t.withDefaults().Address); err != nil {
			bad(key+".address", "must be host or host:port, not %q", t.Address)
		}
		switch strings.ToLower(t.Transport) {
		case "", "udp", "tcp", "tls":
		default:
			bad(key+".transport", "must be udp, tcp or tls, not %q", t.Transport)
		}
		if t.Password != "" && t.Username == "" {
			bad(key+".username", "must be set when a password is")
		}
		if t.Username != "" && t.Password == "" {
			bad(key+".password", "must be set when a username is (VERIGATE_SIP_... or the YAML file)")
		}
		if t.Dial != "" {
			if err := validDial(t.Dial); err != nil {
				bad(key+".dial", "%v", err)
			}
		}
		if _, err := media.ParseDTMFMode(t.DTMF); err != nil {
			bad(key+".dtmf", "must be rfc4733, info, inband or auto, not %q", t.DTMF)
		}
		if t.KeepAlive < 0 || t.KeepAlive > 0 && t.KeepAlive < time.Second {
			bad(key+".keepalive", "must be 0 (off) or at least 1s, not %s", t.KeepAlive)
		}
	}
	if c.DefaultTrunk != "" && !names[c.DefaultTrunk] {
		bad("default_trunk", "names no configured trunk: %q", c.DefaultTrunk)
	}
	return errors.Join(errs...)
}

func splitHostPort(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 || host == "" && port == 0 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return host, port, nil
}

// checkPortRange checks "first-last"; the media layer allocates from it.
func checkPortRange(s string) (first, last int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("must be first-last such as 20000-20999, not %q", s)
	}
	first, err1 := strconv.Atoi(strings.TrimSpace(a))
	last, err2 := strconv.Atoi(strings.TrimSpace(b))
	switch {
	case err1 != nil || err2 != nil:
		return 0, 0, fmt.Errorf("must be first-last such as 20000-20999, not %q", s)
	case first < 1024 || last > 65535 || first > last:
		return 0, 0, fmt.Errorf("must lie within 1024-65535 with first <= last, not %q", s)
	case last-first < 1:
		return 0, 0, fmt.Errorf("must hold at least two ports (RTP and RTCP), not %q", s)
	}
	return first, last, nil
}

// The placeholders of a dial string.
var dialFields = []string{"{e164}", "{e164_digits}", "{national}", "{nsn}"}

func validDial(d string) error {
	rest, n := d, 0
	for _, f := range dialFields {
		n += strings.Count(rest, f)
		rest = strings.ReplaceAll(rest, f, "")
	}
	if n != 1 {
		return fmt.Errorf("must hold exactly one of {e164}, {e164_digits}, {national} or {nsn}, not %q", d)
	}
	for _, r := range rest {
		if !(r >= '0' && r <= '9' || r == '+' || r == '*' || r == '#') {
			return fmt.Errorf("may add only digits, +, * and # around the number, not %q in %q", r, d)
		}
	}
	return nil
}

// Rewrite turns an E.164 number into the dial string of template:
//
//	{e164}, {e164_digits}  the number's digits without +   4915123456789
//	{national}             national format, digits only    015123456789
//	{nsn}                  national significant number     15123456789
//
// Everything else in the template is kept, so "+{e164}" dials
// +4915123456789, "00{e164_digits}" dials 004915123456789 and a PBX's
// outside-line prefix is "9{national}". An empty template is "+{e164}".
func Rewrite(template, e164 string) (string, error) {
	if template == "" {
		template = DefaultDial
	}
	if err := validDial(template); err != nil {
		return "", err
	}
	digits := strings.TrimPrefix(e164, "+")
	if !strings.HasPrefix(e164, "+") || len(digits) < 4 || len(digits) > 15 || strings.Trim(digits, "0123456789") != "" {
		return "", fmt.Errorf("rewrite: not an E.164 number: %q", verify.MaskNumber(e164))
	}
	out := strings.NewReplacer("{e164}", digits, "{e164_digits}", digits).Replace(template)
	if strings.Contains(out, "{national}") || strings.Contains(out, "{nsn}") {
		num, err := phonenumbers.Parse(e164, "")
		if err != nil {
			return "", fmt.Errorf("rewrite %s: %w", verify.MaskNumber(e164), err)
		}
		national := onlyDigits(phonenumbers.Format(num, phonenumbers.NATIONAL))
		nsn := phonenumbers.GetNationalSignificantNumber(num)
		out = strings.NewReplacer("{national}", national, "{nsn}", nsn).Replace(out)
	}
	return out, nil
}

func onlyDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
