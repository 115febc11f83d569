package ratelimit_test

import (
	"testing"
	"time"

	"github.com/verigate/verigate/internal/limittest"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/verify"
)

func TestMemoryContract(t *testing.T) {
	limittest.Run(t, func(t *testing.T, p []ratelimit.Policy, now func() time.Time) verify.Limiter {
		l, err := ratelimit.NewMemory(p, now)
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}
