package logbound_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/logbound"
	"github.com/verigate/verigate/internal/verifytest"
)

// newLogger returns a logger through a Handler over a JSON handler at
// level, and a function returning the lines logged so far, decoded.
func newLogger(t *testing.T, level slog.Level, o logbound.Options) (*slog.Logger, func() []map[string]any) {
	t.Helper()
	var mu sync.Mutex
	var buf bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	})
	h := logbound.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}), o)
	return slog.New(h), func() []map[string]any {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		var lines []map[string]any
		sc := bufio.NewScanner(bytes.NewReader(buf.Bytes()))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			lines = append(lines, m)
		}
		return lines
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

type stringer string

func (s stringer) String() string { return string(s) }

func TestTruncate(t *testing.T) {
	long := strings.Repeat("x", 1000)
	// 'é' is two bytes: a cut at 10 would split the fifth one.
	accents := strings.Repeat("é", 20)
	for _, tc := range []struct {
		name string
		log  func(l *slog.Logger)
		key  string // "" is the message
		want string
	}{
		{"short message kept", func(l *slog.Logger) { l.Info("hello") }, "", "hello"},
		{"long message", func(l *slog.Logger) { l.Info(long) }, "", strings.Repeat("x", 10) + "… [1000 bytes]"},
		{"string value", func(l *slog.Logger) { l.Info("m", "data", long) }, "data", strings.Repeat("x", 10) + "… [1000 bytes]"},
		{"cut at a character boundary", func(l *slog.Logger) { l.Info("m", "data", accents) }, "data", strings.Repeat("é", 5) + "… [40 bytes]"},
		{"error value", func(l *slog.Logger) { l.Info("m", "error", errors.New(long)) }, "error", strings.Repeat("x", 10) + "… [1000 bytes]"},
		{"stringer value", func(l *slog.Logger) { l.Info("m", "v", stringer(long)) }, "v", strings.Repeat("x", 10) + "… [1000 bytes]"},
		{"bytes value", func(l *slog.Logger) { l.Info("m", "v", []byte(long)) }, "v", strings.Repeat("x", 10) + "… [1000 bytes]"},
		{"other value printed", func(l *slog.Logger) { l.Info("m", "v", []string{long}) }, "v", "[" + strings.Repeat("x", 9) + "… [1002 bytes]"},
		{"value of WithAttrs", func(l *slog.Logger) { l.With("w", long).Info("m") }, "w", strings.Repeat("x", 10) + "… [1000 bytes]"},
		{"value in a group", func(l *slog.Logger) { l.Info("m", slog.Group("g", "data", long)) }, "g.data", strings.Repeat("x", 10) + "… [1000 bytes]"},
		{"number kept", func(l *slog.Logger) { l.Info("m", "n", 12345) }, "n", "12345"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, lines := newLogger(t, slog.LevelInfo, logbound.Options{MaxValue: 10, MaxRecord: 100})
			tc.log(l)
			got := lines()
			if len(got) != 1 {
				t.Fatalf("%d lines, want 1", len(got))
			}
			var v any
			if tc.key == "" {
				v = got[0][slog.MessageKey]
			} else {
				v = got[0]
				for _, k := range strings.Split(tc.key, ".") {
					v = v.(map[string]any)[k]
				}
			}
			if s := fmt.Sprint(v); s != tc.want {
				t.Fatalf("%s = %q, want %q", tc.key, s, tc.want)
			}
		})
	}
}

func TestRecordBudget(t *testing.T) {
	l, lines := newLogger(t, slog.LevelInfo, logbound.Options{MaxValue: 10, MaxRecord: 100})
	// Each attribute costs 1 (key) + 26 (the value shortened to 10 bytes
	// and "… [100 bytes]"): the fourth spends the 100, the other six are
	// dropped.
	var args []any
	for i := range 10 {
		args = append(args, fmt.Sprint(i), strings.Repeat("v", 100))
	}
	l.Info("m", args...)
	got := lines()
	if len(got) != 1 {
		t.Fatalf("%d lines", len(got))
	}
	for i := range 10 {
		_, ok := got[0][fmt.Sprint(i)]
		if ok != (i < 4) {
			t.Errorf("attribute %d present %v", i, ok)
		}
	}
	if n := got[0][logbound.DroppedAttrsKey]; n != 6.0 {
		t.Errorf("%s = %v, want 6", logbound.DroppedAttrsKey, n)
	}
}

func TestRateLimit(t *testing.T) {
	type step struct {
		advance time.Duration
		level   slog.Level
		msg     string
		n       int // records logged
	}
	type want struct {
		msg        string
		suppressed float64 // 0: no count on the line
	}
	for _, tc := range []struct {
		name  string
		steps []step
		want  []want
	}{
		{
			name:  "burst passes, the rest held back",
			steps: []step{{0, slog.LevelWarn, "a", 10}},
			want:  []want{{"a", 0}, {"a", 0}, {"a", 0}},
		},
		{
			name:  "count reported when the next interval lets one through",
			steps: []step{{0, slog.LevelWarn, "a", 10}, {time.Minute, slog.LevelWarn, "a", 1}},
			want:  []want{{"a", 0}, {"a", 0}, {"a", 0}, {"a", 7}},
		},
		{
			name:  "still limited within the interval",
			steps: []step{{0, slog.LevelWarn, "a", 3}, {59 * time.Second, slog.LevelWarn, "a", 2}},
			want:  []want{{"a", 0}, {"a", 0}, {"a", 0}},
		},
		{
			name:  "messages counted apart",
			steps: []step{{0, slog.LevelWarn, "a", 5}, {0, slog.LevelWarn, "b", 5}},
			want:  []want{{"a", 0}, {"a", 0}, {"a", 0}, {"b", 0}, {"b", 0}, {"b", 0}},
		},
		{
			name:  "levels counted apart",
			steps: []step{{0, slog.LevelWarn, "a", 4}, {0, slog.LevelError, "a", 1}},
			want:  []want{{"a", 0}, {"a", 0}, {"a", 0}, {"a", 0}},
		},
		{
			name:  "debug not limited",
			steps: []step{{0, slog.LevelDebug, "a", 5}},
			want:  []want{{"a", 0}, {"a", 0}, {"a", 0}, {"a", 0}, {"a", 0}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := verifytest.NewClock(verifytest.Epoch)
			l, lines := newLogger(t, slog.LevelDebug, logbound.Options{Burst: 3, Interval: time.Minute, Now: clk.Now})
			for _, s := range tc.steps {
				clk.Add(s.advance)
				for range s.n {
					l.Log(context.Background(), s.level, s.msg)
				}
			}
			got := lines()
			if len(got) != len(tc.want) {
				t.Fatalf("%d lines, want %d: %v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				n, _ := got[i][logbound.SuppressedKey].(float64)
				if got[i][slog.MessageKey] != w.msg || n != w.suppressed {
					t.Errorf("line %d: %v, want %q with %v suppressed", i, got[i], w.msg, w.suppressed)
				}
			}
		})
	}
}

func TestLevelRemap(t *testing.T) {
	quiet := func(msg string, l slog.Level) slog.Level {
		if msg == "noise" {
			return slog.LevelWarn
		}
		return l
	}
	for _, tc := range []struct {
		name      string
		threshold slog.Level
		msg       string
		want      string // level logged, "" for none
	}{
		{"lowered to warn", slog.LevelInfo, "noise", "WARN"},
		{"lowered below the threshold", slog.LevelError, "noise", ""},
		{"other messages keep their level", slog.LevelInfo, "real", "ERROR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, lines := newLogger(t, tc.threshold, logbound.Options{Level: quiet})
			l.Error(tc.msg)
			got := lines()
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("logged %v, want nothing", got)
				}
				return
			}
			if len(got) != 1 || got[0][slog.LevelKey] != tc.want {
				t.Fatalf("logged %v, want one line at %s", got, tc.want)
			}
		})
	}
}

// TestSharedAcrossWith: loggers derived with With and WithGroup count
// against the same budget, as sipgo derives one per transaction.
func TestSharedAcrossWith(t *testing.T) {
	l, lines := newLogger(t, slog.LevelInfo, logbound.Options{Burst: 2})
	for i := range 10 {
		l.With("tx", i).WithGroup("g").Warn("failed to parse")
	}
	if got := lines(); len(got) != 2 {
		t.Fatalf("%d lines, want 2", len(got))
	}
}

// TestManyMessages: messages past MaxKinds share one budget, so a flood of
// distinct messages neither grows the counts without bound nor passes.
func TestManyMessages(t *testing.T) {
	l, lines := newLogger(t, slog.LevelInfo, logbound.Options{Burst: 1, MaxKinds: 8})
	for i := range 1000 {
		l.Warn(fmt.Sprintf("message %d", i))
	}
	if got := lines(); len(got) != 9 { // 8 kinds tracked, one line of the rest
		t.Fatalf("%d lines, want 9", len(got))
	}
}

func TestConcurrent(t *testing.T) {
	l, lines := newLogger(t, slog.LevelInfo, logbound.Options{Burst: 5})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				l.With("g", g).Warn("m", "i", i)
			}
		})
	}
	wg.Wait()
	if got := lines(); len(got) != 5 {
		t.Fatalf("%d lines, want 5", len(got))
	}
}
