package config

import (
	"os"
	"testing"
)

// FuzzLoadYAML: any configuration file either loads into a configuration
// that passes Validate or is refused with an error; nothing panics, and
// the example configuration is where the fuzzer starts.
func FuzzLoadYAML(f *testing.F) {
	if example, err := os.ReadFile("../deploy/verigate.example.yaml"); err == nil {
		f.Add(example)
	}
	f.Add([]byte("limits:\n  policies:\n    - {name: n, scope: number, limit: 1, window: 1m}\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("sip:\n  trunks:\n    - {name: pbx, host: 127.0.0.1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := Default()
		if err := decodeYAML(data, &cfg); err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			return
		}
		// Accepted: what the file set must survive the environment step
		// unchanged when the environment is empty.
		if err := applyEnv(&cfg, func(string) (string, bool) { return "", false }); err != nil {
			t.Fatalf("an accepted file failed the empty environment: %v", err)
		}
	})
}
