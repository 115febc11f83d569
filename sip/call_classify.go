package sip

import (
	"context"
	"errors"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/verigate/verigate/verify"
)

// ClassifyResponse maps the final status of an INVITE that was not
// answered to the verification event that reports it:
//
//	486 Busy Here, 600 Busy Everywhere                  busy
//	480 Temporarily Unavailable, 408 Request Timeout,
//	487 Request Terminated (our CANCEL after the ring timeout)   no_answer
//	404 Not Found, 484 Address Incomplete               invalid_number
//	403 Forbidden, 603 Decline                          rejected
//	any other 4xx, 5xx or 6xx                           failed
func ClassifyResponse(code int) verify.EventType {
	switch code {
	case 486, 600:
		return verify.EventBusy
	case 480, 408, 487:
		return verify.EventNoAnswer
	case 404, 484:
		return verify.EventInvalidNumber
	case 403, 603:
		return verify.EventRejected
	}
	return verify.EventFailed
}

// inviteOutcome is how an unanswered INVITE ended.
type inviteOutcome struct {
	event  verify.EventType
	code   int    // SIP status, 0 when none came
	detail string // short, without numbers or secrets
}

// classifyInviteError turns what WaitAnswer returned into the event to
// report. ringCtx is the ring timer's context, ownerCtx the Caller's.
func classifyInviteError(err error, ringCtx, ownerCtx context.Context) inviteOutcome {
	var res *sip.Response
	var drp *sipgo.ErrDialogResponse
	var drv sipgo.ErrDialogResponse
	switch {
	case errors.As(err, &drp) && drp != nil:
		res = drp.Res
	case errors.As(err, &drv):
		res = drv.Res
	}
	if res != nil {
		out := inviteOutcome{event: ClassifyResponse(res.StatusCode), code: res.StatusCode, detail: res.Reason}
		if res.StatusCode == 401 || res.StatusCode == 407 {
			out.detail = "authentication failed: check the trunk's username and password"
		}
		return out
	}
	switch {
	case ownerCtx.Err() != nil:
		return inviteOutcome{event: verify.EventFailed, detail: "gateway shutting down"}
	case errors.Is(ringCtx.Err(), context.DeadlineExceeded):
		return inviteOutcome{event: verify.EventNoAnswer, detail: "ring timeout: canceled"}
	}
	return inviteOutcome{event: verify.EventFailed, detail: "no response from trunk"}
}
