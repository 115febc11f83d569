package entra

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/verigate/verigate/internal/loopback"
)

// Defaults of the Config, applied by WithDefaults.
const (
	DefaultAuthority    = "https://login.microsoftonline.com"
	DefaultTenant       = "entra"
	DefaultHintMaxAge   = 10 * time.Minute
	DefaultFlowLifetime = 10 * time.Minute
	DefaultCallMode     = "approve"
	DefaultRotateEvery  = 90 * 24 * time.Hour
	DefaultPublishAhead = 72 * time.Hour
	// MaxHintMaxAge bounds hint_max_age: an older hint is one copied out
	// of a browser, not a sign-in under way.
	MaxHintMaxAge = 15 * time.Minute
	// MaxFlowLifetime bounds flow_lifetime: Entra abandons the sign-in at
	// about 10 minutes, so a longer flow only approves into the void.
	MaxFlowLifetime = 10 * time.Minute
	// MinRSABits is the smallest signing key accepted from a file.
	MinRSABits = 2048
)

// DefaultChannels are the channels offered when Config.Channels is empty.
var DefaultChannels = []string{"call", "sms"}

// EntraRedirectURIs are Entra's published redirect_uri endpoints (global,
// US Government, 21Vianet): the only ones accepted besides
// Config.RedirectURIs.
var EntraRedirectURIs = []string{
	"https://login.microsoftonline.com/common/federation/externalauthprovider",
	"https://login.microsoftonline.us/common/federation/externalauthprovider",
	"https://login.partner.microsoftonline.cn/common/federation/externalauthprovider",
}

var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// IsGUID reports whether s is a GUID in its 8-4-4-4-12 hex form, as Entra
// writes tenant and object ids.
func IsGUID(s string) bool { return guidPattern.MatchString(s) }

// WithDefaults returns c with every empty setting at its default and the
// authority without a trailing slash.
func (c Config) WithDefaults() Config {
	if c.Authority == "" {
		c.Authority = DefaultAuthority
	}
	c.Authority = strings.TrimRight(c.Authority, "/")
	if c.Tenant == "" {
		c.Tenant = DefaultTenant
	}
	if c.HintMaxAge == 0 {
		c.HintMaxAge = DefaultHintMaxAge
	}
	if c.FlowLifetime == 0 {
		c.FlowLifetime = DefaultFlowLifetime
	}
	if len(c.Channels) == 0 {
		c.Channels = append([]string(nil), DefaultChannels...)
	}
	if c.CallMode == "" {
		c.CallMode = DefaultCallMode
	}
	if c.Keys.RotateEvery == 0 {
		c.Keys.RotateEvery = DefaultRotateEvery
	}
	if c.Keys.PublishAhead == 0 {
		c.Keys.PublishAhead = DefaultPublishAhead
	}
	return c
}

// Validate reports every setting that is wrong at once, each error naming
// its key under prefix (the config package passes "entra"). A Config
// without apps is off and valid.
func (c Config) Validate(prefix string) error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", prefix, key, fmt.Sprintf(format, args...)))
	}
	ids := map[string]int{}
	for i, a := range c.Apps {
		k := fmt.Sprintf("apps[%d]", i)
		switch j, dup := ids[a.ClientID]; {
		case strings.TrimSpace(a.ClientID) == "":
			bad(k+".client_id", "must be set (the Application (client) ID of the app registration)")
		case dup:
			bad(k+".client_id", "%q is apps[%d]'s too", a.ClientID, j)
		default:
			ids[a.ClientID] = i
		}
		for j, t := range a.Tenants {
			if !IsGUID(t) {
				bad(fmt.Sprintf("%s.tenants[%d]", k, j), "must be an Entra tenant id (a GUID), not %q", t)
			}
		}
	}
	if c.Authority != "" {
		if err := checkAuthority(c.Authority); err != nil {
			bad("authority", "%v", err)
		}
	}
	for i, r := range c.RedirectURIs {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" || u.User != nil {
			bad(fmt.Sprintf("redirect_uris[%d]", i), "must be an absolute http(s) URL without user or fragment, not %q", r)
		}
	}
	seen := map[string]bool{}
	for i, ch := range c.Channels {
		switch {
		case ch != "call" && ch != "sms":
			bad(fmt.Sprintf("channels[%d]", i), "must be call or sms, not %q", ch)
		case seen[ch]:
			bad(fmt.Sprintf("channels[%d]", i), "%s is listed twice", ch)
		}
		seen[ch] = true
	}
	if c.CallMode != "" && c.CallMode != "approve" && c.CallMode != "code" {
		bad("call_mode", "must be approve or code, not %q", c.CallMode)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"hint_max_age", c.HintMaxAge},
		{"flow_lifetime", c.FlowLifetime},
		{"keys.rotate_every", c.Keys.RotateEvery},
		{"keys.publish_ahead", c.Keys.PublishAhead},
	} {
		if d.v < 0 {
			bad(d.key, "must not be negative, not %s", d.v)
		}
	}
	if c.HintMaxAge > MaxHintMaxAge {
		bad("hint_max_age", "must be at most %s, not %s", MaxHintMaxAge, c.HintMaxAge)
	}
	if c.FlowLifetime > MaxFlowLifetime {
		bad("flow_lifetime", "must be at most %s (Entra abandons the sign-in then), not %s", MaxFlowLifetime, c.FlowLifetime)
	}
	// The next key must be published before it signs, and the current key
	// must sign for a while before its successor is announced.
	if d := c.WithDefaults().Keys; d.RotateEvery > 0 && d.PublishAhead > 0 && d.PublishAhead >= d.RotateEvery {
		bad("keys.publish_ahead", "must be shorter than keys.rotate_every (%s), not %s", d.RotateEvery, d.PublishAhead)
	}
	for i, f := range c.Keys.Files {
		if _, err := loadKeyFile(f); err != nil {
			bad(fmt.Sprintf("keys.files[%d]", i), "%v", err)
		}
	}
	return errors.Join(errs...)
}

// checkAuthority accepts an https URL, or http to a loopback host (the
// fake Entra of tests), with no query or fragment.
func checkAuthority(a string) error {
	u, err := url.Parse(a)
	if err != nil || u.Host == "" {
		return fmt.Errorf("must be an absolute URL such as %s, not %q", DefaultAuthority, a)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("must have no user, query or fragment: %q", a)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if loopback.Host(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("must be https (http only to a loopback host), not %q", a)
	}
	return fmt.Errorf("must be https, not %q", a)
}

func rsaBitsOK(k *rsa.PrivateKey) error {
	if n := k.N.BitLen(); n < MinRSABits {
		return fmt.Errorf("RSA key of %d bits: at least %d are needed", n, MinRSABits)
	}
	return nil
}
