// Package redistest gives tests a real Redis: the shared one named by
// VERIGATE_TEST_REDIS_URL (what `make test` starts), or a private
// redis-server on a free loopback port for tests that stop and restart it.
//
// Tests that share a Redis run in parallel, so they isolate themselves by
// key prefix (Prefix) or unique tenants and numbers, and never FLUSHALL.
package redistest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvURL names the environment variable holding the shared test Redis.
const EnvURL = "VERIGATE_TEST_REDIS_URL"

// URL returns the shared test Redis from VERIGATE_TEST_REDIS_URL. It fails
// the test (never skips) when the variable is unset or Redis does not answer.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		t.Fatalf("redistest: %s is not set: set VERIGATE_TEST_REDIS_URL or run make test", EnvURL)
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("redistest: %s=%q: %v: set VERIGATE_TEST_REDIS_URL or run make test", EnvURL, u, err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("redistest: Redis at %s does not answer (%v): set VERIGATE_TEST_REDIS_URL or run make test", EnvURL, err)
	}
	return u
}

// Client returns a client of the shared test Redis (see URL), closed when
// the test ends.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(URL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// Prefix returns a key prefix no other test uses, so tests sharing one
// Redis never see each other's keys.
func Prefix(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "vgt" + hex.EncodeToString(b[:]) + ":"
}

// Server is a private redis-server on a loopback port, for tests that stop
// and restart Redis or count every key. It lives until the test ends.
type Server struct {
	t       testing.TB
	bin     string
	port    int
	cluster bool
	// member: a cluster node that StartClusterNodes joins to others,
	// so start leaves its slots alone.
	member bool
	dir    string

	mu  sync.Mutex
	cmd *exec.Cmd
	log bytes.Buffer
}

// StartServer starts a private redis-server (no persistence) on a free
// loopback port. It fails the test when redis-server is not installed.
func StartServer(t testing.TB) *Server { t.Helper(); return startServer(t, false) }

// StartCluster starts a private redis-server in cluster mode that serves
// every slot by itself: a one-node Redis Cluster. Like a real cluster it
// refuses a script that touches keys of two slots (CROSSSLOT), so it
// proves a key layout before it meets several nodes.
func StartCluster(t testing.TB) *Server { t.Helper(); return startServer(t, true) }

func startServer(t testing.TB, cluster bool) *Server {
	t.Helper()
	return startNode(t, cluster, false)
}

func startNode(t testing.TB, cluster, member bool) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server not found (%v): install it (apt-get install redis-server) or run make test", err)
	}
	port := freePort(t, cluster)
	s := &Server{t: t, bin: bin, port: port, dir: t.TempDir(), cluster: cluster, member: member}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// freePort finds a free loopback port. A cluster node also listens on its
// port + 10000 (the cluster bus), which redis-server refuses above 55535
// and which must be free too: the kernel's ephemeral range reaches 60999,
// so a cluster node's port is picked again until both fit.
func freePort(t testing.TB, cluster bool) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("redistest: find a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !cluster {
			l.Close()
			return port
		}
		if port > 55535 {
			l.Close()
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		l.Close()
		if err != nil {
			continue
		}
		bus.Close()
		return port
	}
	t.Fatal("redistest: no free port pair for a cluster node (port and port + 10000)")
	return 0
}

// Pid is the redis-server process's id (0 while stopped), for tests that
// measure its CPU (loadtest.CPUMeter). A restart gives a new pid.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is the server's URL: redis:// for one server, redis-cluster:// for
// a cluster (the forms store.OpenRedis takes).
func (s *Server) URL() string {
	if s.cluster {
		return "redis-cluster://" + s.Addr()
	}
	return "redis://" + s.Addr() + "/0"
}

func (s *Server) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	s.log.Reset()
	args := []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"), "--daemonize", "no"}
	if s.cluster {
		_ = os.Remove(filepath.Join(s.dir, "nodes.conf"))
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = &s.log, &s.log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: start redis-server: %v", err)
	}
	s.cmd = cmd
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := c.Ping(ctx).Err()
		if err == nil && s.cluster && !s.member {
			err = s.claimSlots(ctx, c)
		}
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.t.Fatalf("redistest: redis-server on %s did not answer: %v\n%s%s", s.Addr(), err, s.log.String(), log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// claimSlots gives the one cluster node every slot and waits until the
// cluster says ok.
func (s *Server) claimSlots(ctx context.Context, c *redis.Client) error {
	info, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return err
	}
	if strings.Contains(info, "cluster_state:ok") {
		return nil
	}
	if strings.Contains(info, "cluster_slots_assigned:0") {
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
			return err
		}
	}
	return fmt.Errorf("cluster not ok yet")
}

// Stop kills the server; its data is gone. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same port (empty, as after a crash
// without persistence).
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Client returns a client for the server, closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	t.Cleanup(func() { c.Close() })
	return c
}

// String names the server in messages.
func (s *Server) String() string { return fmt.Sprintf("redis-server %s", s.Addr()) }
