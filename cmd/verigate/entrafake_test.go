package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/testbuf"
)

// TestEntraFake runs the command, reads its start page (a fresh authorize
// form aimed at the gateway) and posts the gateway's refusal back to its
// redirect_uri: the command prints the outcome.
func TestEntraFake(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut testbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"entra-fake", "--addr", "127.0.0.1:0", "--authorize-url", "http://127.0.0.1:1/entra/authorize",
			"--upn", "bob@contoso.example", "--oid", "951ddb04-b16d-45f3-bbf7-b0fa18fa7aee"}, &out, &errOut)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("entra-fake: %v (stderr %s)", err, errOut.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("entra-fake did not stop")
		}
	}()
	base := waitFor(t, &out, regexp.MustCompile(`fake Entra ID at (http://\S+)`))
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`action="http://127.0.0.1:1/entra/authorize"`, `name="id_token_hint"`, "bob@contoso.example"} {
		if !strings.Contains(string(page), want) {
			t.Fatalf("start page lacks %s:\n%s", want, page)
		}
	}
	state := regexp.MustCompile(`name="state" value="([^"]+)"`).FindStringSubmatch(string(page))
	if state == nil {
		t.Fatalf("no state in:\n%s", page)
	}
	for _, want := range []string{"tenant id", "client id", "redirect_uri  " + base + "/common/federation/externalauthprovider",
		"discovery http://127.0.0.1:1/entra/.well-known/openid-configuration", "oid 951ddb04-b16d-45f3-bbf7-b0fa18fa7aee"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	resp, err = http.PostForm(base+"/common/federation/externalauthprovider",
		url.Values{"error": {"access_denied"}, "error_description": {"the person reported fraud"}, "state": {state[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, &out, regexp.MustCompile(`(outcome: refused: provider returned error access_denied \(the person reported fraud\))`))
}
