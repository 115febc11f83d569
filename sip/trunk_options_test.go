package sip_test

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/sip"
)

func TestTrunkOptionsValidate(t *testing.T) {
	base := func(mod func(*sip.Trunk)) sip.Config {
		tr := sip.Trunk{Name: "pbx", Address: "pbx.example.com"}
		mod(&tr)
		c := sip.DefaultConfig()
		c.Trunks = []sip.Trunk{tr}
		return c
	}
	tests := []struct {
		name string
		mod  func(*sip.Trunk)
		want string // "" means valid
	}{
		{"defaults", func(*sip.Trunk) {}, ""},
		{"rfc4733", func(t *sip.Trunk) { t.DTMF = "rfc4733" }, ""},
		{"info upper", func(t *sip.Trunk) { t.DTMF = "INFO" }, ""},
		{"inband", func(t *sip.Trunk) { t.DTMF = "inband" }, ""},
		{"auto", func(t *sip.Trunk) { t.DTMF = "auto" }, ""},
		{"bad dtmf", func(t *sip.Trunk) { t.DTMF = "rfc2833" }, `sip.trunks[0].dtmf: must be rfc4733, info, inband or auto, not "rfc2833"`},
		{"keepalive", func(t *sip.Trunk) { t.KeepAlive = 30 * time.Second }, ""},
		{"keepalive too short", func(t *sip.Trunk) { t.KeepAlive = time.Millisecond }, "sip.trunks[0].keepalive: must be 0 (off) or at least 1s"},
		{"keepalive negative", func(t *sip.Trunk) { t.KeepAlive = -time.Second }, "sip.trunks[0].keepalive"},
		{"register", func(t *sip.Trunk) { t.Register = true; t.Username = "u"; t.Password = "p" }, ""},
	}
	for _, tt := range tests {
		err := base(tt.mod).Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestTrunkOptionsYAML(t *testing.T) {
	var c sip.Config
	err := yaml.Unmarshal([]byte(`
tls_ca: /etc/verigate/pbx-ca.pem
require_trunk: true
trunks:
  - name: pbx
    address: pbx.example.com
    dtmf: info
    register: true
    keepalive: 30s
  - name: carrier
    address: sbc.example.net
`), &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.TLSCA != "/etc/verigate/pbx-ca.pem" || !c.RequireTrunk {
		t.Errorf("sip keys: %+v", c)
	}
	pbx, err := c.Trunk("pbx")
	if err != nil {
		t.Fatal(err)
	}
	if pbx.DTMF != "info" || !pbx.Register || pbx.KeepAlive != 30*time.Second {
		t.Errorf("pbx %+v", pbx)
	}
	carrier, err := c.Trunk("carrier")
	if err != nil {
		t.Fatal(err)
	}
	if carrier.DTMF != "auto" || carrier.Register || carrier.KeepAlive != 0 {
		t.Errorf("carrier defaults %+v, want dtmf auto, no register, no keepalive", carrier)
	}
}

func TestCallerTLSCA(t *testing.T) {
	cfg := sip.Config{Listen: "127.0.0.1:0", RTPPorts: "30000-30099", TLSCA: t.TempDir() + "/missing.pem",
		Trunks: []sip.Trunk{{Name: "pbx", Address: "127.0.0.1", Transport: "tls"}}}
	_, err := sip.NewCaller(cfg, sip.Options{Audio: silentAudio{}})
	if err == nil || !strings.HasPrefix(err.Error(), "sip.tls_ca: ") {
		t.Fatalf("NewCaller with a missing tls_ca: %v, want an error naming sip.tls_ca", err)
	}
}

// silentAudio speaks every prompt as 100 ms of silence.
type silentAudio struct{}

func (silentAudio) Audio(_ string, _ prompts.ID, c audio.Codec) ([]byte, error) {
	return c.Encode(nil, make([]int16, 800)), nil
}
