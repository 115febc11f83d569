package store_test

import (
	"testing"

	"github.com/verigate/verigate/internal/storetest"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/verify"
)

func TestMemoryContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) verify.Store {
		// No policies: every start consumes (a block would deny), none is denied.
		lim, err := ratelimit.NewMemory(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return store.Limited{Memory: store.NewMemory(), Limits: lim}
	})
}

func TestMemoryChanges(t *testing.T) {
	storetest.RunChanges(t, func(t *testing.T) (verify.Store, []verify.Changes) {
		lim, err := ratelimit.NewMemory(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := store.NewMemory()
		return store.Limited{Memory: m, Limits: lim}, []verify.Changes{m}
	})
}
