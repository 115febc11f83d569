package sip_test

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/verigate/verigate/sip"
)

func TestRewrite(t *testing.T) {
	tests := []struct {
		template, e164, want string
	}{
		{"", "+4915123456789", "+4915123456789"},
		{"+{e164}", "+4915123456789", "+4915123456789"},
		{"{e164}", "+4915123456789", "4915123456789"},
		{"00{e164_digits}", "+4915123456789", "004915123456789"},
		{"{national}", "+4915123456789", "015123456789"},
		{"{nsn}", "+4915123456789", "15123456789"},
		{"9{national}", "+4930123456", "9030123456"},
		{"0{national}", "+442071838750", "002071838750"},
		{"{national}", "+12015550123", "2015550123"},
		{"1{nsn}", "+12015550123", "12015550123"},
		{"*31#{e164}", "+33612345678", "*31#33612345678"},
		{"{national}", "+33612345678", "0612345678"},
	}
	for _, tt := range tests {
		got, err := sip.Rewrite(tt.template, tt.e164)
		if err != nil {
			t.Errorf("Rewrite(%q, %q): %v", tt.template, tt.e164, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Rewrite(%q, %q) = %q, want %q", tt.template, tt.e164, got, tt.want)
		}
	}
}

func TestRewriteRefuses(t *testing.T) {
	tests := []struct{ template, e164 string }{
		{"{e164}{e164}", "+4915123456789"},
		{"sip:{e164}", "+4915123456789"},
		{"prefix", "+4915123456789"},
		{"+{e164}", "4915123456789"},
		{"+{e164}", "+49abc"},
		{"+{e164}", "+1234567890123456"},
	}
	for _, tt := range tests {
		if got, err := sip.Rewrite(tt.template, tt.e164); err == nil {
			t.Errorf("Rewrite(%q, %q) = %q, want an error", tt.template, tt.e164, got)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := func() sip.Config {
		c := sip.DefaultConfig()
		c.DefaultTrunk = "pbx"
		c.Trunks = []sip.Trunk{{Name: "pbx", Address: "pbx.example.com:5060", Transport: "udp", Dial: "+{e164}"}}
		return c
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	if err := sip.DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config refused: %v", err)
	}
	tests := []struct {
		name   string
		change func(c *sip.Config)
		key    string
	}{
		{"listen", func(c *sip.Config) { c.Listen = "5060" }, "sip.listen"},
		{"public address", func(c *sip.Config) { c.PublicAddress = "0.0.0.0" }, "sip.public_address"},
		{"rtp ports", func(c *sip.Config) { c.RTPPorts = "30000-20000" }, "sip.rtp_ports"},
		{"rtp ports form", func(c *sip.Config) { c.RTPPorts = "20000" }, "sip.rtp_ports"},
		{"ring timeout negative", func(c *sip.Config) { c.RingTimeout = -time.Second }, "sip.ring_timeout"},
		{"ring timeout short", func(c *sip.Config) { c.RingTimeout = 500 * time.Millisecond }, "sip.ring_timeout"},
		{"default trunk", func(c *sip.Config) { c.DefaultTrunk = "carrier" }, "sip.default_trunk"},
		{"trunk name", func(c *sip.Config) { c.Trunks[0].Name = "" }, "sip.trunks[0].name"},
		{"duplicate trunk", func(c *sip.Config) { c.Trunks = append(c.Trunks, c.Trunks[0]) }, "sip.trunks[1].name"},
		{"address", func(c *sip.Config) { c.Trunks[0].Address = "" }, "sip.trunks[0].address"},
		{"transport", func(c *sip.Config) { c.Trunks[0].Transport = "sctp" }, "sip.trunks[0].transport"},
		{"password alone", func(c *sip.Config) { c.Trunks[0].Password = "s3cret" }, "sip.trunks[0].username"},
		{"username alone", func(c *sip.Config) { c.Trunks[0].Username = "alice" }, "sip.trunks[0].password"},
		{"dial", func(c *sip.Config) { c.Trunks[0].Dial = "sip:{e164}" }, "sip.trunks[0].dial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.key+":") {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.key)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

func TestConfigTrunk(t *testing.T) {
	c := sip.Config{DefaultTrunk: "b", Trunks: []sip.Trunk{
		{Name: "a", Address: "a.example.com"},
		{Name: "b", Address: "b.example.com", Transport: "TLS", Username: "alice", Password: "x"},
	}}
	b, err := c.Trunk("")
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "b" || b.Address != "b.example.com:5061" || b.Transport != "tls" || b.FromUser != "alice" || b.Dial != "+{e164}" {
		t.Errorf("default trunk = %+v", b)
	}
	a, err := c.Trunk("a")
	if err != nil {
		t.Fatal(err)
	}
	if a.Address != "a.example.com:5060" || a.Transport != "udp" || a.FromUser != "verigate" {
		t.Errorf("trunk a = %+v", a)
	}
	if _, err := c.Trunk("c"); err == nil {
		t.Error("Trunk(c) found a trunk that is not configured")
	}
}

// TestConfigYAML decodes the sip section exactly as the configuration
// reference writes it, refusing unknown keys as the config package does.
func TestConfigYAML(t *testing.T) {
	const doc = `
listen: 0.0.0.0:5060
public_address: "203.0.113.7"
rtp_ports: "20000-20999"
default_trunk: pbx
ring_timeout: 20s
trunks:
  - name: pbx
    address: pbx.example.com:5060
    transport: udp
    username: "alice"
    password: "s3cret"
    from_user: "1000"
    caller_id: "Verigate"
    dial: "+{e164}"
`
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	var c sip.Config
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	want := sip.Trunk{Name: "pbx", Address: "pbx.example.com:5060", Transport: "udp", Username: "alice",
		Password: "s3cret", FromUser: "1000", CallerID: "Verigate", Dial: "+{e164}"}
	if c.Listen != "0.0.0.0:5060" || c.PublicAddress != "203.0.113.7" || c.RTPPorts != "20000-20999" ||
		c.DefaultTrunk != "pbx" || c.RingTimeout != 20*time.Second || len(c.Trunks) != 1 || c.Trunks[0] != want {
		t.Fatalf("decoded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
