package store_test

import (
	"testing"

	"github.com/verigate/verigate/internal/storetest"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/verify"
)

func TestMemoryContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) verify.Store { return store.NewMemory() })
}

func TestMemoryChanges(t *testing.T) {
	storetest.RunChanges(t, func(*testing.T) (verify.Store, []verify.Changes) {
		m := store.NewMemory()
		return m, []verify.Changes{m}
	})
}
