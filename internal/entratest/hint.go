package entratest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// signingKey is one of the fake's RSA keys with its self-signed
// certificate, as Entra publishes them (kid = x5t = SHA-1 thumbprint).
type signingKey struct {
	priv *rsa.PrivateKey
	cert []byte // DER
	kid  string
}

// NewKey makes an RSA key the fake does not publish, for HintOptions.SignWith.
func NewKey() (*rsa.PrivateKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("entratest: key: %w", err)
	}
	return k, nil
}

func newSigningKey() (*signingKey, error) {
	priv, err := NewKey()
	if err != nil {
		return nil, err
	}
	der, err := SelfSigned(priv, "accounts.accesscontrol.windows.net")
	if err != nil {
		return nil, err
	}
	sum := sha1.Sum(der)
	return &signingKey{priv: priv, cert: der, kid: base64.RawURLEncoding.EncodeToString(sum[:])}, nil
}

// SelfSigned makes a self-signed certificate (DER) for key, as providers
// and Entra put in x5c.
func SelfSigned(key *rsa.PrivateKey, cn string) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("entratest: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("entratest: certificate: %w", err)
	}
	return der, nil
}

// jwk is a key as Entra's JWKS publishes it.
type jwk struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use"`
	Kid    string   `json:"kid"`
	X5t    string   `json:"x5t"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X5c    []string `json:"x5c"`
	Issuer string   `json:"issuer,omitempty"`
}

func (k *signingKey) jwk(issuer string) jwk {
	return jwk{
		Kty:    "RSA",
		Use:    "sig",
		Kid:    k.kid,
		X5t:    k.kid,
		N:      base64.RawURLEncoding.EncodeToString(k.priv.N.Bytes()),
		E:      base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.priv.E)).Bytes()),
		X5c:    []string{base64.StdEncoding.EncodeToString(k.cert)},
		Issuer: issuer,
	}
}

// HintOptions shape one id_token_hint. Empty fields take the fake's
// defaults or fresh values.
type HintOptions struct {
	TenantID          string // tid, and the issuer's tenant (the fake's TenantID when empty)
	ObjectID          string // oid (a fresh GUID when empty)
	Subject           string // sub (PairwiseSubject(oid, aud) when empty)
	PreferredUsername string // preferred_username ("user@contoso.example" when empty)
	Name              string // name ("Test User" when empty)
	Audience          string // aud (the fake's ClientID when empty)
	Issuer            string // iss override (the tenant's issuer when empty)
	IssuedAt          time.Time
	// ExpiresIn, when 0, makes the hint expired on purpose as Entra does:
	// exp one second before iat. When positive, exp = iat + ExpiresIn.
	ExpiresIn time.Duration
	// KeyID overrides the kid of the header.
	KeyID string
	// SignWith signs with a key the fake does not publish (the kid stays
	// the published one unless KeyID says otherwise).
	SignWith *rsa.PrivateKey
	// Alg is the signing algorithm: RS256 when empty; RS384, RS512, PS256
	// with an RSA key; HS256 signs with the PEM of the published public key
	// as the HMAC secret (the algorithm-confusion attack); none sends no
	// signature.
	Alg string
	// Extra claims are added, replacing the standard ones of the same name;
	// Omit removes claims (after Extra).
	Extra map[string]any
	Omit  []string
}

// IssueHint makes an id_token_hint as Entra sends it, signed with the
// fake's current key unless the options say otherwise.
func (f *Fake) IssueHint(o HintOptions) (string, error) {
	if o.TenantID == "" {
		o.TenantID = f.TenantID
	}
	if o.ObjectID == "" {
		o.ObjectID = NewGUID()
	}
	if o.PreferredUsername == "" {
		o.PreferredUsername = "user@contoso.example"
	}
	if o.Name == "" {
		o.Name = "Test User"
	}
	if o.Audience == "" {
		o.Audience = f.ClientID
	}
	if o.Subject == "" {
		o.Subject = PairwiseSubject(o.ObjectID, o.Audience)
	}
	if o.Issuer == "" {
		o.Issuer = f.Issuer(o.TenantID)
	}
	if o.IssuedAt.IsZero() {
		o.IssuedAt = time.Now()
	}
	iat := o.IssuedAt.Unix()
	exp := iat - 1
	if o.ExpiresIn > 0 {
		exp = o.IssuedAt.Add(o.ExpiresIn).Unix()
	}
	claims := map[string]any{
		"ver":                "2.0",
		"iss":                o.Issuer,
		"sub":                o.Subject,
		"aud":                o.Audience,
		"exp":                exp,
		"iat":                iat,
		"nbf":                iat,
		"name":               o.Name,
		"preferred_username": o.PreferredUsername,
		"oid":                o.ObjectID,
		"tid":                o.TenantID,
	}
	for k, v := range o.Extra {
		claims[k] = v
	}
	for _, k := range o.Omit {
		delete(claims, k)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("entratest: hint claims: %w", err)
	}

	f.mu.Lock()
	cur := f.keys[0]
	f.mu.Unlock()
	kid := cur.kid
	if o.KeyID != "" {
		kid = o.KeyID
	}
	priv := cur.priv
	if o.SignWith != nil {
		priv = o.SignWith
	}
	alg := o.Alg
	if alg == "" {
		alg = "RS256"
	}
	switch alg {
	case "none":
		return unsigned(kid, payload), nil
	case "HS256":
		return hmacSigned(kid, payload, &cur.priv.PublicKey)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid),
	)
	if err != nil {
		return "", fmt.Errorf("entratest: signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("entratest: sign hint: %w", err)
	}
	return jws.CompactSerialize()
}

func unsigned(kid string, payload []byte) string {
	h, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "none", "kid": kid})
	return b64(h) + "." + b64(payload) + "."
}

// hmacSigned is written by hand: no JOSE library lets an RSA public key be
// an HMAC secret, which is the point of the attack it forges.
func hmacSigned(kid string, payload []byte, pub *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("entratest: public key: %w", err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	h, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "HS256", "kid": kid})
	input := b64(h) + "." + b64(payload)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + b64(m.Sum(nil)), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// unverifiedSubject reads the sub of a hint the fake made itself (or a
// test forged): the receiver compares the id_token's sub with it. An
// unreadable hint gives "", which no id_token matches.
func unverifiedSubject(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return ""
	}
	return c.Sub
}

// requestedValues reads the acr and amr values of a claims parameter; nil
// when absent or unreadable (then any value the reference lists passes).
func requestedValues(claims string) (acr, amr []string) {
	var c struct {
		IDToken struct {
			ACR struct {
				Values []string `json:"values"`
			} `json:"acr"`
			AMR struct {
				Values []string `json:"values"`
			} `json:"amr"`
		} `json:"id_token"`
	}
	if json.Unmarshal([]byte(claims), &c) != nil {
		return nil, nil
	}
	return c.IDToken.ACR.Values, c.IDToken.AMR.Values
}
