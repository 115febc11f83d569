package entra

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/redistest"
)

var (
	testKeysOnce sync.Once
	testKeys     []*rsa.PrivateKey
)

// testRSAKeys are a few RSA keys made once per test binary: generating
// 2048-bit keys for every step of a schedule would dominate the tests.
func testRSAKeys(t testing.TB) []*rsa.PrivateKey {
	t.Helper()
	testKeysOnce.Do(func() {
		for range 3 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			testKeys = append(testKeys, k)
		}
	})
	return testKeys
}

// testGenerate makes signing keys from the shared RSA keys, each with its
// own certificate (so its own kid), as generateKey does.
func testGenerate(t testing.TB) func(now time.Time) (*signingKey, error) {
	keys := testRSAKeys(t)
	var mu sync.Mutex
	i := 0
	return func(now time.Time) (*signingKey, error) {
		mu.Lock()
		key := keys[i%len(keys)]
		i++
		mu.Unlock()
		serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
		der, err := selfSign(key, serial, now.Add(-time.Hour), now.AddDate(1, 0, 0))
		if err != nil {
			return nil, err
		}
		return newSigningKey(key, der)
	}
}

func testSchedule(t testing.TB) schedule {
	return schedule{rotateEvery: 90 * 24 * time.Hour, publishAhead: 72 * time.Hour, generate: testGenerate(t)}
}

// TestKeyStores runs one rollover schedule against every key store.
func TestKeyStores(t *testing.T) {
	stores := map[string]func(t *testing.T) keyStore{
		"memory": func(t *testing.T) keyStore { return &memoryKeys{sched: testSchedule(t)} },
		"redis": func(t *testing.T) keyStore {
			return &redisKeys{sched: testSchedule(t), c: redistest.Client(t), key: redistest.Prefix(t) + RedisKeysKey}
		},
	}
	day := 24 * time.Hour
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		at        time.Duration
		signer    string
		published string
	}{
		{0, "A", "A"},
		{86 * day, "A", "A"},
		{87 * day, "A", "A,B"}, // B published three days ahead
		{89*day + 23*time.Hour, "A", "A,B"},
		{90 * day, "B", "A,B"}, // B signs; A stays published
		{91*day - time.Minute, "B", "A,B"},
		{91 * day, "B", "B"}, // a day after it stopped signing, A goes
		{177 * day, "B", "B,C"},
		// The gateways were down past C's turn and D's announcement: C
		// signs (published for months), D is announced now and signs only
		// three days from now, never earlier.
		{400 * day, "C", "B,C,D"},
		{401 * day, "C", "C,D"},
		{403*day - time.Minute, "C", "C,D"},
		{403 * day, "D", "C,D"},
		{404 * day, "D", "D"},
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			s := mk(t)
			names := map[string]string{}
			letter := func(kid string) string {
				if n, ok := names[kid]; ok {
					return n
				}
				names[kid] = string(rune('A' + len(names)))
				return names[kid]
			}
			for _, st := range steps {
				now := t0.Add(st.at)
				r, err := s.ring(context.Background(), now)
				if err != nil {
					t.Fatalf("at %s: %v", st.at, err)
				}
				var pub []string
				for _, k := range r.published {
					pub = append(pub, letter(k.ID))
				}
				if got := letter(r.signer.ID); got != st.signer || strings.Join(pub, ",") != st.published {
					t.Errorf("at day %.2f: signer %s, published %s; want signer %s, published %s",
						st.at.Hours()/24, got, strings.Join(pub, ","), st.signer, st.published)
				}
				// A second read at the same time changes nothing.
				again, err := s.ring(context.Background(), now)
				if err != nil || again.signer.ID != r.signer.ID || len(again.published) != len(r.published) {
					t.Errorf("at %s: a second read gave another ring", st.at)
				}
			}
		})
	}
}

// TestRedisKeysOneCreation: gateways starting together on one Redis all
// end up signing with the same key.
func TestRedisKeysOneCreation(t *testing.T) {
	c := redistest.Client(t)
	key := redistest.Prefix(t) + RedisKeysKey
	gen := testGenerate(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 6
	kids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &redisKeys{sched: schedule{rotateEvery: 90 * 24 * time.Hour, publishAhead: 72 * time.Hour, generate: gen}, c: c, key: key}
			r, err := s.ring(context.Background(), now)
			errs[i] = err
			if err == nil {
				kids[i] = r.signer.ID
			}
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("gateway %d: %v", i, errs[i])
		}
		if kids[i] != kids[0] {
			t.Fatalf("gateway %d signs with %s, gateway 0 with %s", i, kids[i], kids[0])
		}
	}
}

func TestGenerateKey(t *testing.T) {
	now := time.Now()
	k, err := generateKey(now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(k.Cert.Raw)
	if k.ID != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Errorf("kid %s is not the certificate's SHA-1", k.ID)
	}
	if k.Key.N.BitLen() != 2048 {
		t.Errorf("key of %d bits", k.Key.N.BitLen())
	}
	if !k.Cert.PublicKey.(*rsa.PublicKey).Equal(&k.Key.PublicKey) {
		t.Error("certificate of another key")
	}
}

func writePEM(t *testing.T, name string, blocks ...*pem.Block) string {
	t.Helper()
	var b []byte
	for _, blk := range blocks {
		b = append(b, pem.EncodeToMemory(blk)...)
	}
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLoadKeyFile(t *testing.T) {
	keys := testRSAKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(keys[1])
	otherCert, _ := selfSign(keys[2], big.NewInt(7), time.Now(), time.Now().Add(time.Hour))
	ownCert, _ := selfSign(keys[0], big.NewInt(9), time.Now(), time.Now().Add(time.Hour))

	pkcs1 := writePEM(t, "pkcs1.pem", &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(keys[0])})
	k1, err := loadKeyFile(pkcs1)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := loadKeyFile(pkcs1)
	if err != nil {
		t.Fatal(err)
	}
	if k1.ID != k2.ID {
		t.Error("a key file without certificate gives another kid on each load: gateways would disagree")
	}
	if _, err := loadKeyFile(writePEM(t, "pkcs8.pem", &pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})); err != nil {
		t.Errorf("PKCS #8: %v", err)
	}
	withCert, err := loadKeyFile(writePEM(t, "cert.pem",
		&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(keys[0])},
		&pem.Block{Type: "CERTIFICATE", Bytes: ownCert}))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha1.Sum(ownCert); withCert.ID != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Error("the file's certificate is not the one published")
	}
	for name, f := range map[string]string{
		"small":      writePEM(t, "small.pem", &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)}),
		"other cert": writePEM(t, "other.pem", &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(keys[0])}, &pem.Block{Type: "CERTIFICATE", Bytes: otherCert}),
		"no key":     writePEM(t, "nokey.pem", &pem.Block{Type: "CERTIFICATE", Bytes: ownCert}),
		"missing":    filepath.Join(t.TempDir(), "absent.pem"),
	} {
		if _, err := loadKeyFile(f); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}
