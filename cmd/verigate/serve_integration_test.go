package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/testbuf"
)

// waitFor polls out until re matches, and returns the first submatch.
func waitFor(t *testing.T, out *testbuf.Buffer, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %v in output:\n%s", re, out.String())
	return ""
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startDevServe runs `verigate serve --dev` in-process on addr (a free
// port if empty) until the test ends.
func startDevServe(t *testing.T, addr string, args ...string) (base, key string, stdout *testbuf.Buffer) {
	t.Helper()
	if addr == "" {
		addr = freeAddr(t)
	}
	stdout = &testbuf.Buffer{}
	stderr := &testbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"serve", "--dev", "--http", addr}, args...), stdout, stderr) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve log:\n%s", stderr.String())
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve ended with %v\n%s", err, stderr.String())
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not shut down on cancel")
		}
	})
	key = waitFor(t, stdout, regexp.MustCompile(`development API key \(tenant dev\): (\S+)`))
	base = "http://" + addr
	for range 100 {
		if res, err := http.Get(base + "/healthz"); err == nil {
			res.Body.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return base, key, stdout
}

func call(t *testing.T, method, url, key, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: decode: %v", method, url, err)
	}
	return res.StatusCode, out
}

// TestServeDevSMSFlow is the README's walk-through: start, the console line
// carries the code, a wrong code leaves 4 attempts, the right one approves,
// and the same code again is 409 not_pending.
func TestServeDevSMSFlow(t *testing.T) {
	base, key, stdout := startDevServe(t, "")

	status, v := call(t, "POST", base+"/v1/verifications", key, `{"to":"+4915123456789","channel":"sms"}`)
	if status != http.StatusCreated || v["status"] != "pending" {
		t.Fatalf("start: %d %v", status, v)
	}
	id := v["id"].(string)
	code := waitFor(t, stdout, regexp.MustCompile(`sms to=\+49151\*+789 body=Your Verigate verification code is (\d{6})\.`))

	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	status, c := call(t, "POST", base+"/v1/verifications/"+id+"/check", key, fmt.Sprintf(`{"code":%q}`, wrong))
	if status != http.StatusOK || c["status"] != "pending" || c["attempts_left"] != float64(4) {
		t.Fatalf("wrong code: %d %v", status, c)
	}
	status, c = call(t, "POST", base+"/v1/verifications/"+id+"/check", key, fmt.Sprintf(`{"code":%q}`, code))
	if status != http.StatusOK || c["status"] != "approved" {
		t.Fatalf("right code: %d %v", status, c)
	}
	status, c = call(t, "POST", base+"/v1/verifications/"+id+"/check", key, fmt.Sprintf(`{"code":%q}`, code))
	errBody, _ := c["error"].(map[string]any)
	if status != http.StatusConflict || errBody["code"] != "not_pending" || errBody["status"] != "approved" {
		t.Fatalf("second check: %d %v", status, c)
	}
	if strings.Contains(stdout.String(), "+4915123456789") {
		t.Fatal("the full number reached the output")
	}
}
