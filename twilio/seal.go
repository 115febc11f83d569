package twilio

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/verigate/verigate/verify"
)

// ErrBadContext is returned for a call context that does not open: not
// sealed by this gateway's secret, altered, or expired.
var ErrBadContext = errors.New("twilio: bad call context")

// callContext is what a call's webhooks need and Twilio's stateless
// requests do not carry: which verification, how to speak, and (code mode)
// the code. It travels sealed in the webhook URLs (AES-256-GCM under a key
// derived from the server secret), so the code survives across webhooks
// and gateway instances without being stored anywhere in clear, and
// nobody without the secret can read it or make a call context up.
type callContext struct {
	ID      string          `json:"v"`
	Mode    verify.CallMode `json:"m"`
	Locale  string          `json:"l,omitempty"`
	Code    string          `json:"c,omitempty"`
	Attempt int             `json:"a,omitempty"` // verify.Call.Attempt, set on the call's outcome
	Expires int64           `json:"x"`           // unix seconds
}

// sealLabel separates this key from every other use of the server secret.
const sealLabel = "verigate twilio call context v1"

type sealer struct {
	aead   cipher.AEAD
	random io.Reader
}

func newSealer(secret string) (*sealer, error) {
	if len(secret) < 16 {
		return nil, errors.New("twilio: server secret shorter than 16 characters")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(sealLabel))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	return &sealer{aead: aead, random: rand.Reader}, nil
}

// seal returns cc as a URL-safe token.
func (s *sealer) seal(cc callContext) (string, error) {
	plain, err := json.Marshal(cc)
	if err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := io.ReadFull(s.random, nonce); err != nil {
		return "", fmt.Errorf("seal nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(sealLabel))), nil
}

// open returns the context sealed in token, unless it is not authentic or
// expired at now.
func (s *sealer) open(token string, now time.Time) (callContext, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	n := s.aead.NonceSize()
	if err != nil || len(raw) < n+s.aead.Overhead() {
		return callContext{}, ErrBadContext
	}
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(sealLabel))
	if err != nil {
		return callContext{}, ErrBadContext
	}
	var cc callContext
	if err := json.Unmarshal(plain, &cc); err != nil || cc.ID == "" {
		return callContext{}, ErrBadContext
	}
	if now.Unix() > cc.Expires {
		return callContext{}, fmt.Errorf("%w: expired", ErrBadContext)
	}
	return cc, nil
}
