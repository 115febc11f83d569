package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/internal/testbuf"
	"github.com/verigate/verigate/internal/twiliotest"
)

// binary is the gateway built once for every start of this package's
// tests (TestMain removes it).
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "verigate-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "verigate")
	// As the Dockerfile builds it: static, no cgo.
	build := exec.Command("go", "build", "-trimpath", "-o", binary, "../cmd/verigate")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// shipped is one deployment as its files start the gateway: the arguments
// after the binary (whose --config names the file as the deployment
// mounts it), that file in the repository, and the environment.
type shipped struct {
	args   []string
	config string // the file --config names, as the test reads it
	env    map[string]string
}

// started is a gateway the test runs.
type started struct {
	cmd            *exec.Cmd
	base           string
	stdout, stderr *testbuf.Buffer
	exited         chan struct{}
	waitErr        error
}

// startShipped runs the built binary with the deployment's arguments and
// exactly its environment, changing only addresses: the HTTP listener, the
// SIP listener and trunk go to loopback, Redis is the test's, Twilio is a
// fake. It checks that the gateway answers /readyz, uses the providers the
// deployment configures (an SMS through Twilio; with no Twilio, an SMS
// refused and no code printed; an OPTIONS probe at the trunk), then that
// SIGTERM ends it cleanly.
func startShipped(t *testing.T, d shipped) {
	t.Helper()
	env := map[string]string{}
	for k, v := range d.env {
		env[k] = v
	}
	addr := freeTCP(t)
	env["VERIGATE_HTTP_ADDR"] = addr
	env["VERIGATE_REDIS_URL"] = redistest.URL(t)

	var fake *twiliotest.Server
	if sid := env["VERIGATE_TWILIO_ACCOUNT_SID"]; sid != "" {
		fake = twiliotest.New(twiliotest.Config{AccountSID: sid, AuthToken: env["VERIGATE_TWILIO_AUTH_TOKEN"]})
		t.Cleanup(fake.Close)
		env["VERIGATE_TWILIO_BASE_URL"] = fake.URL
		env["VERIGATE_PUBLIC_URL"] = "http://" + addr
	}
	// A trunk in the file: the SIP listener and the trunk on loopback,
	// the trunk a UDP socket that hears the gateway's OPTIONS probes.
	var trunk net.PacketConn
	if data, err := os.ReadFile(d.config); err != nil {
		t.Fatal(err)
	} else if bytes.Contains(data, []byte("trunks:\n")) && !bytes.Contains(data, []byte("trunks: []")) {
		env["VERIGATE_SIP_LISTEN"] = freeUDP(t)
		trunk, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { trunk.Close() })
		env["VERIGATE_SIP_TRUNKS_0_ADDRESS"] = trunk.LocalAddr().String()
	}

	args := slicesReplaceConfig(t, d.args, d.config)
	s := &started{cmd: exec.Command(binary, args...), base: "http://" + addr,
		stdout: &testbuf.Buffer{}, stderr: &testbuf.Buffer{}, exited: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	s.cmd.Env = envList(env) // nothing of the test's own environment
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
		if t.Failed() {
			t.Logf("gateway stderr:\n%s", s.stderr.String())
		}
	})
	s.waitReady(t)

	key := firstKey(t, env["VERIGATE_API_KEYS"])
	to := fmt.Sprintf("+49151%08d", rand.IntN(1e8)) // a fresh number: no limit from earlier runs
	status, body := s.post(t, key, `{"to":"`+to+`","channel":"sms"}`)
	switch {
	case fake != nil:
		if status != http.StatusCreated {
			t.Fatalf("start SMS: %d %s", status, body)
		}
		if got := len(fake.MessagesTo(to)); got != 1 {
			t.Fatalf("the fake Twilio got %d messages to the number, want 1", got)
		}
	default:
		// No Twilio: sms.provider none, a calls-only gateway.
		if status != http.StatusUnprocessableEntity || !strings.Contains(body, "unsupported_number") {
			t.Fatalf("start SMS with no SMS provider: %d %s, want 422 unsupported_number", status, body)
		}
	}
	if strings.Contains(s.stdout.String(), "sms to=") {
		t.Fatal("the console provider printed a message (and its code)")
	}
	if trunk != nil {
		_ = trunk.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 4096)
		n, _, err := trunk.ReadFrom(buf)
		if err != nil || !bytes.HasPrefix(buf[:n], []byte("OPTIONS sip:")) {
			t.Fatalf("the trunk heard no OPTIONS probe: %v %q", err, buf[:n])
		}
	}
	s.checkNoWritableExec(t)

	// Kubernetes and systemd stop it with SIGTERM: it drains and exits 0.
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
		if s.waitErr != nil {
			t.Fatalf("after SIGTERM: %v", s.waitErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30 s of SIGTERM (the grace the deployments give)")
	}
}

// waitReady polls /readyz until it answers 200; it fails when the gateway
// exits first or takes over a minute (a loaded machine).
func (s *started) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-s.exited:
			t.Fatalf("the gateway exited at start: %v\n%s", s.waitErr, s.stderr.String())
		default:
		}
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not answer 200 within a minute (last: %v %v)", resp, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *started) post(t *testing.T, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.base+"/v1/verifications", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, string(out)
}

// checkNoWritableExec reads the running gateway's memory map: no mapping
// may be writable and executable at once, or the systemd unit's
// MemoryDenyWriteExecute=yes would break it.
func (s *started) checkNoWritableExec(t *testing.T) {
	t.Helper()
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(maps), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.Contains(f[1], "w") && strings.Contains(f[1], "x") {
			t.Errorf("a writable and executable mapping: %s", line)
		}
	}
}

// slicesReplaceConfig returns args with --config's value replaced by file.
func slicesReplaceConfig(t *testing.T, args []string, file string) []string {
	t.Helper()
	out := append([]string(nil), args...)
	for i, a := range out {
		if a == "--config" && i+1 < len(out) {
			out[i+1] = file
			return out
		}
	}
	t.Fatalf("args %q name no --config", args)
	return nil
}

func firstKey(t *testing.T, keys string) string {
	t.Helper()
	first, _, _ := strings.Cut(keys, ",")
	_, key, ok := strings.Cut(first, ":")
	if !ok {
		t.Fatalf("VERIGATE_API_KEYS %q: want tenant:key", keys)
	}
	return key
}

func envList(env map[string]string) []string {
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func freeTCP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func freeUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// readEnvFile reads KEY=VALUE lines as systemd's EnvironmentFile= and
// compose's env_file do (comments and blank lines skipped, no quoting in
// these files).
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`).MatchString(k) || strings.ContainsAny(v, `"'`) {
			t.Fatalf("%s:%d: not KEY=VALUE without quotes: %q", path, i+1, line)
		}
		env[k] = v
	}
	return env
}
