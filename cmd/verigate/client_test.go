package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"regexp"
	"strings"
	"testing"

	"github.com/verigate/verigate/internal/testbuf"
)

// cli runs one client subcommand and returns stdout, stderr and the error.
func cli(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr testbuf.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// cliJSON runs a client subcommand that must succeed and decodes its output.
func cliJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out, errOut, err := cli(t, args...)
	if err != nil {
		t.Fatalf("verigate %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("verigate %s printed no JSON object: %v\n%s", args[0], err, out)
	}
	return m
}

// TestClientCommandsSMSFlow: start, check (wrong code, right code, the
// same again), get and check by number, against `serve --dev` with the
// console catching the codes.
func TestClientCommandsSMSFlow(t *testing.T) {
	base, key, serveOut := startDevServe(t, "")
	conn := []string{"--url", base, "--key", key}

	v := cliJSON(t, append([]string{"start", "--to", "+4915123456789", "--locale", "de"}, conn...)...)
	id, _ := v["id"].(string)
	if id == "" || v["status"] != "pending" || v["to"] != "+49151*****789" || v["locale"] != "de" {
		t.Fatalf("start printed %v", v)
	}
	code := waitFor(t, serveOut, regexp.MustCompile(`sms to=\+49151\*+789 body=\D*(\d{6})`))
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	c := cliJSON(t, append([]string{"check", id, "--code", wrong}, conn...)...)
	if c["status"] != "pending" || c["attempts_left"] != float64(4) {
		t.Fatalf("wrong code: %v", c)
	}
	c = cliJSON(t, append([]string{"check", "--id", id, "--code", code}, conn...)...)
	if c["status"] != "approved" {
		t.Fatalf("right code: %v", c)
	}
	out, errOut, err := cli(t, append([]string{"check", id, "--code", code}, conn...)...)
	if err == nil || out != "" || !strings.Contains(err.Error(), "not_pending") || !strings.Contains(err.Error(), "approved") {
		t.Fatalf("second check: error %v, stdout %q stderr %q; want not_pending", err, out, errOut)
	}
	g := cliJSON(t, append([]string{"get", id}, conn...)...)
	if g["status"] != "approved" || g["id"] != id {
		t.Fatalf("get: %v", g)
	}

	cliJSON(t, append([]string{"start", "--to", "+4915123456780", "--channel", "sms"}, conn...)...)
	code = waitFor(t, serveOut, regexp.MustCompile(`sms to=\+49151\*+780 body=\D*(\d{6})`))
	c = cliJSON(t, append([]string{"check", "--to", "+4915123456780", "--code", code}, conn...)...)
	if c["status"] != "approved" {
		t.Fatalf("check by number: %v", c)
	}
}

// TestClientCommandStartCallWaits: `start --channel call --wait` prints
// the outcome of the call: the dev gateway's loopback test phone presses #.
func TestClientCommandStartCallWaits(t *testing.T) {
	base, key, _ := startDevServe(t, "")
	v := cliJSON(t, "start", "--url", base, "--key", key, "--to", demoFixed, "--channel", "call", "--call-mode", "approve", "--wait", "30s")
	if v["status"] != "approved" || v["channel"] != "call" {
		t.Fatalf("start --wait printed %v, want the approved call", v)
	}
	g := cliJSON(t, "get", v["id"].(string), "--wait", "5s", "--url", base, "--key", key)
	if g["status"] != "approved" {
		t.Fatalf("get --wait printed %v", g)
	}
}

// TestClientCommandsKey: the key comes from --key or VERIGATE_API_KEY,
// is never printed, and a wrong one fails naming unauthorized.
func TestClientCommandsKey(t *testing.T) {
	base, key, _ := startDevServe(t, "")
	t.Setenv(apiKeyEnv, key)
	out, errOut, err := cli(t, "start", "--url", base, "--to", "+4915123456789")
	if err != nil || strings.Contains(out+errOut, key) {
		t.Fatalf("start with the key from %s: %v\n%s%s", apiKeyEnv, err, out, errOut)
	}
	_, errOut, err = cli(t, "get", "--help")
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut, "-key") || strings.Contains(errOut, key) {
		t.Fatalf("get --help: %v\n%s", err, errOut)
	}
	_, _, err = cli(t, "get", "VE0123", "--url", base, "--key", "wrong-key-0123456789abcdef")
	if err == nil || !strings.Contains(err.Error(), "unauthorized") || strings.Contains(err.Error(), "wrong-key") {
		t.Fatalf("a wrong key: %v", err)
	}
	t.Setenv(apiKeyEnv, "")
	if _, _, err = cli(t, "get", "VE0123", "--url", base); err == nil || !strings.Contains(err.Error(), apiKeyEnv) {
		t.Fatalf("no key: %v", err)
	}
}

// TestClientCommandsErrors: API errors exit non-zero naming the code;
// missing arguments fail before any request.
func TestClientCommandsErrors(t *testing.T) {
	base, key, _ := startDevServe(t, "")
	conn := []string{"--url", base, "--key", key}
	tests := []struct {
		args []string
		want string
	}{
		{append([]string{"start", "--to", "12"}, conn...), "invalid_number"},
		{append([]string{"start", "--to", "+4915123456789", "--channel", "fax"}, conn...), "invalid_request"},
		{append([]string{"get", "VE0123456789abcdef0123456789abcdef"}, conn...), "not_found"},
		{append([]string{"check", "--to", "+4915199999999", "--code", "123456"}, conn...), "not_found"},
		{append([]string{"start"}, conn...), "--to"},
		{append([]string{"check", "--code", "123456"}, conn...), "id or --to"},
		{append([]string{"check", "VE01", "--to", "+4915123456789", "--code", "123456"}, conn...), "id or --to"},
		{append([]string{"get", "a", "b"}, conn...), "unexpected argument"},
		{append([]string{"send", "--to", "+4915123456789"}, conn...), "--body"},
		{[]string{"get", "VE01", "--url", "ftp://x", "--key", key}, "http"},
	}
	for _, tt := range tests {
		out, _, err := cli(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || out != "" {
			t.Errorf("verigate %s: error %v, stdout %q; want an error naming %q", strings.Join(tt.args, " "), err, out, tt.want)
		}
	}
}

// TestClientCommandSend: `send` relays the text as written (the console
// prints it) and prints the message.
func TestClientCommandSend(t *testing.T) {
	base, key, serveOut := startDevServe(t, "")
	m := cliJSON(t, "send", "--url", base, "--key", key, "--to", "+4915123456789", "--body", "Your login code is 482913")
	if m["id"] == "" || m["status"] != "pending" || m["channel"] != "sms" || m["to"] != "+49151*****789" {
		t.Fatalf("send printed %v", m)
	}
	waitFor(t, serveOut, regexp.MustCompile(`sms to=\+49151\*+789 body=(Your login code is 482913)`))
	_, _, err := cli(t, "send", "--url", base, "--key", key, "--to", "+4915123456789", "--body", "no code", "--channel", "call")
	if err == nil || !strings.Contains(err.Error(), "invalid_request") {
		t.Fatalf("a call without a code: %v", err)
	}
}
