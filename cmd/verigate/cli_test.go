package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/verigate/verigate/sip"
)

// TestServeReportsEverythingAtOnce: the missing secret and keys, an
// invalid setting and the provider choice come in one error, not one per
// run.
func TestServeReportsEverythingAtOnce(t *testing.T) {
	env := map[string]string{"VERIGATE_VERIFY_CODE_LENGTH": "2", "VERIGATE_HTTP_MAX_WAIT": "forever"}
	_, _, err := loadServeConfig(serveFlags{}, lookupFrom(env), bytes.NewReader(make([]byte, 64)))
	for _, want := range []string{"VERIGATE_SECRET is not set", "VERIGATE_API_KEYS is not set", "verify.code_length", "VERIGATE_HTTP_MAX_WAIT", "no SMS provider configured"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestServeFatalErrorInJSON: with log.format json the reason serve cannot
// start is one JSON line on stderr, not plain text, and main prints it
// no more.
func TestServeFatalErrorInJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "verigate.yaml")
	if err := os.WriteFile(path, []byte("log:\n  format: json\nverify:\n  code_length: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"serve", "--config", path}, io.Discard, &stderr)
	if !errors.Is(err, errReported) {
		t.Fatalf("serve: %v, want an error already reported", err)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	var rec map[string]any
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &rec) != nil {
		t.Fatalf("stderr is not one JSON line:\n%s", stderr.String())
	}
	if rec["level"] != "ERROR" || !strings.Contains(rec["err"].(string), "verify.code_length") {
		t.Errorf("fatal line %v", rec)
	}
}

// TestServePrintsWhatItRuns: serve --dev prints where it listens and which
// providers serve.
func TestServePrintsWhatItRuns(t *testing.T) {
	_, _, stdout := startDevServe(t, "")
	for _, re := range []string{`HTTP listening on 127\.0\.0\.1:\d+`, `SIP listening on 127\.0\.0\.1:\d+`,
		`providers: sms console, calls sip \(the loopback test phone\)`} {
		waitFor(t, stdout, regexp.MustCompile("("+re+")"))
	}
}

// TestDescribeTrunkMasksThePassword: a trunk's line names where it is and
// its user, never its password.
func TestDescribeTrunkMasksThePassword(t *testing.T) {
	got := describeTrunk(sip.Trunk{Name: "pbx", Transport: "udp", Address: "pbx.example.com:5060", Username: "verigate", Password: "s3cret-pass"})
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "udp pbx.example.com:5060") || !strings.Contains(got, "user verigate") || !strings.Contains(got, "password ****") {
		t.Errorf("describeTrunk = %q", got)
	}
	if got := maskCredential("AC0123456789abcdef0123456789abcdef"); got != "AC01…cdef" {
		t.Errorf("maskCredential = %q", got)
	}
}
