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

// ObserveApprovals returns an Observer that tells events (if not nil) of
// the events Report records and approvals (if not nil) of every approval by
// a check, or nil when both are nil.
func ObserveApprovals(events EventObserver, approvals ApprovalObserver) EventObserver {
	if events == nil && approvals == nil {
		return nil
	}
	return observers{events, approvals}
}

type observers struct {
	events    EventObserver
	approvals ApprovalObserver
}

func (o observers) Observe(ctx context.Context, v *Verification, ev Event) {
	if o.events != nil {
		o.events.Observe(ctx, v, ev)
	}
}

func (o observers) Approved(ctx context.Context, v *Verification) {
	if o.approvals != nil {
		o.approvals.Approved(ctx, v)
	}
}

// DetailApprovedByClient is the Detail of the EventApproved that Approve
// records: it tells an approval without a code from one by a check.
const DetailApprovedByClient = "approved by the client without a code"

// Approve ends the tenant's pending verification id as approved without a
// code: the client proved the person some other way (Twilio Verify's
// update to status approved). It is not an approval by a check, so the
// ApprovalObserver (the SMS-pumping watch, which counts typed codes) is
// not told.
//
// Errors: ErrNotFound; *NotPendingError; ErrUnavailable when the store fails.
func (s *Service) Approve(ctx context.Context, tenant, id string) (*Verification, error) {
	v, err := s.cfg.Store.Transition(ctx, tenant, id, StatusApproved, "", Event{
		Type: EventApproved, At: s.cfg.Now(), Detail: DetailApprovedByClient,
	})
	if err != nil {
		return nil, unavailableUnless(err, ErrNotFound, ErrNotPending)
	}
	s.log.Info("verification approved by the client", "verification", v.ID, "tenant", v.Tenant, "to", MaskNumber(v.To))
	s.notify(v)
	s.ended(v, lastEvent(v))
	return v, nil
}
