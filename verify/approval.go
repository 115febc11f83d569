package verify

import "context"

// ApprovalObserver learns of every verification a code check approves:
// the SMS-pumping watch counts approvals per destination prefix against
// the SMS sent there. A Config.Observer that implements it is told.
type ApprovalObserver interface {
	// Approved is told that v, as the check left it, was approved. It
	// runs in the checking request and must not block.
	Approved(ctx context.Context, v *Verification)
}

// approved tells the Observer, when it is an ApprovalObserver, that a
// check approved v.
func (s *Service) approved(ctx context.Context, v *Verification) {
	if v.Status != StatusApproved {
		return
	}
	if o, ok := s.cfg.Observer.(ApprovalObserver); ok {
		o.Approved(ctx, v)
	}
}
