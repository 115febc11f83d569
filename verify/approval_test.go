package verify_test

import (
	"context"
	"sync"
	"testing"

	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/verify"
)

// approvals is an Observer that also counts approvals.
type approvals struct {
	mu  sync.Mutex
	ids []string
}

func (a *approvals) Observe(context.Context, *verify.Verification, verify.Event) {}

func (a *approvals) Approved(_ context.Context, v *verify.Verification) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ids = append(a.ids, v.ID+":"+string(v.Status))
}

func (a *approvals) seen() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.ids...)
}

// TestApprovalObserver: an Observer that is an ApprovalObserver hears of
// every approval by a check (by id and by number), and of nothing else.
func TestApprovalObserver(t *testing.T) {
	obs := &approvals{}
	s := verifytest.NewService(t, verifytest.WithConfig(func(c *verify.Config) { c.Observer = obs }))
	ctx := context.Background()
	a, err := s.Start(ctx, verify.StartRequest{Tenant: "acme", To: "+4915123456701"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Start(ctx, verify.StartRequest{Tenant: "acme", To: "+4915123456702"})
	if err != nil {
		t.Fatal(err)
	}
	code := s.Sender.LastCode(t, a.To)
	wrong := string('0'+(code[0]-'0'+1)%10) + code[1:]
	if v, err := s.Check(ctx, "acme", a.ID, wrong); err != nil || v.Status != verify.StatusPending {
		t.Fatalf("wrong code: %v, %v", v, err)
	}
	if got := obs.seen(); len(got) != 0 {
		t.Errorf("a wrong code was seen as an approval: %v", got)
	}
	if _, err := s.Check(ctx, "acme", a.ID, code); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckByNumber(ctx, "acme", b.To, s.Sender.LastCode(t, b.To)); err != nil {
		t.Fatal(err)
	}
	if got, want := obs.seen(), []string{a.ID + ":approved", b.ID + ":approved"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("approvals seen %v, want %v", got, want)
	}
}

func TestObserveApprovals(t *testing.T) {
	if o := verify.ObserveApprovals(nil, nil); o != nil {
		t.Errorf("ObserveApprovals(nil, nil) = %v, want nil", o)
	}
	a := &approvals{}
	o := verify.ObserveApprovals(nil, a)
	o.Observe(context.Background(), &verify.Verification{}, verify.Event{Type: verify.EventDelivered})
	o.(verify.ApprovalObserver).Approved(context.Background(), &verify.Verification{ID: "VE1", Status: verify.StatusApproved})
	if got := a.seen(); len(got) != 1 || got[0] != "VE1:approved" {
		t.Errorf("approvals %v, want VE1", got)
	}
}
