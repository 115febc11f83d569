package entra

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	keyFile := writePEM(t, "k.pem", &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testRSAKeys(t)[0])})
	valid := Config{
		Apps:         []App{{ClientID: "app-1", Tenants: []string{"14c2f153-90a7-4689-9db7-9543bf084dad"}}, {ClientID: "app-2"}},
		Authority:    "http://127.0.0.1:8443",
		RedirectURIs: []string{"http://127.0.0.1:9000/common/federation/externalauthprovider"},
		Channels:     []string{"sms", "call"},
		CallMode:     "code",
		Keys:         Keys{Files: []string{keyFile}},
	}
	if err := valid.Validate("entra"); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	atBounds := valid
	atBounds.HintMaxAge, atBounds.FlowLifetime = MaxHintMaxAge, MaxFlowLifetime
	if err := atBounds.Validate("entra"); err != nil {
		t.Fatalf("bounds refused: %v", err)
	}
	if err := (Config{Authority: "ftp://x"}).Validate("entra"); err != nil {
		t.Errorf("a config without apps is off, yet refused: %v", err)
	}
	cases := []struct {
		name string
		edit func(c *Config)
		want []string // keys named in the error
	}{
		{"empty client id", func(c *Config) { c.Apps[1].ClientID = " " }, []string{"entra.apps[1].client_id"}},
		{"duplicate client id", func(c *Config) { c.Apps[1].ClientID = "app-1" }, []string{"entra.apps[1].client_id", "apps[0]"}},
		{"tenant not a GUID", func(c *Config) { c.Apps[0].Tenants = []string{"contoso.com"} }, []string{"entra.apps[0].tenants[0]"}},
		{"http authority off loopback", func(c *Config) { c.Authority = "http://login.example.com" }, []string{"entra.authority"}},
		{"authority not a URL", func(c *Config) { c.Authority = "login.microsoftonline.com" }, []string{"entra.authority"}},
		{"relative redirect", func(c *Config) { c.RedirectURIs = []string{"/callback"} }, []string{"entra.redirect_uris[0]"}},
		{"channel", func(c *Config) { c.Channels = []string{"call", "email"} }, []string{"entra.channels[1]"}},
		{"channel twice", func(c *Config) { c.Channels = []string{"call", "call"} }, []string{"entra.channels[1]"}},
		{"call mode", func(c *Config) { c.CallMode = "press" }, []string{"entra.call_mode"}},
		{"negative duration", func(c *Config) { c.HintMaxAge = -time.Second }, []string{"entra.hint_max_age"}},
		{"hint max age too long", func(c *Config) { c.HintMaxAge = 16 * time.Minute }, []string{"entra.hint_max_age"}},
		{"flow lifetime too long", func(c *Config) { c.FlowLifetime = 11 * time.Minute }, []string{"entra.flow_lifetime"}},
		{"negative rotation", func(c *Config) { c.Keys.RotateEvery = -time.Hour }, []string{"entra.keys.rotate_every"}},
		{"publish ahead too long", func(c *Config) { c.Keys.RotateEvery, c.Keys.PublishAhead = time.Hour, 2*time.Hour }, []string{"entra.keys.publish_ahead"}},
		{"key file missing", func(c *Config) { c.Keys.Files = append(c.Keys.Files, "/nonexistent/key.pem") }, []string{"entra.keys.files[1]"}},
		{"all at once", func(c *Config) { c.CallMode = "x"; c.Channels = []string{"fax"}; c.Apps[0].ClientID = "" },
			[]string{"entra.call_mode", "entra.channels[0]", "entra.apps[0].client_id"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			c.Apps = []App{{ClientID: "app-1", Tenants: valid.Apps[0].Tenants}, {ClientID: "app-2"}}
			c.Keys.Files = append([]string(nil), valid.Keys.Files...)
			tc.edit(&c)
			err := c.Validate("entra")
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Authority: "https://login.microsoftonline.us/"}.WithDefaults()
	if c.Authority != "https://login.microsoftonline.us" || c.Tenant != "entra" || c.HintMaxAge != 10*time.Minute ||
		c.FlowLifetime != 10*time.Minute || strings.Join(c.Channels, ",") != "call,sms" || c.CallMode != "approve" ||
		c.Keys.RotateEvery != 90*24*time.Hour || c.Keys.PublishAhead != 72*time.Hour {
		t.Errorf("defaults: %+v", c)
	}
	if got := (Config{}).WithDefaults().Authority; got != DefaultAuthority {
		t.Errorf("authority %q", got)
	}
}
