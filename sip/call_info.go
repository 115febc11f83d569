package sip

import (
	"github.com/verigate/verigate/sip/media"

	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/emiago/sipgo/sip"
)

// allowMethods is what the gateway's user agent answers in a dialog.
const allowMethods = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO"

// methodNotAllowed answers a request no handler takes with 405 and the
// Allow header (the methods the user agent takes) RFC 3261 §8.2.1
// requires in it. sipgo's own 405 has none
// and logs a warning per request, which a stranger could repeat at will;
// this logs at debug. An ACK is never answered.
func methodNotAllowed(log *slog.Logger, allow string) func(*sip.Request, sip.ServerTransaction) {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if req.IsAck() {
			return
		}
		res := sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil)
		res.AppendHeader(sip.NewHeader("Allow", allow))
		if err := tx.Respond(res); err != nil {
			log.Debug("sip response not sent", "method", trunc(string(req.Method)), "code", 405, "error", err)
			return
		}
		log.Debug("sip method not allowed", "method", trunc(string(req.Method)), "source", sourceHost(req))
	}
}

// onInfo takes a SIP INFO in one of the calls' dialogs and hands its DTMF
// body to the call's media session, which keeps it or not by the trunk's
// DTMF mode and drops repeats by CSeq. Answers: 200 for a key (also one
// the mode ignores), 415 for a body that is not DTMF, 400 for a malformed
// one, 481 outside a call, 403 from anywhere but the call's peer.
func (c *Caller) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	cl := c.callOf(req)
	if cl == nil {
		c.ep.strangers.Debug("sip info for no call rejected", "source", sourceHost(req))
		respond(c.log, req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	if c.refuseStranger(cl, req, tx) {
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	var seq uint32
	if h := req.CSeq(); h != nil {
		seq = h.SeqNo
	}
	digit, _, err := media.ParseINFO(ct, req.Body())
	if ms := cl.media(); err == nil && ms != nil {
		ms.HandleINFO(seq, digit)
	} else if err == nil {
		// Before the media runs there is no prompt a key could answer.
		cl.log.Info("sip info before media ignored")
	}
	switch {
	case errors.Is(err, media.ErrINFOContentType):
		cl.log.Info("sip info not dtmf", "content_type", trunc(ct))
		respond(c.log, req, tx, 415, "Unsupported Media Type")
	case err != nil:
		cl.log.Info("sip info malformed", "error", err)
		respond(c.log, req, tx, 400, "Bad Request")
	default:
		cl.log.Debug("sip info dtmf", "cseq", seq)
		respond(c.log, req, tx, 200, "OK")
	}
}

// inDialog reports whether req belongs to the call's dialog: its To tag
// is the gateway's From tag (the Call-ID has matched already).
func (cl *call) inDialog(req *sip.Request) bool {
	to := req.To()
	if to == nil {
		return false
	}
	got, _ := to.Params.Get("tag")
	want, _ := cl.dialog.InviteRequest.From().Params.Get("tag")
	return got != "" && got == want
}

// loadTLSCA returns a client configuration trusting the system's roots
// plus the CA certificates in the PEM file at path.
func loadTLSCA(path string) (*tls.Config, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
