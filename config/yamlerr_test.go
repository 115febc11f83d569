package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestYAMLTypeErrorsNameTheKey: every value of the wrong type and every
// unknown key of a file is reported at once, each naming its key path.
func TestYAMLTypeErrorsNameTheKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "verigate.yaml")
	data := "http:\n  addr: 127.0.0.1:8080\n  body_limit: lots\nverify:\n  code_length: [6]\nsip:\n  trunks:\n    - name: pbx\n      adress: pbx.example.com:5060\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, func(string) (string, bool) { return "", false })
	var ye *YAMLError
	if !errors.As(err, &ye) {
		t.Fatalf("Load: %v, want a *YAMLError", err)
	}
	for _, want := range []string{"line 3: http.body_limit: cannot unmarshal", "line 5: verify.code_length: cannot unmarshal", "line 9: sip.trunks[0].adress: field adress not found"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestLoadReportsEverythingAtOnce: an invalid environment variable and
// invalid settings come in one error.
func TestLoadReportsEverythingAtOnce(t *testing.T) {
	env := map[string]string{"VERIGATE_HTTP_MAX_WAIT": "forever", "VERIGATE_VERIFY_CODE_LENGTH": "2", "VERIGATE_LOG_FORMAT": "xml"}
	_, err := Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	for _, want := range []string{"http.max_wait (VERIGATE_HTTP_MAX_WAIT)", "verify.code_length", "log.format"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// TestUnknownEnv: a misspelt VERIGATE_ variable is found, with the name it
// was likely meant to be; known names, list entries, secrets' _FILE and
// the client's and tests' variables are not.
func TestUnknownEnv(t *testing.T) {
	environ := []string{"PATH=/bin", "VERIGATE_HTTP_ADDR=:8080", "VERIGATE_SECRET_FILE=/s", "VERIGATE_SIP_TRUNKS_0_PASSWORD=x",
		"VERIGATE_API_KEY=k", "VERIGATE_TEST_REDIS_URL=redis://", "VERIGATE_SOAK_DURATION=1m", "VERIGATE_HTTP_ADR=:8080", "VERIGATE_NOPE=1"}
	got := UnknownEnv(environ)
	if want := []string{"VERIGATE_HTTP_ADR", "VERIGATE_NOPE"}; !slices.Equal(got, want) {
		t.Fatalf("UnknownEnv = %v, want %v", got, want)
	}
	if s := SuggestEnv("VERIGATE_HTTP_ADR"); s != "VERIGATE_HTTP_ADDR" {
		t.Errorf("SuggestEnv(VERIGATE_HTTP_ADR) = %q", s)
	}
	if s := SuggestEnv("VERIGATE_NOPE"); s != "" {
		t.Errorf("SuggestEnv(VERIGATE_NOPE) = %q, want none", s)
	}
}
