package radius

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/verigate/verigate/directory"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/route"
)

const (
	testSecret = "testing123-secret"
	aliceE164  = "+4915123456789"
)

// testPeople is the directory of the tests: alice has a mobile, bob only
// an office number.
const testPeople = `username,upn,mobile,office
alice,alice@example.com,+49 151 23456789,
bob,,,+49 30 1234567
`

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("VERIGATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testDirectory(t *testing.T) directory.Directory {
	t.Helper()
	p := filepath.Join(t.TempDir(), "people.csv")
	if err := os.WriteFile(p, []byte(testPeople), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := directory.NewStatic(directory.StaticConfig{File: p}, route.Classifier{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// testConfig is a server on a free loopback port for the NAS 127.0.0.1.
func testConfig() Config {
	return Config{
		Listen:        "127.0.0.1:0",
		Clients:       []Client{{Address: "127.0.0.1", Secret: testSecret, Name: "test-nas"}},
		AnswerTimeout: 10 * time.Second,
		Primary:       Primary{Mode: "none"},
	}
}

// startServer runs a server until the test ends.
func startServer(t *testing.T, cfg Config, opts Options) *Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	if opts.Directory == nil {
		opts.Directory = testDirectory(t)
	}
	s, err := Listen(cfg, opts)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
	})
	return s
}

// accessRequest is a PAP Access-Request for user with a fresh
// identifier and authenticator.
func accessRequest(t *testing.T, secret, user, password string, state []byte) *radius.Packet {
	t.Helper()
	p := radius.New(radius.CodeAccessRequest, []byte(secret))
	if err := rfc2865.UserName_SetString(p, user); err != nil {
		t.Fatal(err)
	}
	if err := rfc2865.UserPassword_SetString(p, password); err != nil {
		t.Fatal(err)
	}
	_ = rfc2865.NASIdentifier_SetString(p, "test-vpn")
	if state != nil {
		_ = rfc2865.State_Set(p, state)
	}
	return p
}

// signed returns p's bytes with a Message-Authenticator, as a NAS that
// follows the BlastRADIUS advice sends them.
func signed(t *testing.T, p *radius.Packet) []byte {
	t.Helper()
	b, err := encodeSigned(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nas is one UDP socket of a NAS: a fixed source port, as a NAS keeps
// while retransmitting.
type nas struct {
	conn *net.UDPConn
}

func newNAS(t *testing.T, s *Server) *nas {
	t.Helper()
	c, err := net.DialUDP("udp", nil, s.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &nas{conn: c}
}

func (n *nas) send(t *testing.T, b []byte) {
	t.Helper()
	if _, err := n.conn.Write(b); err != nil {
		t.Fatal(err)
	}
}

// read returns the next answer to request req, checked (Response
// Authenticator and Message-Authenticator) and parsed, or nil when none
// comes within d.
func (n *nas) read(t *testing.T, req []byte, secret string, d time.Duration) (*radius.Packet, []byte) {
	t.Helper()
	buf := make([]byte, MaxPacket)
	n.conn.SetReadDeadline(time.Now().Add(d))
	k, err := n.conn.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	b := buf[:k]
	if err := checkResponseAuth(b, req, []byte(secret)); err != nil {
		t.Fatalf("answer not authentic: %v", err)
	}
	p, err := radius.Parse(b, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return p, b
}

// exchange sends p signed from a new socket and returns the answer,
// failing the test when none comes within d.
func exchange(t *testing.T, s *Server, p *radius.Packet, d time.Duration) *radius.Packet {
	t.Helper()
	n := newNAS(t, s)
	b := signed(t, p)
	n.send(t, b)
	resp, _ := n.read(t, b, string(p.Secret), d)
	if resp == nil {
		t.Fatalf("no answer within %s", d)
	}
	return resp
}

// approveCalls approves every call the fake Caller places, as a person
// pressing # would, until the test ends.
func approveCalls(t *testing.T, svc *verifytest.Service) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		seen := 0
		for ctx.Err() == nil {
			calls := svc.Caller.Calls()
			for ; seen < len(calls); seen++ {
				if _, err := svc.Approve(ctx, DefaultTenant, calls[seen].VerificationID); err != nil && ctx.Err() == nil {
					t.Errorf("approve: %v", err)
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
}

// waitCalls waits until the fake Caller has placed n calls.
func waitCalls(t *testing.T, svc *verifytest.Service, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(svc.Caller.Calls()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls placed, want %d", len(svc.Caller.Calls()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
