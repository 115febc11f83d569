package verify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
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

// Hasher turns codes into the HMACs that are stored instead of them. The
// HMAC binds the code to its tenant. It does not bind the verification id,
// so that a check by number and a check by id can both hash before the one
// store round trip that looks the verification up. Make one with NewHasher;
// the zero Hasher has no key and cannot hash.
type Hasher struct {
	key  []byte
	macs sync.Pool // of hash.Hash: HMACs under key, reset before reuse
}

// NewHasher returns a Hasher under the server secret key.
func NewHasher(key []byte) (*Hasher, error) {
	if len(key) < 16 {
		return nil, fmt.Errorf("secret too short: %d bytes, need at least 16", len(key))
	}
	h := &Hasher{key: append([]byte(nil), key...)}
	// Every start and every check hashes: reusing the keyed HMACs saves
	// hashing the key into a new one each time.
	h.macs.New = func() any { return hmac.New(sha256.New, h.key) }
	return h, nil
}

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
