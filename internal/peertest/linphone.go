package peertest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// LinphoneOptions configures StartLinphone.
type LinphoneOptions struct {
	// User is the user part of the phone's SIP address; "linphone" if empty.
	User string
	// DTMF is how it sends keys: "rfc4733" (default) or "info" (SIP INFO).
	DTMF string
	// Registrar is the "host:port" it registers to (a Kamailio's Addr, or
	// its TLSAddr with Transport "tls"), as User with Password. Empty: it
	// does not register and is reached directly at Addr.
	Registrar, Password string
	// Transport is "udp" (default), "tcp" or "tls", towards the registrar.
	Transport string
	// CAFile is the PEM file of CAs it trusts for tls (Certs.CAFile).
	CAFile string
}

// Linphone is a running linphone-daemon (Debian package linphone-cli,
// liblinphone 5.1) answering calls by itself on loopback over UDP, driven
// through its command socket. It has no sound card: it sends what
// liblinphone sends without one, and it was seen to send stray RTP with
// payload type 1 besides the negotiated ones.
type Linphone struct {
	// Addr is "127.0.0.1:<port>", its SIP listener (UDP).
	Addr string
	// AOR is its address, e.g. "sip:linphone@127.0.0.1:5060".
	AOR string

	proc *process
	mu   sync.Mutex // one command at a time on conn
	conn net.Conn
	r    *bufio.Reader
}

// StartLinphone writes a linphonerc into a temporary directory and runs
// linphone-daemon with --auto-answer on a free loopback port. liblinphone
// binds its SIP port only when $HOME/.local/share/linphone exists, so the
// daemon gets its own HOME there. It is killed on cleanup and its log
// printed if the test failed.
func StartLinphone(t testing.TB, opts LinphoneOptions) *Linphone {
	t.Helper()
	bin := RequireBinary(t, "linphone-daemon", "linphone-cli")
	user := opts.User
	if user == "" {
		user = "linphone"
	}
	info := "0"
	rfc := "1"
	switch opts.DTMF {
	case "", "rfc4733":
	case "info":
		info, rfc = "1", "0"
	default:
		t.Fatalf("peertest: linphone dtmf %q: want rfc4733 or info", opts.DTMF)
	}
	transport := opts.Transport
	if transport == "" {
		transport = "udp"
	}
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(filepath.Join(home, ".local", "share", "linphone"), 0o700); err != nil {
		t.Fatalf("peertest: %v", err)
	}
	port := FreeUDPPort(t)
	rtp := FreeUDPPort(t)
	l := &Linphone{
		Addr: net.JoinHostPort(Loopback, strconv.Itoa(port)),
	}
	l.AOR = "sip:" + user + "@" + l.Addr
	rc := strings.Join([]string{
		"# Written by peertest: a headless auto-answering linphone.",
		"[sip]",
		"bind_address=" + Loopback,
		"sip_port=" + strconv.Itoa(port),
		// 0 disables; -1 picks a free port (for the connections it dials).
		"sip_tcp_port=" + streamPort(transport, "tcp"),
		"sip_tls_port=" + streamPort(transport, "tls"),
		"root_ca=" + opts.CAFile,
		"verify_server_certs=" + boolDigit(opts.CAFile != ""),
		"verify_server_cn=0",
		"default_proxy=-1",
		"contact=\"" + user + "\" <sip:" + user + "@" + Loopback + ">",
		"use_info=" + info,
		"use_rfc2833=" + rfc,
		"guess_hostname=0",
		"register_only_when_network_is_up=0",
		"[rtp]",
		"audio_rtp_port=" + strconv.Itoa(rtp),
		"audio_jitt_comp=60",
		"[net]",
		"nat_policy_ref=",
		"firewall_policy=0",
		"ipv6=0",
		"[sound]",
		"echocancellation=0",
		"[video]",
		"enabled=0",
		"capture=0",
		"display=0",
		"[misc]",
		"enable_video=0",
		"",
	}, "\n")
	rcPath := writeFile(t, dir, "linphonerc", []byte(rc))
	// --pipe takes a name, not a path: the socket is /tmp/<name>.
	pipe := fmt.Sprintf("peertest-linphone-%d-%d", os.Getpid(), port)
	sock := filepath.Join("/tmp", pipe)
	t.Cleanup(func() { os.Remove(sock) })
	l.proc = startProcessEnv(t, "linphone-daemon", dir, []string{"HOME=" + home},
		bin, "--config", rcPath, "--pipe", pipe, "--auto-answer", "--disable-stats-events")
	// Generous bounds: linphone-daemon takes seconds to start on a busy
	// machine, and a ready daemon ends the wait at once.
	err := l.proc.waitUntil(30*time.Second, func() error {
		c, err := net.DialTimeout("unix", sock, 300*time.Millisecond)
		if err != nil {
			return err
		}
		l.conn, l.r = c, bufio.NewReader(c)
		return nil
	})
	if err != nil {
		t.Fatalf("peertest: linphone-daemon command socket: %v", err)
	}
	t.Cleanup(func() { l.conn.Close() })
	if err := l.proc.waitUntil(30*time.Second, func() error { return udpBound(l.Addr) }); err != nil {
		t.Fatalf("peertest: linphone-daemon sip port %s: %v", l.Addr, err)
	}
	if opts.Registrar != "" {
		// The AOR names the registrar with its port, and so do the GRUUs
		// it hands out: kamailio knows them as its own (uri==myself).
		l.AOR = "sip:" + user + "@" + opts.Registrar
		cmd := fmt.Sprintf("register %s sip:%s;transport=%s %s %s NULL",
			l.AOR, opts.Registrar, transport, opts.Password, user)
		if _, err := l.Command(cmd, 5*time.Second); err != nil {
			t.Fatalf("peertest: %v", err)
		}
	}
	return l
}

// WaitRegistered waits up to timeout until the registrar accepted it.
func (l *Linphone) WaitRegistered(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, _ := l.Command("register-status ALL", time.Second)
		if strings.Contains(out, "LinphoneRegistrationOk") {
			return nil
		}
		if strings.Contains(out, "LinphoneRegistrationFailed") || time.Now().After(deadline) {
			return fmt.Errorf("linphone not registered within %s: %s", timeout, strings.TrimSpace(out))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Hangup ends the current call with a BYE.
func (l *Linphone) Hangup() error {
	_, err := l.Command("terminate", 5*time.Second)
	return err
}

func streamPort(transport, want string) string {
	if transport == want {
		return "-1"
	}
	return "0"
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// udpBound reports errNotReady while addr can still be bound (nobody listens).
func udpBound(addr string) error {
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil
	}
	u.Close()
	return errNotReady
}

// Log returns what linphone-daemon has printed so far.
func (l *Linphone) Log() string { return l.proc.log.String() }

// Command sends one command line to the daemon and returns its answer
// (the "Status: ..." line and what follows it, up to a short pause), or an
// error when the status is not Ok.
func (l *Linphone) Command(cmd string, timeout time.Duration) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := fmt.Fprintf(l.conn, "%s\n", cmd); err != nil {
		return "", err
	}
	var b strings.Builder
	deadline := time.Now().Add(timeout)
	for {
		// The daemon writes an answer in one go: once its first line came,
		// a short pause ends it.
		wait := deadline
		if b.Len() > 0 {
			wait = time.Now().Add(100 * time.Millisecond)
		}
		_ = l.conn.SetReadDeadline(wait)
		line, err := l.r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			if b.Len() == 0 {
				return "", fmt.Errorf("linphone %q: %w", cmd, err)
			}
			break
		}
	}
	out := b.String()
	if !strings.HasPrefix(out, "Status: Ok") {
		return out, fmt.Errorf("linphone %q: %s", cmd, strings.TrimSpace(out))
	}
	return out, nil
}

// WaitCall waits up to timeout until a call runs (its streams started).
func (l *Linphone) WaitCall(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, _ := l.Command("call-status", time.Second)
		if strings.Contains(out, "StreamsRunning") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("linphone: no call running within %s (last status %q)", timeout, strings.TrimSpace(out))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitIdle waits up to timeout until no call is left.
func (l *Linphone) WaitIdle(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, _ := l.Command("call-status", time.Second)
		if strings.Contains(out, "No current call") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("linphone: call still there after %s (status %q)", timeout, strings.TrimSpace(out))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Press sends keys on the current call, one at a time with a short gap
// so each is its own event.
func (l *Linphone) Press(keys string) error {
	for i, k := range keys {
		if i > 0 {
			time.Sleep(300 * time.Millisecond)
		}
		if _, err := l.Command("dtmf "+string(k), 5*time.Second); err != nil {
			return err
		}
	}
	return nil
}
