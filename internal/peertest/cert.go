package peertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"
)

// Certs is a throwaway CA and a server certificate it signed for
// 127.0.0.1, "localhost" and any extra names, valid for a day.
type Certs struct {
	// CAPEM, CertPEM and KeyPEM are PEM encoded; the key is PKCS#8.
	CAPEM, CertPEM, KeyPEM []byte
	// CAFile, CertFile and KeyFile hold them in a temporary directory,
	// for peers and configurations that take paths.
	CAFile, CertFile, KeyFile string
	// Pool trusts the CA only.
	Pool *x509.CertPool
	// Server is the server certificate with its key.
	Server tls.Certificate
}

// ServerTLS returns a server configuration presenting the certificate.
func (c *Certs) ServerTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.Server}, MinVersion: tls.VersionTLS12}
}

// ClientTLS returns a client configuration trusting only the CA, for
// serverName (e.g. "127.0.0.1").
func (c *Certs) ClientTLS(serverName string) *tls.Config {
	return &tls.Config{RootCAs: c.Pool, ServerName: serverName, MinVersion: tls.VersionTLS12}
}

// NewCerts makes a CA and a server certificate for 127.0.0.1, localhost
// and extraNames (DNS names or IP addresses), and writes them as PEM files
// into a temporary directory.
func NewCerts(t testing.TB, extraNames ...string) *Certs {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("peertest: ca key: %v", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "peertest CA", Organization: []string{"Verigate tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("peertest: ca cert: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("peertest: ca cert: %v", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("peertest: server key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: Loopback},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP(Loopback)},
		DNSNames:     []string{"localhost"},
	}
	for _, n := range extraNames {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatalf("peertest: server cert: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("peertest: server key: %v", err)
	}
	c := &Certs{
		CAPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		Pool:    x509.NewCertPool(),
	}
	c.Pool.AddCert(ca)
	if c.Server, err = tls.X509KeyPair(c.CertPEM, c.KeyPEM); err != nil {
		t.Fatalf("peertest: key pair: %v", err)
	}
	dir := t.TempDir()
	c.CAFile = writeFile(t, dir, "ca.pem", c.CAPEM)
	c.CertFile = writeFile(t, dir, "cert.pem", c.CertPEM)
	c.KeyFile = writeFile(t, dir, "key.pem", c.KeyPEM)
	return c
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatalf("peertest: serial: %v", err)
	}
	return n
}
