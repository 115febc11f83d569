package radius

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/verigate/verigate/directory"
	"github.com/verigate/verigate/verify"
)

// Reply-Messages.
const (
	msgWrongPassword = "Wrong user name or password."
	msgNoPhone       = "No phone number is registered for your account. Contact your administrator."
	msgUnavailable   = "Verification is not available right now. Please try again later."
	msgApproved      = "Your account has been verified."
	msgNotApproved   = "The call was not approved."
	msgFraud         = "You reported this sign-in as fraud. It was blocked."
	msgNoAnswer      = "The call was not answered in time."
	msgWrongCode     = "That code is not right."
	msgBadState      = "This sign-in has expired. Please start again."
	msgChoose        = "Reply call or sms."
)

// login is one Access-Request in hand.
type login struct {
	req    *radius.Packet
	cl     client
	from   netip.AddrPort
	user   string
	to     string // the number chosen, E.164
	log    []any
	reason string // metrics label of the decision
}

func (s *Server) handle(ctx context.Context, req *radius.Packet, cl client, from netip.AddrPort) *radius.Packet {
	l := &login{req: req, cl: cl, from: from, user: rfc2865.UserName_GetString(req)}
	resp := s.decide(ctx, l)
	code := resp.Code.String()
	s.decisions.WithLabelValues(code, l.reason).Inc()
	args := append([]any{"decision", code, "reason", l.reason, "user", l.user, "nas", from.Addr().String(),
		"client", cl.name, "id", req.Identifier}, l.log...)
	if l.to != "" {
		args = append(args, "to", verify.MaskNumber(l.to))
	}
	if nasID := rfc2865.NASIdentifier_GetString(req); nasID != "" {
		args = append(args, "nas_id", nasID)
	}
	s.log.Info("radius decision", args...)
	return resp
}

// reply is the one place every answer is made (Accept, Reject, Challenge,
// and Status-Server's Accept): encodeSigned then adds the
// Message-Authenticator over the finished packet.
func reply(req *radius.Packet, code radius.Code, msg string) *radius.Packet {
	r := req.Response(code)
	// RFC 2865 §5.33: every Proxy-State goes back unchanged and in order,
	// or a proxy in front cannot match the answer to its request
	// (layeh's Response copies none).
	for _, a := range req.Attributes {
		if a.Type == rfc2865.ProxyState_Type {
			r.Attributes = append(r.Attributes, &radius.AVP{Type: a.Type, Attribute: bytes.Clone(a.Attribute)})
		}
	}
	if msg != "" {
		_ = rfc2865.ReplyMessage_SetString(r, msg)
	}
	return r
}

func (s *Server) reject(l *login, reason, msg string) *radius.Packet {
	l.reason = reason
	return reply(l.req, radius.CodeAccessReject, msg)
}

// decide runs the login: a challenge answer, or primary authentication
// then the second factor. Neither the password nor a code is logged.
func (s *Server) decide(ctx context.Context, l *login) *radius.Packet {
	if l.user == "" || len(l.user) > 253 {
		return s.reject(l, "no_user", msgWrongPassword)
	}
	pw, err := rfc2865.UserPassword_Lookup(l.req)
	if err != nil {
		// CHAP, MS-CHAP and EAP cannot be checked against a directory
		// bind or forwarded as PAP.
		return s.reject(l, "not_pap", msgWrongPassword)
	}
	password := strings.TrimRight(string(pw), "\x00")
	if state := rfc2865.State_Get(l.req); state != nil {
		ch, ok := s.states.take(state, l.user, l.from.Addr())
		if !ok {
			return s.reject(l, "bad_state", msgBadState)
		}
		return s.answerChallenge(ctx, l, ch, strings.TrimSpace(password))
	}
	// The NPS extension's convention: "password,123456" is the password
	// and the code of an SMS sent before. A real password of that shape
	// must still log in, so the split is a guess checked twice: the part
	// before the comma first (the usual NPS login costs one bind, not a
	// failed one that counts towards a directory's lockout), then the
	// whole; never more than two checks.
	code := ""
	err = ErrWrongPassword
	if i := strings.LastIndexByte(password, ','); i >= 0 && isCode(password[i+1:]) {
		if err = s.primary.CheckPassword(ctx, l.user, password[:i]); err == nil {
			code = password[i+1:]
		}
	}
	if errors.Is(err, ErrWrongPassword) {
		err = s.primary.CheckPassword(ctx, l.user, password)
	}
	if err != nil {
		if errors.Is(err, ErrWrongPassword) {
			return s.reject(l, "wrong_password", msgWrongPassword)
		}
		l.log = append(l.log, "err", err)
		return s.reject(l, "primary_unavailable", msgUnavailable)
	}
	num, resp := s.number(ctx, l)
	if resp != nil {
		return resp
	}
	l.to = num.E164
	if code != "" {
		v, err := s.opts.Verifier.CheckByNumber(ctx, s.cfg.Tenant, num.E164, code)
		// Nothing pending to check: the digits were the password's own
		// (primary none checks nothing, so the first guess always
		// passes there), and the second factor runs as for any login.
		if !errors.Is(err, verify.ErrNotFound) {
			return s.checked(l, v, err, nil)
		}
		l.log = append(l.log, "comma_code", "nothing_pending")
	}
	if s.cfg.SecondFactor == "sms" {
		return s.sendSMS(ctx, l, num)
	}
	return s.call(ctx, l)
}

// number finds the person's phone: the first mobile, else the first
// number the directory has.
func (s *Server) number(ctx context.Context, l *login) (directory.Number, *radius.Packet) {
	q := directory.Query{Username: l.user}
	if strings.Contains(l.user, "@") {
		q = directory.Query{UPN: l.user}
	}
	u, err := s.opts.Directory.Lookup(ctx, q)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return directory.Number{}, s.reject(l, "unknown_user", msgNoPhone)
	case err != nil:
		l.log = append(l.log, "err", err)
		return directory.Number{}, s.reject(l, "directory_unavailable", msgUnavailable)
	}
	if n, ok := u.Mobile(); ok {
		return n, nil
	}
	if len(u.Numbers) > 0 {
		return u.Numbers[0], nil
	}
	return directory.Number{}, s.reject(l, "no_number", msgNoPhone)
}

// call rings the phone and waits for the press of # (or 0#, or nothing)
// within AnswerTimeout.
func (s *Server) call(ctx context.Context, l *login) *radius.Packet {
	v, err := s.opts.Verifier.Start(ctx, verify.StartRequest{
		Tenant: s.cfg.Tenant, To: l.to, Channel: verify.ChannelCall, CallMode: verify.CallModeApprove,
		Locale: s.cfg.Locale, UserID: l.user,
		Own: true, // never another login's verification: one # would approve both
	})
	if err != nil {
		return s.startFailed(l, err)
	}
	l.log = append(l.log, "verification", v.ID)
	v, err = s.opts.Verifier.Wait(ctx, s.cfg.Tenant, v.ID, s.cfg.AnswerTimeout)
	if err != nil {
		l.log = append(l.log, "err", err)
		return s.reject(l, "unavailable", msgUnavailable)
	}
	switch {
	case v.Status == verify.StatusApproved:
		l.reason = "approved"
		return reply(l.req, radius.CodeAccessAccept, msgApproved)
	case v.Status == verify.StatusPending:
		// Too late now: a # pressed after the NAS gave up must not
		// approve anything.
		if _, err := s.opts.Verifier.Cancel(context.WithoutCancel(ctx), s.cfg.Tenant, v.ID); err != nil {
			l.log = append(l.log, "cancel_err", err)
		}
		return s.reject(l, "no_answer", msgNoAnswer)
	case v.Reason == "fraud_reported":
		return s.reject(l, "fraud_reported", msgFraud)
	}
	l.log = append(l.log, "status", v.Status, "status_reason", v.Reason)
	return s.reject(l, "not_approved", msgNotApproved)
}

// sendSMS texts a code and challenges for it.
func (s *Server) sendSMS(ctx context.Context, l *login, num directory.Number) *radius.Packet {
	if num.Kind != directory.KindMobile {
		return s.reject(l, "no_mobile", msgNoPhone)
	}
	v, err := s.opts.Verifier.Start(ctx, verify.StartRequest{
		Tenant: s.cfg.Tenant, To: l.to, Channel: verify.ChannelSMS, Locale: s.cfg.Locale, UserID: l.user,
		Own: true,
	})
	if err != nil {
		return s.startFailed(l, err)
	}
	l.log = append(l.log, "verification", v.ID)
	return s.challenge(l, challenge{to: l.to, verID: v.ID}, "Enter the code we sent to "+directory.DisplayMask(l.to))
}

func (s *Server) challenge(l *login, ch challenge, msg string) *radius.Packet {
	ch.user, ch.client = l.user, l.from.Addr()
	state, ok := s.states.put(ch)
	if !ok {
		return s.reject(l, "overloaded", msgUnavailable)
	}
	l.reason = "challenge"
	r := reply(l.req, radius.CodeAccessChallenge, msg)
	_ = rfc2865.State_Set(r, state)
	return r
}

// answerChallenge takes the reply to an Access-Challenge: a code, or the
// NPS extension's "call" or "sms" to choose the channel.
func (s *Server) answerChallenge(ctx context.Context, l *login, ch challenge, answer string) *radius.Packet {
	l.to = ch.to
	switch strings.ToLower(answer) {
	case "call":
		return s.call(ctx, l)
	case "sms":
		return s.sendSMS(ctx, l, directory.Number{E164: ch.to, Kind: directory.KindMobile})
	}
	if !isCode(answer) || ch.verID == "" {
		return s.challenge(l, ch, msgWrongCode+" "+msgChoose)
	}
	v, err := s.opts.Verifier.Check(ctx, s.cfg.Tenant, ch.verID, answer)
	return s.checked(l, v, err, &ch)
}

// checked turns a code check into the answer: Accept when approved, a
// new challenge for the same SMS while attempts are left (ch set), Reject
// otherwise.
func (s *Server) checked(l *login, v *verify.Verification, err error, ch *challenge) *radius.Packet {
	var le *verify.LimitError
	switch {
	case errors.As(err, &le):
		return s.reject(l, "limited", le.Message())
	case errors.Is(err, verify.ErrNotFound), errors.Is(err, verify.ErrNotPending), errors.Is(err, verify.ErrInvalidRequest):
		return s.reject(l, "wrong_code", msgWrongCode)
	case err != nil:
		l.log = append(l.log, "err", err)
		return s.reject(l, "unavailable", msgUnavailable)
	}
	l.log = append(l.log, "verification", v.ID)
	switch {
	case v.Status == verify.StatusApproved:
		l.reason = "approved"
		return reply(l.req, radius.CodeAccessAccept, msgApproved)
	case v.Status == verify.StatusPending && ch != nil:
		return s.challenge(l, *ch, msgWrongCode+" Enter the code we sent to "+directory.DisplayMask(ch.to))
	}
	return s.reject(l, "wrong_code", msgWrongCode)
}

// startFailed answers a verification that could not start: a limit or
// block with its message, anything else as unavailable.
func (s *Server) startFailed(l *login, err error) *radius.Packet {
	var le *verify.LimitError
	if errors.As(err, &le) {
		l.log = append(l.log, "policy", le.Policy)
		return s.reject(l, "limited", le.Message())
	}
	l.log = append(l.log, "err", err)
	return s.reject(l, "start_failed", msgUnavailable)
}

// isCode reports whether s looks like a verification code.
func isCode(s string) bool {
	return len(s) >= verify.MinCodeLength && len(s) <= verify.MaxCodeLength && strings.Trim(s, "0123456789") == ""
}
