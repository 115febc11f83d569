// Package peertest starts real SIP peers from Debian packages (kamailio as a
// registrar and proxy demanding digest auth, baresip as an auto-answering
// softphone, sipp scenarios), OpenLDAP's slapd with a small directory
// (slapd.go), and FreeRADIUS with radclient as its NAS (freeradius.go,
// radclient.go) on loopback for tests, makes the throwaway
// certificates and WAV files they need, and plays a stranger at another
// loopback address that forges SIP and RTP (stranger.go).
//
// Every peer is a child process in its own process group, stopped by
// t.Cleanup; every wait is bounded. A missing binary fails the test loudly,
// never skips it: scripts/test.sh installs the packages with apt-get. When a
// test fails, the peers' logs are written to the test output.
package peertest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Loopback is the only address the peers bind to.
const Loopback = "127.0.0.1"

// RequireBinary returns the path of the executable name, failing the test
// with the package that provides it when it is missing.
func RequireBinary(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("peertest: %s not found (%v): install the Debian package %q (scripts/test.sh does so with apt-get)", name, err, debianPackage)
	}
	return p
}

// FreePort returns a loopback port that was free for both UDP and TCP a
// moment ago. SIP peers listen on both with one number.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", net.JoinHostPort(Loopback, "0"))
		if err != nil {
			t.Fatalf("peertest: free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort(Loopback, strconv.Itoa(port)))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port
	}
	t.Fatal("peertest: no port free for both UDP and TCP on loopback")
	return 0
}

// freePortWithNext returns a port like FreePort whose next port is free
// for TCP too: baresip also listens on TCP port+1 (for TLS).
func freePortWithNext(t testing.TB) int {
	t.Helper()
	for range 50 {
		port := FreePort(t)
		l, err := net.Listen("tcp", net.JoinHostPort(Loopback, strconv.Itoa(port+1)))
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("peertest: no two neighbouring ports free on loopback")
	return 0
}

// FreeUDPPort returns a loopback UDP port that was free a moment ago.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	u, err := net.ListenPacket("udp", net.JoinHostPort(Loopback, "0"))
	if err != nil {
		t.Fatalf("peertest: free udp port: %v", err)
	}
	defer u.Close()
	return u.LocalAddr().(*net.UDPAddr).Port
}

// logBuffer collects a child's output; it is safe for concurrent writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// process is a peer running as a child in its own process group.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *logBuffer
	done chan struct{} // closed when the child has exited
	err  error         // Wait's result, valid after done
}

// startProcess runs bin with args in dir, its output going to a buffer.
// t.Cleanup stops the whole process group (SIGTERM, then SIGKILL after a
// few seconds) and, if the test failed, logs what the child printed.
func startProcess(t testing.TB, name, dir, bin string, args ...string) *process {
	t.Helper()
	return startProcessEnv(t, name, dir, nil, bin, args...)
}

// startProcessEnv is startProcess with env added to the test's environment
// (later entries win, as with exec.Cmd).
func startProcessEnv(t testing.TB, name, dir string, env []string, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, log: &logBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("peertest: start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("peertest: %s log (%s %v):\n%s", name, bin, args, p.log.String())
		}
	})
	return p
}

// exited reports whether the child has ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop ends the child's process group and waits for the child.
func (p *process) stop() {
	if ok, _ := p.exited(); ok {
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// Children forked by the peer may outlive its main process.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// errNotReady is returned by readiness probes that have not succeeded yet.
var errNotReady = errors.New("not ready")

// waitUntil calls probe until it returns nil, the child exits, or d passes.
func (p *process) waitUntil(d time.Duration, probe func() error) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		if ok, err := p.exited(); ok {
			return fmt.Errorf("%s exited early: %v", p.name, err)
		}
		if last = probe(); last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s: %w", p.name, d, last)
}

// writeFile writes data to dir/name and fails the test on error.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("peertest: write %s: %v", name, err)
	}
	return path
}

func readFileString(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
