package twilio

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/verigate/verigate/ivr"
)

// DefaultBaseURL is Twilio's REST API.
const DefaultBaseURL = "https://api.twilio.com"

// PathPrefix is where the webhooks live under the gateway's public URL.
// Register them on a group with this prefix: e.Group(twilio.PathPrefix).
const PathPrefix = "/twilio"

// Voice modes (Config.VoiceMode).
const (
	// VoiceSay speaks each prompt with <Say language=... voice=...>.
	VoiceSay = "say"
	// VoicePlay plays each prompt's recording (8 kHz µ-law WAV) with
	// <Play>, fetched from the gateway's audio route.
	VoicePlay = "play"
)

// Defaults for Config fields left zero.
const (
	DefaultRingTimeout    = 30 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	// DefaultCallTTL bounds how long a call's sealed webhook context is
	// accepted after the call was placed.
	DefaultCallTTL = time.Hour
)

// Config holds the Twilio settings. The lead's config package embeds it
// under the key `twilio`, so every key is also VERIGATE_TWILIO_<KEY>.
type Config struct {
	// AccountSID is the account (AC...) the messages and calls belong to.
	AccountSID string `yaml:"account_sid"`
	// AuthToken authenticates REST calls (unless APIKey is set) and is the
	// key Twilio signs every webhook with: the webhooks need it even when
	// REST calls use an API key.
	AuthToken string `yaml:"auth_token" secret:"true"`
	// APIKey and APISecret (SK...) authenticate REST calls instead of the
	// auth token when set.
	APIKey    string `yaml:"api_key"`
	APISecret string `yaml:"api_secret" secret:"true"`

	// From is the sender: an E.164 number or an alphanumeric sender ID,
	// and the caller ID of calls. MessagingServiceSID (MG...) sends SMS
	// through a Messaging Service instead; calls still need From.
	From                string `yaml:"from"`
	MessagingServiceSID string `yaml:"messaging_service_sid"`

	// BaseURL is the REST API's scheme and host (and path prefix), for
	// Twilio-compatible providers and tests. DefaultBaseURL if empty.
	BaseURL string `yaml:"base_url"`
	// PublicURL is the gateway's base URL as Twilio reaches it
	// (VERIGATE_PUBLIC_URL); the webhooks live under PublicURL+PathPrefix
	// and signatures are checked against it, never against the URL the
	// gateway sees behind a proxy. The wiring fills it from the top-level
	// public_url when empty.
	PublicURL string `yaml:"public_url"`

	// VoiceMode is how a call speaks: VoiceSay (default) has Twilio read
	// the catalogue's texts with <Say>; VoicePlay has it <Play> the
	// gateway's own recordings, served under PathPrefix+RouteAudio.
	VoiceMode string `yaml:"voice_mode"`
	// Voice overrides the <Say> voice of every locale (e.g. "Polly.Joanna");
	// when empty each locale speaks with the prompts catalogue's voice.
	Voice string `yaml:"voice"`
	// KeyTimeout is how long a call waits for a key; ivr.DefaultKeyTimeout if 0.
	KeyTimeout time.Duration `yaml:"key_timeout"`
	// MaxPrompts is how often the approve prompt is played; ivr.DefaultMaxPrompts if 0.
	MaxPrompts int `yaml:"max_prompts"`
	// RingTimeout is how long Twilio lets the phone ring; DefaultRingTimeout if 0.
	RingTimeout time.Duration `yaml:"ring_timeout"`
	// RequestTimeout bounds each REST request (twilio-go takes no context);
	// DefaultRequestTimeout if 0.
	RequestTimeout time.Duration `yaml:"request_timeout"`

	// Secret is the server secret (top-level `secret`), set by the wiring:
	// the key that seals a code-mode call's code into its webhook URLs is
	// derived from it. Never from this section of the file.
	Secret string `yaml:"-"`
}

// Configured reports whether enough is set to use Twilio at all.
func (c Config) Configured() bool { return c.AccountSID != "" }

func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	c.VoiceMode = strings.ToLower(strings.TrimSpace(c.VoiceMode))
	if c.VoiceMode == "" {
		c.VoiceMode = VoiceSay
	}
	if c.KeyTimeout <= 0 {
		c.KeyTimeout = ivr.DefaultKeyTimeout
	}
	if c.MaxPrompts <= 0 {
		c.MaxPrompts = ivr.DefaultMaxPrompts
	}
	if c.RingTimeout <= 0 {
		c.RingTimeout = DefaultRingTimeout
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	return c
}

// Validate reports every invalid setting, naming its key.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("twilio.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if !strings.HasPrefix(c.AccountSID, "AC") {
		bad("account_sid", "must be an account SID starting with AC")
	}
	if c.AuthToken == "" {
		bad("auth_token", "is required: Twilio signs webhooks with it")
	}
	if (c.APIKey == "") != (c.APISecret == "") {
		bad("api_key", "api_key and api_secret go together")
	}
	if c.From == "" && c.MessagingServiceSID == "" {
		bad("from", "from or messaging_service_sid is required")
	}
	if c.MessagingServiceSID != "" && !strings.HasPrefix(c.MessagingServiceSID, "MG") {
		bad("messaging_service_sid", "must start with MG")
	}
	if err := checkBase(c.BaseURL); err != nil {
		bad("base_url", "%v", err)
	}
	if c.PublicURL == "" {
		bad("public_url", "is required: Twilio must reach the webhooks (VERIGATE_PUBLIC_URL)")
	} else if err := checkBase(c.PublicURL); err != nil {
		bad("public_url", "%v", err)
	}
	if len(c.Secret) < 16 {
		bad("secret", "the server secret must be at least 16 characters (it seals call codes)")
	}
	if c.VoiceMode != VoiceSay && c.VoiceMode != VoicePlay {
		bad("voice_mode", "must be %s or %s, not %q", VoiceSay, VoicePlay, c.VoiceMode)
	}
	if c.MaxPrompts > 9 {
		bad("max_prompts", "must be at most 9, not %d", c.MaxPrompts)
	}
	if c.KeyTimeout < time.Second || c.KeyTimeout%time.Second != 0 {
		bad("key_timeout", "must be whole seconds, at least 1s, not %s", c.KeyTimeout)
	}
	return errors.Join(errs...)
}

func checkBase(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("must be an http(s) URL with a host and no query, not %q", raw)
	}
	return nil
}
