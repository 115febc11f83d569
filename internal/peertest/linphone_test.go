package peertest

import (
	"strings"
	"testing"
	"time"
)

// TestLinphoneListens: the daemon binds its SIP port (it does not without
// its own $HOME/.local/share/linphone) and answers on its command socket.
func TestLinphoneListens(t *testing.T) {
	l := StartLinphone(t, LinphoneOptions{})
	if err := l.proc.waitUntil(5*time.Second, func() error { return sipOptionsProbe(l.Addr) }); err != nil {
		t.Fatalf("linphone at %s does not answer SIP: %v", l.Addr, err)
	}
	out, err := l.Command("call-status", 5*time.Second)
	if err == nil || !strings.Contains(out, "No current call") {
		t.Fatalf("call-status without a call: %q, %v", out, err)
	}
}
