package media

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/verigate/verigate/audio"
)

// readFixture reads a WAV file of testdata (see testdata/README.md).
func readFixture(t *testing.T, name string) *audio.WAV {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := audio.ReadWAV(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return w
}
