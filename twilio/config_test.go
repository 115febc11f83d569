package twilio

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{
		AccountSID: "AC0123456789abcdef0123456789abcdef", AuthToken: "token", From: "+15005550006",
		PublicURL: "https://verify.example.com", Secret: "a server secret of enough length",
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		wantKey string // "" for valid
	}{
		{"valid", func(*Config) {}, ""},
		{"messaging service instead of from", func(c *Config) { c.From, c.MessagingServiceSID = "", "MG0123" }, ""},
		{"api key", func(c *Config) { c.APIKey, c.APISecret = "SK0123", "secret" }, ""},
		{"base url with a path", func(c *Config) { c.BaseURL = "http://127.0.0.1:9/twilio" }, ""},
		{"play mode", func(c *Config) { c.VoiceMode = "play" }, ""},
		{"say mode in capitals", func(c *Config) { c.VoiceMode = "SAY" }, ""},
		{"voice mode", func(c *Config) { c.VoiceMode = "sing" }, "twilio.voice_mode"},
		{"account sid", func(c *Config) { c.AccountSID = "0123" }, "twilio.account_sid"},
		{"no auth token", func(c *Config) { c.AuthToken = "" }, "twilio.auth_token"},
		{"api key without secret", func(c *Config) { c.APIKey = "SK0123" }, "twilio.api_key"},
		{"no sender", func(c *Config) { c.From = "" }, "twilio.from"},
		{"messaging service sid", func(c *Config) { c.MessagingServiceSID = "XX1" }, "twilio.messaging_service_sid"},
		{"base url scheme", func(c *Config) { c.BaseURL = "ftp://x" }, "twilio.base_url"},
		{"no public url", func(c *Config) { c.PublicURL = "" }, "twilio.public_url"},
		{"public url with query", func(c *Config) { c.PublicURL = "https://x/?a=1" }, "twilio.public_url"},
		{"short secret", func(c *Config) { c.Secret = "short" }, "twilio.secret"},
		{"key timeout fraction", func(c *Config) { c.KeyTimeout = 1500 * time.Millisecond }, "twilio.key_timeout"},
		{"max prompts", func(c *Config) { c.MaxPrompts = 10 }, "twilio.max_prompts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(&c)
			err := c.Validate()
			if tt.wantKey == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantKey+":") {
				t.Fatalf("error %v, want one naming %s", err, tt.wantKey)
			}
		})
	}
}

func TestRebaseKeepsThePath(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Host + " " + r.URL.RequestURI()
	}))
	defer srv.Close()
	base, _ := url.Parse(srv.URL + "/compat")
	rt := &rebase{base: base, next: http.DefaultTransport}
	req, _ := http.NewRequest(http.MethodPost, "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?x=1", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := strings.TrimPrefix(srv.URL, "http://") + " /compat/2010-04-01/Accounts/AC1/Messages.json?x=1"; got != want {
		t.Fatalf("request reached %q, want %q", got, want)
	}
	if req.URL.Host != "api.twilio.com" {
		t.Fatal("the caller's request was modified")
	}
}
