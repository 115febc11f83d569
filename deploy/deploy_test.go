// Package deploy holds the deployment files (Dockerfile, compose file,
// Kubernetes manifests, systemd unit, sample configuration); its test keeps
// the sample configuration loadable and the manifests well-formed.
package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/verigate/verigate/config"
)

func TestExampleConfigLoads(t *testing.T) {
	if _, err := config.Load("verigate.example.yaml", func(string) (string, bool) { return "", false }); err != nil {
		t.Fatalf("deploy/verigate.example.yaml: %v", err)
	}
}

// TestExamplesLoad keeps every configuration under examples/ loadable
// (cmd/verigate's tests run them with serve --dev).
func TestExamplesLoad(t *testing.T) {
	paths, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, p := range paths {
		if _, err := config.Load(p, func(string) (string, bool) { return "", false }); err != nil {
			t.Errorf("deploy/%s: %v", p, err)
		}
	}
}

func TestManifestsAreYAML(t *testing.T) {
	for _, name := range []string{"docker-compose.yml", "kubernetes/verigate.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		docs := 0
		for {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			docs++
		}
		if docs == 0 {
			t.Fatalf("%s holds no document", name)
		}
	}
}
