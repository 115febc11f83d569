package redise2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/redistest"
)

// startPhone runs `verigate phone`, which answers, waits for the prompt and
// presses #, and returns its SIP address.
func startPhone(t *testing.T, rtpPorts string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binary, "phone", "--listen", "127.0.0.1:0", "--press", "#", "--ring", "100ms", "--rtp-ports", rtpPorts)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		t.Fatalf("verigate phone printed nothing: %v", sc.Err())
	}
	addr, ok := strings.CutPrefix(sc.Text(), "phone listening on ")
	addr, _, _ = strings.Cut(addr, " ")
	if !ok || addr == "" {
		t.Fatalf("verigate phone printed %q", sc.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return addr
}

// apiGet sends GET path to g with the API key.
func (g *gateway) apiGet(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	return http.DefaultClient.Do(req)
}

// TestWaitAcrossGateways: gateway b places an approve-mode call to a test
// phone over SIP on loopback, the phone presses #, and a long-poll and an
// event stream on gateway a, which shares b's Redis but places no calls,
// see the verification approved.
func TestWaitAcrossGateways(t *testing.T) {
	url := redistest.StartServer(t).URL()
	phone := startPhone(t, "32400-32449")
	cfg := filepath.Join(t.TempDir(), "b.yaml")
	yaml := "sip:\n  listen: 127.0.0.1:0\n  rtp_ports: 32450-32499\n  trunks:\n    - name: phone\n      address: " + phone + "\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startGateway(t, url)
	b := startGatewayWith(t, url, []string{"--config", cfg})

	r := b.post("/v1/verifications", map[string]string{"to": "+4915112348201", "channel": "call", "call_mode": "approve"})
	id := r.str("id")
	if r.status != http.StatusCreated || id == "" {
		t.Fatalf("start on gateway b: %d %v\n%s", r.status, r.body, b.output())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	var poll map[string]any
	var pollErr error
	wg.Go(func() {
		res, err := a.apiGet(ctx, "/v1/verifications/"+id+"?wait=60s")
		if err != nil {
			pollErr = err
			return
		}
		defer res.Body.Close()
		pollErr = json.NewDecoder(res.Body).Decode(&poll)
	})

	res, err := a.apiGet(ctx, "/v1/verifications/"+id+"/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events on gateway a: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var statuses, types []string
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var v struct {
			Status string `json:"status"`
			Events []struct {
				Type string `json:"type"`
			} `json:"events"`
		}
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			t.Fatalf("event data %q: %v", data, err)
		}
		statuses = append(statuses, v.Status)
		types = types[:0]
		for _, e := range v.Events {
			types = append(types, e.Type)
		}
	}
	// The stream ended by itself after the final status.
	if ctx.Err() != nil {
		t.Fatalf("the stream did not end: statuses %v\n%s", statuses, b.output())
	}
	if len(statuses) < 2 || statuses[0] != "pending" || statuses[len(statuses)-1] != "approved" {
		t.Fatalf("stream on gateway a saw %v, want pending first and approved last\ngateway b:\n%s", statuses, b.output())
	}
	t.Logf("stream on gateway a: statuses %v, events %v", statuses, types)
	wg.Wait()
	if pollErr != nil || poll["status"] != "approved" {
		t.Fatalf("long-poll on gateway a: %v %v, want approved", poll, pollErr)
	}
}
