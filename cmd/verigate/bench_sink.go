package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

// smsSink is a Twilio-shaped SMS endpoint for bench api: it answers
// POST /2010-04-01/Accounts/{Sid}/Messages.json as Twilio does (201 and
// the message resource) and keeps the code of each message by number, so
// the bench checks with the real code and the gateway's measured path is
// its real provider path. It accepts any credentials: it is an instrument
// on loopback, not a fake that tests the gateway's requests
// (internal/twiliotest is that). It posts no status callbacks.
type smsSink struct {
	srv   *http.Server
	done  chan struct{}
	mu    sync.Mutex
	codes map[string]string // number → code of its last message
	wake  *sync.Cond
}

// sinkCode is the first group of 4 to 10 digits of a message body: the
// code leads every SMS body the prompts catalogue writes.
var sinkCode = regexp.MustCompile(`\b\d{4,10}\b`)

// maxSinkForm bounds a Messages.json request body before it is parsed.
const maxSinkForm = 16 << 10

// startSMSSink listens on addr (loopback only) until ctx ends or Close,
// over TLS when tlsFile is set (see sinkCertificate).
func startSMSSink(ctx context.Context, addr, tlsFile string) (*smsSink, error) {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("sink address %q: want a loopback IP and a port", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	if tlsFile != "" {
		cert, err := sinkCertificate(tlsFile, host)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("sink: %w", err)
		}
		// HTTP/1.1 only, as Twilio's API answers twilio-go today.
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	s := &smsSink{codes: map[string]string{}, done: make(chan struct{})}
	s.wake = sync.NewCond(&s.mu)
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Close stops the sink and waits for its server.
func (s *smsSink) Close() {
	_ = s.srv.Close()
	<-s.done
	s.mu.Lock()
	s.wake.Broadcast()
	s.mu.Unlock()
}

func (s *smsSink) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/2010-04-01/Accounts/") || !strings.HasSuffix(r.URL.Path, "/Messages.json") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"code":20404,"message":"The requested resource was not found","more_info":"https://www.twilio.com/docs/errors/20404","status":404}`)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxSinkForm)
	if err := r.ParseForm(); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"code":21602,"message":"Message body is required.","status":400}`)
		return
	}
	to, body := r.PostForm.Get("To"), r.PostForm.Get("Body")
	if code := sinkCode.FindString(body); code != "" && to != "" {
		s.mu.Lock()
		s.codes[to] = code
		s.wake.Broadcast()
		s.mu.Unlock()
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	sid := "SM" + hex.EncodeToString(id[:])
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	// The fields twilio-go reads; the rest of Twilio's resource is left out.
	fmt.Fprintf(w, `{"sid":%q,"status":"queued","to":%q,"direction":"outbound-api","num_segments":"1"}`, sid, to)
}

// code waits up to wait for the code of the last message to number to,
// and forgets it.
func (s *smsSink) code(to string, wait time.Duration) (string, bool) {
	deadline := time.Now().Add(wait)
	stop := time.AfterFunc(wait, func() {
		s.mu.Lock()
		s.wake.Broadcast()
		s.mu.Unlock()
	})
	defer stop.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if c, ok := s.codes[to]; ok {
			delete(s.codes, to)
			return c, true
		}
		if !time.Now().Before(deadline) {
			return "", false
		}
		select {
		case <-s.done:
			return "", false
		default:
		}
		s.wake.Wait()
	}
}

// forget drops a number's code nobody checked.
func (s *smsSink) forget(to string) {
	s.mu.Lock()
	delete(s.codes, to)
	s.mu.Unlock()
}

// sinkCertificate reads the sink's certificate and key from file, or,
// when file does not exist, makes a self-signed one for ip and writes both
// there (one PEM file, mode 0600). The gateway trusts it when its
// SSL_CERT_FILE names the file (Go takes only the CERTIFICATE block as a
// root and reads the file at the first TLS connection, so the gateway may
// be started before the file is first written).
func sinkCertificate(file, ip string) (tls.Certificate, error) {
	if pemBytes, err := os.ReadFile(file); err == nil {
		cert, err := tls.X509KeyPair(pemBytes, pemBytes)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("%s: %w", file, err)
		}
		return cert, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "verigate bench sink"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		// Trusted as itself (a self-signed leaf among the roots), not as
		// a CA: its key sits in the same file, and a CA's key would let
		// whoever reads it issue certificates the gateway trusts for any
		// host.
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP(ip)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	pemBytes := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	if err := os.WriteFile(file, pemBytes, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(pemBytes, pemBytes)
}
