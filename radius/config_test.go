package radius

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := testConfig()
	tests := []struct {
		name string
		edit func(*Config)
		want []string // keys named; none: valid
	}{
		{"off", func(c *Config) { *c = Config{} }, nil},
		{"valid", func(*Config) {}, nil},
		{"network client", func(c *Config) { c.Clients[0].Address = "10.0.0.0/8" }, nil},
		{"everything wrong at once", func(c *Config) {
			c.Listen = "1812"
			c.Clients = []Client{{Address: "nas.example", Secret: "short"}}
			c.SecondFactor = "push"
			c.AnswerTimeout = time.Hour
			c.Primary.Mode = "kerberos"
		}, []string{"radius.listen", "radius.clients[0].address", "radius.clients[0].secret", "radius.second_factor",
			"radius.answer_timeout", "radius.primary.mode"}},
		{"no clients", func(c *Config) { c.Clients = nil }, []string{"radius.clients"}},
		{"no primary mode", func(c *Config) { c.Primary = Primary{} }, []string{"radius.primary.mode"}},
		{"ldap in clear over a network", func(c *Config) {
			c.Primary = Primary{Mode: "ldap", LDAP: LDAPAuth{URL: "ldap://dc1.example.com", UserDN: "uid={username},dc=example"}}
		}, []string{"radius.primary.ldap.start_tls"}},
		{"ldap template without the user", func(c *Config) {
			c.Primary = Primary{Mode: "ldap", LDAP: LDAPAuth{URL: "ldaps://dc1.example.com", UserDN: "uid=alice,dc=example"}}
		}, []string{"radius.primary.ldap.user_dn"}},
		{"ldap neither template nor search", func(c *Config) {
			c.Primary = Primary{Mode: "ldap", LDAP: LDAPAuth{URL: "ldaps://dc1.example.com"}}
		}, []string{"radius.primary.ldap.user_dn"}},
		{"upstream without address and secret", func(c *Config) { c.Primary = Primary{Mode: "radius"} },
			[]string{"radius.primary.radius.address", "radius.primary.radius.secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			c.Clients = append([]Client(nil), ok.Clients...)
			tt.edit(&c)
			err := c.Validate("radius")
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("%d errors, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for _, k := range tt.want {
				if !strings.Contains(err.Error(), k+":") {
					t.Errorf("no error names %s:\n%v", k, err)
				}
			}
		})
	}
}
