package main

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/config"
)

// TestServeDevRADIUSExample: deploy/examples/radius.yaml is what the
// README says (127.0.0.1:1812, client 127.0.0.1 with radclient's secret,
// primary none, alice in the directory), and under serve --dev radclient's
// login for alice gets Access-Accept once the built-in test phone
// pressed #. The listen address is moved to a free port so the test does
// not depend on 1812 being free.
func TestServeDevRADIUSExample(t *testing.T) {
	example := filepath.Join("..", "..", "deploy", "examples", "radius.yaml")
	cfg, err := config.Load(example, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.RADIUS
	if r.Listen != "127.0.0.1:1812" || len(r.Clients) != 1 || r.Clients[0].Address != "127.0.0.1" ||
		r.Clients[0].Secret != "testing123" || r.Primary.Mode != "none" || cfg.Directory.Static.File != "deploy/examples/radius-people.csv" {
		t.Fatalf("the example is not what the README shows: %+v", r)
	}
	radclient, err := exec.LookPath("radclient")
	if err != nil {
		t.Fatal("radclient not found: install the Debian package freeradius-utils")
	}
	t.Setenv("VERIGATE_RADIUS_LISTEN", "127.0.0.1:0")
	t.Setenv("VERIGATE_DIRECTORY_STATIC_FILE", filepath.Join("..", "..", "deploy", "examples", "radius-people.csv"))
	base, _, stdout := startDevServe(t, "", "--config", example)
	addr := waitFor(t, stdout, regexp.MustCompile(`RADIUS listening on (\S+) \(udp\)`))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, radclient, "-t", "30", "-r", "1", addr, "auth", "testing123")
	cmd.Stdin = strings.NewReader("User-Name=alice,User-Password=x,Message-Authenticator=0x00\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Received Access-Accept") {
		t.Fatalf("radclient: %v\n%s", err, out)
	}
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if want := `verigate_radius_decisions_total{code="Access-Accept",reason="approved"} 1`; !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}
