package verify

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"
	"sync"
)

// Code lengths the Service accepts.
const (
	MinCodeLength     = 4
	MaxCodeLength     = 10
	DefaultCodeLength = 6
)

// NewCode returns a code of n decimal digits, each drawn uniformly from
// random (crypto/rand in production). rand.Int rejects out-of-range samples
// instead of reducing modulo 10^n, so no code is likelier than another.
func NewCode(random io.Reader, n int) (string, error) {
	if n < MinCodeLength || n > MaxCodeLength {
		return "", fmt.Errorf("code length %d outside %d..%d", n, MinCodeLength, MaxCodeLength)
	}
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
	v, err := rand.Int(random, limit)
	if err != nil {
		return "", fmt.Errorf("generate code: %w", err)
	}
	return fmt.Sprintf("%0*s", n, v.String()), nil
}

// NewID returns an unguessable verification id: "VE" and 128 random bits.
func NewID(random io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", fmt.Errorf("generate id: %w", err)
	}
	return "VE" + hex.EncodeToString(b[:]), nil
}

// Hasher turns codes into the HMACs that are stored instead of them, and
// seals a verification's code so that a resend can send the same code
// again. The HMAC binds the code to its tenant. It does not bind the
// verification id, so that a check by number and a check by id can both
// hash before the one store round trip that looks the verification up.
// Make one with NewHasher; the zero Hasher has no key and cannot hash.
type Hasher struct {
	key  []byte
	macs sync.Pool // of hash.Hash: HMACs under key, reset before reuse
	seal cipher.AEAD
}

// sealLabel derives the sealing key from the server secret, so the key
// that seals codes is never the one that hashes them.
const sealLabel = "verigate code seal v1"

// NewHasher returns a Hasher under the server secret key.
func NewHasher(key []byte) (*Hasher, error) {
	if len(key) < 16 {
		return nil, fmt.Errorf("secret too short: %d bytes, need at least 16", len(key))
	}
	h := &Hasher{key: append([]byte(nil), key...)}
	// Every start and every check hashes: reusing the keyed HMACs saves
	// hashing the key into a new one each time.
	h.macs.New = func() any { return hmac.New(sha256.New, h.key) }
	derive := hmac.New(sha256.New, h.key)
	derive.Write([]byte(sealLabel))
	block, err := aes.NewCipher(derive.Sum(nil)) // 32 bytes: AES-256
	if err != nil {
		return nil, fmt.Errorf("code seal: %w", err)
	}
	if h.seal, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("code seal: %w", err)
	}
	return h, nil
}

// ErrUnsealable is a sealed code that does not open under this server's
// secret for this tenant and verification: tampered with, or sealed under
// a secret since rotated.
var ErrUnsealable = errors.New("sealed code does not open")

// SealCode encrypts code for the tenant's verification id (AES-256-GCM
// under a key derived from the server secret, the tenant and id bound as
// additional data) with a nonce from random.
func (h *Hasher) SealCode(random io.Reader, tenant, id, code string) (string, error) {
	nonce := make([]byte, h.seal.NonceSize(), h.seal.NonceSize()+len(code)+h.seal.Overhead())
	if _, err := io.ReadFull(random, nonce); err != nil {
		return "", fmt.Errorf("seal code: %w", err)
	}
	out := h.seal.Seal(nonce, nonce, []byte(code), sealAD(tenant, id))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// OpenCode returns the code SealCode sealed for the tenant's verification
// id, or ErrUnsealable.
func (h *Hasher) OpenCode(tenant, id, sealed string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(raw) < h.seal.NonceSize()+h.seal.Overhead() {
		return "", ErrUnsealable
	}
	n := h.seal.NonceSize()
	code, err := h.seal.Open(nil, raw[:n], raw[n:], sealAD(tenant, id))
	if err != nil {
		return "", ErrUnsealable
	}
	return string(code), nil
}

func sealAD(tenant, id string) []byte { return []byte(tenant + "\x00" + id) }

// Hash returns the HMAC-SHA256 of code for the tenant, base64url.
func (h *Hasher) Hash(tenant, code string) string {
	m := h.macs.Get().(hash.Hash)
	defer h.macs.Put(m)
	m.Reset()
	var in [64]byte
	m.Write(append(append(append(in[:0], tenant...), 0), code...))
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(m.Sum(sum[:0]))
}

// MatchHash reports in constant time whether hash is one of hashes.
func MatchHash(hashes []string, hash string) bool {
	found := 0
	for _, h := range hashes {
		found |= subtle.ConstantTimeCompare([]byte(h), []byte(hash))
	}
	return found == 1
}
