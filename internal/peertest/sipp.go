package peertest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SippOptions configures RunSipp.
type SippOptions struct {
	// Scenario is the scenario file (e.g. from Scenario()); a relative path
	// is from the test's package directory.
	Scenario string
	// Target is the "host:port" to send the first request to.
	Target string
	// Service is the Request-URI user (sipp -s).
	Service string
	// FromUser is the From user (keyword from_user in the scenarios here).
	FromUser string
	// AuthUser and Password answer digest challenges (-au, -ap).
	AuthUser, Password string
	// Transport is "udp" (default) or "tcp".
	Transport string
	// Timeout bounds the whole run; 30 s if zero.
	Timeout time.Duration
}

// Sipp is one sipp run: a caller placing a single call (StartSipp) or a
// phone answering calls (StartSippUAS).
type Sipp struct {
	// Addr is "127.0.0.1:<port>", where a phone started by StartSippUAS
	// takes calls (UDP); empty for a caller.
	Addr string

	proc *process
	dir  string
}

// SippUASOptions configures StartSippUAS.
type SippUASOptions struct {
	// Scenario is the scenario file of a phone (it starts by receiving an
	// INVITE); a relative path is from the test's package directory, e.g.
	// "testdata/uas.xml".
	Scenario string
	// Calls is how many calls sipp takes before it exits (-m); 1 if zero.
	Calls int
	// Duration is sipp's -d, the length of the scenario's <pause /> without
	// a length of its own (uas_press_pound.xml's wait before the key);
	// sipp's default (0) if zero.
	Duration time.Duration
	// Timeout bounds the whole run (-timeout with -timeout_error: sipp
	// ends failed when it passes); 30 s if zero.
	Timeout time.Duration
}

// Scenario returns the path of a scenario in this package's testdata:
// uac_auth.xml (authenticating caller that plays A-law audio and hangs
// up), uac_auth_rejected_407.xml and uac_auth_rejected_403.xml (a caller
// whose credentials are refused with a fresh challenge or with 403).
func Scenario(t testing.TB, name string) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("peertest: cannot locate testdata")
	}
	return filepath.Join(filepath.Dir(file), "testdata", name)
}

// StartSipp runs sipp in the background placing one call (-m 1) from a
// free loopback port. Wait reports how it ended.
func StartSipp(t testing.TB, o SippOptions) *Sipp {
	t.Helper()
	bin := RequireBinary(t, "sipp", "sip-tester")
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	transport := "u1"
	if o.Transport == "tcp" {
		transport = "t1"
	}
	from := o.FromUser
	if from == "" {
		from = "sipp"
	}
	// sipp runs in its own directory.
	scenario, err := filepath.Abs(o.Scenario)
	if err != nil {
		t.Fatalf("peertest: sipp scenario: %v", err)
	}
	dir := t.TempDir()
	args := []string{
		o.Target, "-sf", scenario, "-m", "1", "-nostdin",
		"-i", Loopback, "-mi", Loopback,
		"-p", strconv.Itoa(FreePort(t)), "-mp", strconv.Itoa(FreeUDPPort(t)),
		"-t", transport, "-s", o.Service, "-key", "from_user", from,
		"-timeout", strconv.Itoa(int(timeout.Seconds())) + "s", "-timeout_error",
		"-max_retrans", "5", "-trace_msg", "-message_file", filepath.Join(dir, "messages.log"),
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
	}
	if o.AuthUser != "" {
		args = append(args, "-au", o.AuthUser, "-ap", o.Password)
	}
	if _, _, err := net.SplitHostPort(o.Target); err != nil {
		t.Fatalf("peertest: sipp target %q: %v", o.Target, err)
	}
	return &Sipp{proc: startProcess(t, "sipp", dir, bin, args...), dir: dir}
}

// StartSippUAS runs sipp in the background as a phone that answers by
// its scenario on a free loopback port (UDP, Addr) and waits until it
// has bound that port. Its media port is free too and its SDP names
// 127.0.0.1. Its message and error traces go to a temporary directory
// (Messages); it is killed on cleanup. Wait reports whether every call
// followed the scenario.
func StartSippUAS(t testing.TB, o SippUASOptions) *Sipp {
	t.Helper()
	bin := RequireBinary(t, "sipp", "sip-tester")
	if o.Scenario == "" {
		t.Fatal("peertest: sipp needs a Scenario")
	}
	// sipp runs in its own directory.
	scenario, err := filepath.Abs(o.Scenario)
	if err != nil {
		t.Fatalf("peertest: sipp scenario: %v", err)
	}
	calls := o.Calls
	if calls == 0 {
		calls = 1
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	dir := t.TempDir()
	port := FreeUDPPort(t)
	args := []string{
		"-sf", scenario, "-m", strconv.Itoa(calls), "-nostdin",
		"-i", Loopback, "-mi", Loopback,
		"-p", strconv.Itoa(port), "-mp", strconv.Itoa(FreeUDPPort(t)),
		"-timeout", strconv.Itoa(int(timeout.Seconds())) + "s", "-timeout_error",
		"-trace_msg", "-message_file", filepath.Join(dir, "messages.log"),
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
	}
	if o.Duration > 0 {
		args = append(args, "-d", strconv.FormatInt(o.Duration.Milliseconds(), 10))
	}
	s := &Sipp{Addr: net.JoinHostPort(Loopback, strconv.Itoa(port)), proc: startProcess(t, "sipp", dir, bin, args...), dir: dir}
	// Read from /proc/net/udp, so the check itself never takes the port;
	// sipp starts slowly on a loaded machine.
	bound := fmt.Sprintf("%08X:%04X ", loopbackHex, port)
	err = s.proc.waitUntil(20*time.Second, func() error {
		data, err := os.ReadFile("/proc/net/udp")
		if err != nil {
			return err
		}
		if !strings.Contains(string(data), bound) {
			return errNotReady
		}
		return nil
	})
	if err != nil {
		t.Fatalf("peertest: sipp did not bind %s: %v\n%s", s.Addr, err, s.proc.log.String())
	}
	return s
}

// loopbackHex is 127.0.0.1 as /proc/net/udp prints it (little-endian).
const loopbackHex = 0x0100007F

// Wait waits up to d for sipp to finish and returns nil when its call
// followed the scenario (exit status 0), otherwise an error carrying its
// SIP message trace.
func (s *Sipp) Wait(d time.Duration) error {
	select {
	case <-s.proc.done:
	case <-time.After(d):
		s.proc.stop()
		return fmt.Errorf("sipp did not finish within %s", d)
	}
	if s.proc.err != nil {
		errs, _ := readFileString(filepath.Join(s.dir, "errors.log"))
		return fmt.Errorf("sipp: %v\n%s\n%s\n%s", s.proc.err, tail(s.proc.log.String(), 4000), errs, tail(s.Messages(), 8000))
	}
	return nil
}

// tail is the end of s, at most n bytes: sipp repeats its screen.
func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// Messages returns the SIP messages sipp sent and received.
func (s *Sipp) Messages() string {
	b, _ := readFileString(filepath.Join(s.dir, "messages.log"))
	return b
}
