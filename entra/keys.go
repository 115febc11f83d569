package entra

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"
)

// RetireAfter is how long a key stays published after it stopped signing:
// an id_token lives minutes, and a gateway that read the ring just before
// the rollover may sign with the old key for a minute more.
const RetireAfter = 24 * time.Hour

// maxKeyFile bounds a PEM key file read at start.
const maxKeyFile = 1 << 20

// signingKey is one RSA key and the certificate published for it in x5c.
type signingKey struct {
	ID        string // kid and x5t: base64url SHA-1 of Cert, as Entra names its own keys
	Key       *rsa.PrivateKey
	Cert      *x509.Certificate
	SignsFrom time.Time // when it begins (began) to sign
	Retired   time.Time // when it stopped signing; zero while current or next
}

func newSigningKey(key *rsa.PrivateKey, certDER []byte) (*signingKey, error) {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("the certificate is not the private key's")
	}
	sum := sha1.Sum(certDER)
	return &signingKey{ID: base64.RawURLEncoding.EncodeToString(sum[:]), Key: key, Cert: cert}, nil
}

// jwk is the key's public half as published in the JWKS.
func (k *signingKey) jwk() jose.JSONWebKey {
	sum := sha1.Sum(k.Cert.Raw)
	return jose.JSONWebKey{
		Key:                       &k.Key.PublicKey,
		KeyID:                     k.ID,
		Algorithm:                 string(jose.RS256),
		Use:                       "sig",
		Certificates:              []*x509.Certificate{k.Cert},
		CertificateThumbprintSHA1: sum[:],
	}
}

// selfSign makes the certificate of key for x5c: Entra wants one and
// checks no chain. notBefore/notAfter and the serial are the caller's, so
// a key from a file gets the same certificate (and kid) on every gateway.
func selfSign(key *rsa.PrivateKey, serial *big.Int, notBefore, notAfter time.Time) ([]byte, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Verigate Entra id_token signing key"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	// PKCS #1 v1.5 signatures are deterministic: same inputs, same DER.
	return x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
}

// generateKey makes a fresh RSA 2048 key with a self-signed certificate
// valid for lifetime from now.
func generateKey(now time.Time, lifetime time.Duration) (*signingKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("entra: generate signing key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	der, err := selfSign(key, serial, now.Add(-time.Hour), now.Add(lifetime))
	if err != nil {
		return nil, fmt.Errorf("entra: certificate for signing key: %w", err)
	}
	return newSigningKey(key, der)
}

// loadKeyFile reads a PEM file holding an RSA private key (PKCS #1 or
// #8) of at least MinRSABits and optionally its certificate. Without one
// the certificate is made from the key alone (fixed dates, serial from the
// key), so every gateway reading the file publishes the same kid.
func loadKeyFile(file string) (*signingKey, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rest, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(rest) > maxKeyFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", file, maxKeyFile)
	}
	var key *rsa.PrivateKey
	var certDER []byte
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "RSA PRIVATE KEY":
			if key, err = x509.ParsePKCS1PrivateKey(b.Bytes); err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("%s: the key is %T, not RSA", file, k)
			}
			key = rk
		case "CERTIFICATE":
			if certDER == nil {
				certDER = b.Bytes
			}
		}
	}
	if key == nil {
		return nil, fmt.Errorf("%s holds no RSA private key in PEM", file)
	}
	if err := rsaBitsOK(key); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if certDER == nil {
		sum := sha256.Sum256(x509.MarshalPKCS1PublicKey(&key.PublicKey))
		serial := new(big.Int).SetBytes(sum[:16])
		from := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		if certDER, err = selfSign(key, serial, from, from.AddDate(100, 0, 0)); err != nil {
			return nil, fmt.Errorf("%s: certificate: %w", file, err)
		}
	}
	k, err := newSigningKey(key, certDER)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return k, nil
}

// keyRing is the keys at one moment: signer signs, published are in the
// JWKS (signer among them).
type keyRing struct {
	signer    *signingKey
	published []*signingKey
}

// keyStore gives the ring at a moment, advancing the rollover schedule
// (first key, announcing the next, rolling over, retiring the previous)
// once for every gateway that shares it.
type keyStore interface {
	ring(ctx context.Context, now time.Time) (keyRing, error)
}

// staticKeys are keys from files: the first signs, no rollover (the
// operator rolls over by reordering the files).
type staticKeys []*signingKey

func (s staticKeys) ring(context.Context, time.Time) (keyRing, error) {
	return keyRing{signer: s[0], published: s}, nil
}

// schedule is the rollover of generated keys.
type schedule struct {
	rotateEvery  time.Duration
	publishAhead time.Duration
	// generate makes a new key at now (generateKey; tests give a faster one).
	generate func(now time.Time) (*signingKey, error)
}

func newSchedule(k Keys) schedule {
	life := k.RotateEvery + k.PublishAhead + RetireAfter + 30*24*time.Hour
	return schedule{
		rotateEvery:  k.RotateEvery,
		publishAhead: k.PublishAhead,
		generate:     func(now time.Time) (*signingKey, error) { return generateKey(now, life) },
	}
}

// keyState is what a store keeps: at most a previous, a current and a
// next key.
type keyState struct {
	previous, current, next *signingKey
}

func (s keyState) ring() keyRing {
	r := keyRing{signer: s.current}
	for _, k := range []*signingKey{s.previous, s.current, s.next} {
		if k != nil {
			r.published = append(r.published, k)
		}
	}
	return r
}

// advance moves st to now: it returns the new state and whether it
// changed. The next key is always published publishAhead before it
// signs, even when the gateways were down past the planned rollover: the
// current key then signs on until its successor has been visible long
// enough for Entra's cache of the JWKS.
func (sc schedule) advance(st keyState, now time.Time) (keyState, bool, error) {
	changed := false
	if st.current == nil {
		k, err := sc.generate(now)
		if err != nil {
			return st, false, err
		}
		k.SignsFrom = now
		st = keyState{current: k}
		changed = true
	}
	if st.next != nil && !now.Before(st.next.SignsFrom) {
		old := *st.current
		old.Retired = now
		st.previous, st.current, st.next = &old, st.next, nil
		changed = true
	}
	if st.next == nil && !now.Before(st.current.SignsFrom.Add(sc.rotateEvery-sc.publishAhead)) {
		k, err := sc.generate(now)
		if err != nil {
			return st, changed, err
		}
		k.SignsFrom = st.current.SignsFrom.Add(sc.rotateEvery)
		if earliest := now.Add(sc.publishAhead); k.SignsFrom.Before(earliest) {
			k.SignsFrom = earliest
		}
		st.next = k
		changed = true
	}
	if st.previous != nil && !now.Before(st.previous.Retired.Add(RetireAfter)) {
		st.previous = nil
		changed = true
	}
	return st, changed, nil
}

// memoryKeys keeps generated keys in this process (--dev, one gateway).
type memoryKeys struct {
	sched schedule
	mu    sync.Mutex
	st    keyState
}

func (m *memoryKeys) ring(_ context.Context, now time.Time) (keyRing, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, _, err := m.sched.advance(m.st, now)
	if err != nil {
		return keyRing{}, err
	}
	m.st = st
	return st.ring(), nil
}

// redisKeys keeps generated keys in one Redis key (a JSON document) that
// every gateway reads; changes are made under WATCH, so of two gateways
// advancing at once one wins and the other takes its keys.
type redisKeys struct {
	sched schedule
	c     redis.UniversalClient
	key   string
}

// RedisKeysKey is the Redis key of the generated signing keys under the
// gateway's key prefix ("vg:").
const RedisKeysKey = "entra:keys"

type storedKey struct {
	Key       []byte `json:"key"`  // PKCS #8 DER
	Cert      []byte `json:"cert"` // DER
	SignsFrom int64  `json:"signs_from"`
	Retired   int64  `json:"retired,omitempty"`
}

type storedState struct {
	Previous *storedKey `json:"previous,omitempty"`
	Current  *storedKey `json:"current,omitempty"`
	Next     *storedKey `json:"next,omitempty"`
}

func encodeKey(k *signingKey) (*storedKey, error) {
	if k == nil {
		return nil, nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Key)
	if err != nil {
		return nil, err
	}
	s := &storedKey{Key: der, Cert: k.Cert.Raw, SignsFrom: k.SignsFrom.UnixMilli()}
	if !k.Retired.IsZero() {
		s.Retired = k.Retired.UnixMilli()
	}
	return s, nil
}

func decodeKey(s *storedKey) (*signingKey, error) {
	if s == nil {
		return nil, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(s.Key)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("stored key is %T, not RSA", k)
	}
	sk, err := newSigningKey(rk, s.Cert)
	if err != nil {
		return nil, err
	}
	sk.SignsFrom = time.UnixMilli(s.SignsFrom)
	if s.Retired != 0 {
		sk.Retired = time.UnixMilli(s.Retired)
	}
	return sk, nil
}

func encodeState(st keyState) ([]byte, error) {
	var s storedState
	var err error
	for _, p := range []struct {
		dst **storedKey
		k   *signingKey
	}{{&s.Previous, st.previous}, {&s.Current, st.current}, {&s.Next, st.next}} {
		if *p.dst, err = encodeKey(p.k); err != nil {
			return nil, err
		}
	}
	return json.Marshal(s)
}

func decodeState(raw []byte) (keyState, error) {
	var s storedState
	if err := json.Unmarshal(raw, &s); err != nil {
		return keyState{}, err
	}
	var st keyState
	var err error
	for _, p := range []struct {
		dst **signingKey
		s   *storedKey
	}{{&st.previous, s.Previous}, {&st.current, s.Current}, {&st.next, s.Next}} {
		if *p.dst, err = decodeKey(p.s); err != nil {
			return keyState{}, err
		}
	}
	if st.current == nil && (st.previous != nil || st.next != nil) {
		return keyState{}, errors.New("no current key")
	}
	return st, nil
}

func (r *redisKeys) ring(ctx context.Context, now time.Time) (keyRing, error) {
	for range 10 {
		var out keyState
		err := r.c.Watch(ctx, func(tx *redis.Tx) error {
			raw, err := tx.Get(ctx, r.key).Bytes()
			var st keyState
			switch {
			case errors.Is(err, redis.Nil):
			case err != nil:
				return err
			default:
				if st, err = decodeState(raw); err != nil {
					return fmt.Errorf("%s: %w", r.key, err)
				}
			}
			next, changed, err := r.sched.advance(st, now)
			if err != nil {
				return err
			}
			if !changed {
				out = st
				return nil
			}
			enc, err := encodeState(next)
			if err != nil {
				return err
			}
			if _, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, r.key, enc, 0)
				return nil
			}); err != nil {
				return err
			}
			out = next
			return nil
		}, r.key)
		if errors.Is(err, redis.TxFailedErr) {
			continue // another gateway advanced first: read its keys
		}
		if err != nil {
			return keyRing{}, fmt.Errorf("entra: signing keys in redis: %w", err)
		}
		return out.ring(), nil
	}
	return keyRing{}, errors.New("entra: signing keys in redis: too much contention")
}
