package sip

import (
	"log/slog"
	"sync"

	"github.com/emiago/sipgo/sip"

	"github.com/verigate/verigate/internal/logbound"
)

// stackNoise are the messages sipgo logs at ERROR for input anyone can
// send: a datagram that does not parse (logged with the whole datagram),
// a request too malformed for a transaction, a response it cannot match.
// They are the sender's problem, not the gateway's: WARN, rate-limited.
var stackNoise = map[string]bool{
	"failed to parse": true,
	"Failed to send stateless 400 for malformed request": true,
	"Server tx failed to handle request":                 true,
	"Client tx failed to handle response":                true,
	"unsupported message, skip it":                       true,
}

// stackLevel is the level a line of sipgo is logged at.
func stackLevel(msg string, level slog.Level) slog.Level {
	if level > slog.LevelWarn && stackNoise[msg] {
		return slog.LevelWarn
	}
	return level
}

// boundedLogger returns a logger writing to log's handler through a
// logbound.Handler with its defaults: values over 256 bytes shortened, at
// most 10 lines of one message a minute at INFO and above.
func boundedLogger(log *slog.Logger, level func(string, slog.Level) slog.Level) *slog.Logger {
	return slog.New(logbound.New(log.Handler(), logbound.Options{Level: level}))
}

// stackLogger is boundedLogger with sipgo's noise lowered to WARN.
func stackLogger(log *slog.Logger) *slog.Logger {
	return boundedLogger(log, stackLevel)
}

// SetStackLogger sends the lines sipgo logs outside a user agent (through
// its package-wide default logger: connection bookkeeping, headers parsed
// late) to log, bounded as the user agents' own lines are. sipgo keeps
// that logger in a package variable that it reads unguarded, so only the
// first call takes effect: the binary makes it once at start, before any
// user agent runs. Until then those lines go to slog.Default.
func SetStackLogger(log *slog.Logger) {
	setStackLogger.Do(func() {
		sip.SetDefaultLogger(stackLogger(log).With("component", "sipgo"))
	})
}

var setStackLogger sync.Once

// trunc shortens what a peer chose (a method, a content type) before it is
// logged; logbound bounds the record as a whole.
func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
