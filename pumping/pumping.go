// Package pumping holds Verigate's SMS-pumping watch, in the manner of
// Twilio Verify's Fraud Guard: per destination prefix (the country code and
// the next digits) it counts the SMS sent and the verifications approved,
// and when the share approved falls under a threshold with enough SMS to
// judge, it blocks SMS to that prefix for a while. The block repeats while
// the pattern does.
//
// SMS pumping (artificially inflated traffic) sends codes to a block of
// numbers whose operator shares the termination fee with the fraudster;
// nobody types those codes back, so the prefix's conversion collapses
// while a genuine prefix converts most of what it receives.
//
// Only SMS that have had their chance count: a send is judged once its
// verification's codes can no longer be typed (Config.Maturity, the
// verification lifetime), and an approval counts in the minute its
// verification began. Judging fresh sends would block a busy genuine prefix
// on Monday morning, when thousands of codes have gone out and the people
// are still reading them.
//
// The counts and blocks live in a Store: Redis, shared by every gateway on
// it, or Memory for one process (serve --dev). Both pass the contract tests
// of internal/pumpingtest. Each gateway adds its counts to the Store in a
// batch every Config.FlushEvery (one script, one round trip), judges the
// prefixes it has seen, and keeps the blocks in memory for routing, so a
// start costs no Redis command for the watch.
package pumping

import (
	"fmt"
	"time"

	"github.com/verigate/verigate/verify"
)

// Defaults for Config fields left zero. See docs/ROUTING.md ("SMS-pumping
// watch") for the reasoning.
const (
	// DefaultWindow is how far back the watch looks: long enough for the
	// low-volume foreign prefixes where pumping lands to gather a verdict,
	// short enough that a verdict is about today's traffic.
	DefaultWindow = time.Hour
	// DefaultMinSends is how many matured SMS a prefix needs before it is
	// judged. A genuine prefix converting 50 % approves 3 or fewer of 20
	// (a ratio under 0.2) with a probability of 0.13 %, at 70 % of
	// 0.00005 %; a pumped one approves none.
	DefaultMinSends = 20
	// DefaultMinRatio: approved/sent under it blocks. Genuine one-time
	// passcode traffic converts well over half its SMS; pumped traffic
	// converts next to nothing.
	DefaultMinRatio = 0.2
	// DefaultMaturity is how old an SMS must be before it is judged: the
	// default verification lifetime, after which its code cannot be typed.
	DefaultMaturity = verify.DefaultLifetime
	// DefaultBlock is how long a pumped prefix receives no SMS (Twilio's
	// Fraud Guard blocks for 12 hours as well).
	DefaultBlock = 12 * time.Hour
	// DefaultFlushEvery is how often a gateway adds its counts to the Store
	// and reads the blocks: a block reaches every gateway within it.
	DefaultFlushEvery = 5 * time.Second
)

// Config configures the watch: the `limits.sms_pumping` section.
type Config struct {
	// Off turns the watch off.
	Off bool `yaml:"off"`
	// Window is how far back sends and approvals are counted.
	Window time.Duration `yaml:"window"`
	// MinSends matured SMS to a prefix within Window are needed to judge it.
	MinSends int `yaml:"min_sends"`
	// MinRatio: approved/sent below it blocks the prefix.
	MinRatio float64 `yaml:"min_ratio"`
	// Maturity is how old an SMS must be to be judged; 0: the
	// verification lifetime (verify.lifetime).
	Maturity time.Duration `yaml:"maturity"`
	// Block is how long a prefix judged pumped receives no SMS.
	Block time.Duration `yaml:"block"`
	// PrefixDigits is how many digits after the country code make the
	// prefix (verify.NumberPrefix).
	PrefixDigits int `yaml:"prefix_digits"`
	// BlockCalls also refuses calls to a blocked prefix; by default only
	// SMS are refused and calls (which the watch does not judge) go on.
	BlockCalls bool `yaml:"block_calls"`
	// FlushEvery is how often counts go to the Store and blocks come back.
	FlushEvery time.Duration `yaml:"flush_every"`
}

// DefaultConfig returns the defaults, Maturity left to the verification lifetime.
func DefaultConfig() Config {
	return Config{
		Window: DefaultWindow, MinSends: DefaultMinSends, MinRatio: DefaultMinRatio,
		Block: DefaultBlock, PrefixDigits: verify.DefaultPrefixDigits, FlushEvery: DefaultFlushEvery,
	}
}

// withDefaults fills in the zero fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Window == 0 {
		c.Window = d.Window
	}
	if c.MinSends == 0 {
		c.MinSends = d.MinSends
	}
	if c.MinRatio == 0 {
		c.MinRatio = d.MinRatio
	}
	if c.Maturity == 0 {
		c.Maturity = DefaultMaturity
	}
	if c.Block == 0 {
		c.Block = d.Block
	}
	if c.PrefixDigits == 0 {
		c.PrefixDigits = d.PrefixDigits
	}
	if c.FlushEvery == 0 {
		c.FlushEvery = d.FlushEvery
	}
	return c
}

// Validate reports the first invalid setting, naming it under key (the
// section's place in the configuration, e.g. limits.sms_pumping). Zero
// values stand for their defaults.
func (c Config) Validate(key string) error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%s.%s: %s", key, field, fmt.Sprintf(format, args...))
	}
	full := c.withDefaults()
	switch {
	case c.Window < 0, c.Window > 0 && c.Window < 10*time.Minute, c.Window > 7*24*time.Hour:
		return bad("window", "must be between 10m and 168h, not %s", c.Window)
	case c.Maturity < 0:
		return bad("maturity", "must not be negative")
	case full.Maturity+slotOf(full.Window) >= full.Window:
		return bad("maturity", "%s (the verification lifetime unless set) leaves nothing of window %s to judge: make the window longer, or the maturity shorter by a minute at least", full.Maturity, full.Window)
	case c.MinSends < 0:
		return bad("min_sends", "must not be negative")
	case c.MinRatio < 0 || c.MinRatio >= 1:
		return bad("min_ratio", "must be between 0 and 1, not %g", c.MinRatio)
	case c.Block < 0:
		return bad("block", "must not be negative")
	case c.PrefixDigits < 0 || c.PrefixDigits > 12:
		return bad("prefix_digits", "must be between 1 and 12, not %d", c.PrefixDigits)
	case c.FlushEvery < 0, c.FlushEvery > 0 && c.FlushEvery < 100*time.Millisecond, c.FlushEvery > time.Minute:
		return bad("flush_every", "must be between 100ms and 1m, not %s", c.FlushEvery)
	}
	return nil
}

// slotOf is the length of one counting slot for window: a sixtieth of it,
// at least a minute. A prefix's counts are then at most 120 small fields.
func slotOf(window time.Duration) time.Duration {
	return max(time.Minute, window/60)
}
