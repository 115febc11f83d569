package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReferenceIsCurrent holds docs/CONFIG.md to the code: a key added,
// renamed or given a new default without regenerating the file
// (`go run ./cmd/verigate config reference > docs/CONFIG.md`) fails here.
func TestReferenceIsCurrent(t *testing.T) {
	var b bytes.Buffer
	if err := WriteReference(&b); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "CONFIG.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), doc) {
		t.Fatal("docs/CONFIG.md is not what the code generates: go run ./cmd/verigate config reference > docs/CONFIG.md")
	}
	// Every variable the environment walk knows is in the reference.
	for _, name := range KnownEnv() {
		// NAME_FILE of a secret is said once, in the header.
		if !strings.Contains(b.String(), "`"+name+"`") && !strings.Contains(b.String(), "`"+strings.TrimSuffix(name, "_FILE")+"`") {
			t.Errorf("%s is not in the reference", name)
		}
	}
}
