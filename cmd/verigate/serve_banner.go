package main

import (
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/verigate/verigate/config"
	"github.com/verigate/verigate/sip"
)

// listening is what serve prints once it listens, so that an operator
// sees at a glance where it answers and what it sends through: each
// listener, then the providers and trunks, credentials masked.
type listening struct {
	http, admin net.Addr // admin nil when off
	gw          *gateway
	cfg         config.Config
}

func (l listening) print(w io.Writer) {
	fmt.Fprintf(w, "HTTP listening on %s\n", l.http)
	if l.gw.sip != nil {
		fmt.Fprintf(w, "SIP listening on %s (udp, tcp)\n", l.gw.sip.Addr())
	}
	if l.gw.radius != nil {
		fmt.Fprintf(w, "RADIUS listening on %s (udp)\n", l.gw.radius.Addr())
	}
	if l.admin != nil {
		fmt.Fprintf(w, "admin (pprof, metrics) listening on %s\n", l.admin)
	}
	c := l.gw.choice
	sms, call := orNone(c.sms), orNone(c.call)
	if c.loopback {
		call += " (the loopback test phone)"
	}
	fmt.Fprintf(w, "providers: sms %s, calls %s\n", sms, call)
	if tw := l.cfg.Twilio; tw.Configured() {
		fmt.Fprintf(w, "twilio: account %s\n", maskCredential(tw.AccountSID))
	}
	if !c.loopback {
		for _, t := range l.cfg.SIP.Trunks {
			fmt.Fprintf(w, "trunk %s: %s\n", t.Name, describeTrunk(t))
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// describeTrunk says where a trunk is and how the gateway signs in,
// without its password.
func describeTrunk(t sip.Trunk) string {
	parts := []string{t.Transport + " " + t.Address}
	if t.Username != "" {
		parts = append(parts, "user "+t.Username)
	}
	if t.Password != "" {
		parts = append(parts, "password ****")
	}
	if t.Register {
		parts = append(parts, "registers")
	}
	return strings.Join(parts, ", ")
}

// maskCredential keeps the first and last four characters of an
// identifier such as an account SID: enough to tell accounts apart.
func maskCredential(s string) string {
	if len(s) <= 12 {
		return "****"
	}
	return s[:4] + "…" + s[len(s)-4:]
}
