package verify_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/verify"
)

// logRecorder is a slog.Handler that writes each record as one line,
// keeping the attributes a logger got from With apart from the record's
// own (as cmd/verigate's demo handler does), and counts With calls.
type logRecorder struct {
	min   slog.Level
	log   *recordedLog
	attrs []slog.Attr
}

type recordedLog struct {
	mu    sync.Mutex
	lines []string
	withs int
}

func (h logRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }

func (h logRecorder) Handle(_ context.Context, r slog.Record) error {
	line := r.Level.String() + " " + r.Message + " |"
	for _, a := range h.attrs {
		line += " " + a.String()
	}
	line += " |"
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	h.log.mu.Lock()
	defer h.log.mu.Unlock()
	h.log.lines = append(h.log.lines, line)
	return nil
}

func (h logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	h.log.mu.Lock()
	defer h.log.mu.Unlock()
	h.log.withs++
	h.attrs = append(slices.Clip(h.attrs), as...)
	return h
}

func (h logRecorder) WithGroup(string) slog.Handler { panic("verify does not log in groups") }

// idStore is a Store that remembers the ids of the verifications it
// started, oldest first.
type idStore struct {
	verify.Store
	ids *[]string
}

func (s idStore) Start(ctx context.Context, sub verify.SendSubject, v *verify.Verification, hash string, now time.Time) (*verify.Verification, bool, error) {
	got, resent, err := s.Store.Start(ctx, sub, v, hash, now)
	if err == nil {
		*s.ids = append(*s.ids, got.ID)
	}
	return got, resent, err
}

// TestStartLogs pins what a start logs at each level (a new verification,
// a resend, a failed delivery), and that a successful start whose records
// are all off does not build the logger with the verification's
// attributes.
func TestStartLogs(t *testing.T) {
	for _, tc := range []struct {
		level     slog.Level
		want      []string // %[1]s is the verification's attributes; %[2]s the second one's
		wantWiths int
	}{
		{slog.LevelDebug, []string{
			"INFO verification started | %[1]s |",
			"DEBUG delivered | %[1]s | ref=test-sms-%[3]s",
			"INFO verification resent | %[1]s | sends=2",
			"DEBUG delivered | %[1]s | ref=test-sms-%[3]s",
			"INFO verification started | %[2]s |",
			"WARN delivery failed | %[2]s | err=provider down",
		}, 3},
		{slog.LevelInfo, []string{
			"INFO verification started | %[1]s |",
			"INFO verification resent | %[1]s | sends=2",
			"INFO verification started | %[2]s |",
			"WARN delivery failed | %[2]s | err=provider down",
		}, 3},
		{slog.LevelWarn, []string{
			"WARN delivery failed | %[2]s | err=provider down",
		}, 1},
		{slog.LevelError + 4, nil, 1}, // a failed delivery builds it regardless: failures are rare
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			rec := &recordedLog{}
			var ids []string
			s := verifytest.NewService(t,
				verifytest.WithPolicies(ratelimit.Policy{Name: "n", Scope: ratelimit.ScopeNumber, Channel: verify.ChannelSMS, Limit: 100, Window: time.Hour}),
				verifytest.WithConfig(func(c *verify.Config) {
					c.Router = fixedRouter{verify.Route{Channel: verify.ChannelSMS, Provider: verifytest.Provider}}
					c.Logger = slog.New(logRecorder{min: tc.level, log: rec})
					c.Store = idStore{c.Store, &ids}
				}))
			ctx := context.Background()
			for range 2 { // a new verification, then a resend of it
				if _, err := s.Start(ctx, verify.StartRequest{Tenant: "acme", To: "+4915123456789"}); err != nil {
					t.Fatal(err)
				}
			}
			s.Sender.Fail(errors.New("provider down"))
			if _, err := s.Start(ctx, verify.StartRequest{Tenant: "acme", To: "+4915198765432"}); !errors.Is(err, verify.ErrUnavailable) {
				t.Fatalf("failed delivery: %v, want ErrUnavailable", err)
			}
			if len(ids) != 3 || ids[0] != ids[1] || ids[1] == ids[2] {
				t.Fatalf("stored verifications %v, want one started, resent, then another", ids)
			}

			attrs := func(id, to string) string {
				return "verification=" + id + " tenant=acme to=" + to + " channel=sms provider=test"
			}
			var want []string
			for _, w := range tc.want {
				want = append(want, fmt.Sprintf(w, attrs(ids[0], "+49151*****789"), attrs(ids[2], "+49151*****432"), ids[0]))
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if !slices.Equal(rec.lines, want) {
				t.Errorf("logged:\n%s\nwant:\n%s", strings.Join(rec.lines, "\n"), strings.Join(want, "\n"))
			}
			if rec.withs != tc.wantWiths {
				t.Errorf("%d With calls, want %d", rec.withs, tc.wantWiths)
			}
		})
	}
}
