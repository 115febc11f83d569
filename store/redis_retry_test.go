package store_test

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/internal/storetest"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/verify"
)

// evalCalls is how many scripts the server has run (INFO commandstats).
func evalCalls(t *testing.T, c *redis.Client) int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for line := range strings.SplitSeq(info, "\n") {
		if !strings.HasPrefix(line, "cmdstat_evalsha:") && !strings.HasPrefix(line, "cmdstat_eval:") {
			continue
		}
		calls := strings.TrimPrefix(line[strings.Index(line, "calls="):], "calls=")
		n, _ := strconv.Atoi(calls[:strings.IndexByte(calls, ',')])
		total += n
	}
	return total
}

// TestStartSurvivesRetriedScript stalls Redis (SIGSTOP) for longer than
// the client's read timeout while a start's script is in flight: go-redis
// gives up on the connection and sends the script again on another, and
// when Redis resumes it runs both. The start must count once: a fresh
// number gets a new verification with one send and one entry in each
// limit, not a "resend" of itself, on a plain and on an auto-pipelined
// client, when the start is new and when it is a resend.
func TestStartSurvivesRetriedScript(t *testing.T) {
	srv := redistest.StartServer(t)
	admin := srv.Client(t)
	for _, pipelined := range []bool{false, true} {
		for _, resend := range []bool{false, true} {
			name := "plain"
			if pipelined {
				name = "auto-pipelined"
			}
			if resend {
				name += "/resend"
			}
			t.Run(name, func(t *testing.T) {
				var c redis.UniversalClient = redis.NewClient(&redis.Options{
					Addr: srv.Addr(), ReadTimeout: 700 * time.Millisecond, WriteTimeout: 700 * time.Millisecond,
					MaxRetries: 3, MinRetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 20 * time.Millisecond,
				})
				t.Cleanup(func() { c.Close() })
				if pipelined {
					var err error
					if c, err = store.AutoPipeline(c); err != nil {
						t.Fatal(err)
					}
				}
				prefix := redistest.Prefix(t)
				svc, sender := redisService(t, c, prefix)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				// Connections made and scripts loaded before the stall: the
				// stall is to hit the start script itself.
				if _, err := svc.Start(ctx, verify.StartRequest{Tenant: "acme", To: storetest.Number(t)}); err != nil {
					t.Fatal(err)
				}
				sender.sent.Store(0)
				to := storetest.Number(t)
				wantSends := 1
				if resend {
					if _, err := svc.Start(ctx, verify.StartRequest{Tenant: "acme", To: to}); err != nil {
						t.Fatal(err)
					}
					wantSends = 2
				}
				before := evalCalls(t, admin)

				// Stall Redis for 1.2 s: the first try times out at 0.7 s
				// and the retry waits for Redis with it.
				pid := srv.Pid()
				if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				resume := time.AfterFunc(1200*time.Millisecond, func() { syscall.Kill(pid, syscall.SIGCONT) })
				t.Cleanup(func() { resume.Stop(); syscall.Kill(pid, syscall.SIGCONT) })
				v, err := svc.Start(ctx, verify.StartRequest{Tenant: "acme", To: to})
				if err != nil {
					t.Fatalf("start across the stall: %v", err)
				}
				if runs := evalCalls(t, admin) - before; runs < 2 {
					t.Fatalf("Redis ran the start script %d times: the stall did not make the client retry, so this test proves nothing", runs)
				}
				if v.Sends != wantSends {
					t.Errorf("start answered sends %d, want %d", v.Sends, wantSends)
				}
				got, err := svc.Get(ctx, "acme", v.ID)
				if err != nil {
					t.Fatal(err)
				}
				resends := 0
				for _, ev := range got.Events {
					if ev.Type == verify.EventResent {
						resends++
					}
				}
				if got.Sends != wantSends || resends != wantSends-1 {
					t.Errorf("stored sends %d and %d resent events, want %d and %d", got.Sends, resends, wantSends, wantSends-1)
				}
				if n := sender.sent.Load(); n != int64(wantSends) {
					t.Errorf("%d SMS sent, want %d", n, wantSends)
				}
				// The limit counted the start once: the number's SMS
				// bucket holds one entry per send.
				keys, err := admin.Keys(ctx, prefix+"rl:{number_sms:"+to+"}").Result()
				if err != nil || len(keys) != 1 {
					t.Fatalf("limit bucket keys %v, %v", keys, err)
				}
				if n, _ := admin.ZCard(ctx, keys[0]).Result(); n != int64(wantSends) {
					t.Errorf("limit bucket holds %d sends, want %d", n, wantSends)
				}
			})
		}
	}
}
