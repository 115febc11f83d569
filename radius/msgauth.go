package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"

	"layeh.com/radius"
	"layeh.com/radius/rfc2869"
)

// The Message-Authenticator (RFC 2869 §5.14, RFC 3579 §3.2) lives here, in
// one place: layeh.com/radius knows the attribute but neither computes nor
// checks it. It is HMAC-MD5 under the shared secret over the whole packet
// with the attribute's own value zeroed; in an answer the authenticator
// field holds the request's authenticator while it is computed.

var (
	errNoMessageAuth  = errors.New("radius: no Message-Authenticator")
	errBadMessageAuth = errors.New("radius: wrong Message-Authenticator")
	errMalformed      = errors.New("radius: malformed packet")
)

// findMessageAuth returns the offset of the Message-Authenticator's value
// in packet b (whose length field has been checked), or -1 when absent;
// an attribute list that does not add up, or two Message-Authenticators,
// is malformed.
func findMessageAuth(b []byte) (int, error) {
	off, at := 20, -1
	for off < len(b) {
		if len(b)-off < 2 {
			return -1, errMalformed
		}
		l := int(b[off+1])
		if l < 2 || off+l > len(b) {
			return -1, errMalformed
		}
		if radius.Type(b[off]) == rfc2869.MessageAuthenticator_Type {
			if l != 18 || at >= 0 {
				return -1, errMalformed
			}
			at = off + 2
		}
		off += l
	}
	return at, nil
}

// checkRequestAuth verifies the Message-Authenticator of Access-Request b
// (exactly its length field long) under secret.
func checkRequestAuth(b, secret []byte) error {
	at, err := findMessageAuth(b)
	if err != nil {
		return err
	}
	if at < 0 {
		return errNoMessageAuth
	}
	want := messageAuth(b, at, nil, secret)
	if !hmac.Equal(want, b[at:at+16]) {
		return errBadMessageAuth
	}
	return nil
}

// checkResponseAuth verifies an answer's Response Authenticator and its
// Message-Authenticator against the request that asked.
func checkResponseAuth(resp, req, secret []byte) error {
	if !radius.IsAuthenticResponse(resp, req, secret) {
		return errBadMessageAuth
	}
	at, err := findMessageAuth(resp)
	if err != nil {
		return err
	}
	if at < 0 {
		return errNoMessageAuth
	}
	if !hmac.Equal(messageAuth(resp, at, req[4:20], secret), resp[at:at+16]) {
		return errBadMessageAuth
	}
	return nil
}

// messageAuth computes the HMAC over b with the value at offset at zeroed
// and, when reqAuth is set (an answer), the authenticator field replaced
// by it. b is not changed.
func messageAuth(b []byte, at int, reqAuth []byte, secret []byte) []byte {
	c := append([]byte(nil), b...)
	clear(c[at : at+16])
	if reqAuth != nil {
		copy(c[4:20], reqAuth)
	}
	m := hmac.New(md5.New, secret)
	m.Write(c)
	return m.Sum(nil)
}

// encodeSigned encodes p with a Message-Authenticator as its first
// attribute (where BlastRADIUS advice puts it): a request as it goes to a
// server, an answer (p.Authenticator holding the request's authenticator,
// as Packet.Response leaves it) with its Response Authenticator.
func encodeSigned(p *radius.Packet) ([]byte, error) {
	p.Attributes.Del(rfc2869.MessageAuthenticator_Type)
	p.Attributes = append(radius.Attributes{{Type: rfc2869.MessageAuthenticator_Type, Attribute: make(radius.Attribute, 16)}}, p.Attributes...)
	b, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	const at = 22 // header, then the attribute's type and length
	copy(b[at:], messageAuth(b, at, nil, p.Secret))
	if p.Code == radius.CodeAccessRequest || p.Code == radius.CodeStatusServer {
		return b, nil
	}
	// The Response Authenticator covers the Message-Authenticator.
	h := md5.New()
	h.Write(b[:4])
	h.Write(p.Authenticator[:])
	h.Write(b[20:])
	h.Write(p.Secret)
	h.Sum(b[4:4:20])
	return b, nil
}

// packetLength returns the length field of b when it is a plausible
// RADIUS packet within b.
func packetLength(b []byte) (int, error) {
	if len(b) < 20 {
		return 0, errMalformed
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n < 20 || n > len(b) || n > MaxPacket {
		return 0, errMalformed
	}
	return n, nil
}
