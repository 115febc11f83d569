package peertest

import (
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// SippOptions configures RunSipp.
type SippOptions struct {
	// Scenario is the scenario file (e.g. from Scenario()).
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

// Sipp is one sipp run placing a single call.
type Sipp struct {
	proc *process
	dir  string
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
	dir := t.TempDir()
	args := []string{
		o.Target, "-sf", o.Scenario, "-m", "1", "-nostdin",
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
		return fmt.Errorf("sipp: %v\n%s\n%s", s.proc.err, s.proc.log.String(), s.Messages())
	}
	return nil
}

// Messages returns the SIP messages sipp sent and received.
func (s *Sipp) Messages() string {
	b, _ := readFileString(filepath.Join(s.dir, "messages.log"))
	return b
}
