package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
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

// startSMSSink listens on addr (loopback only) until ctx ends or Close.
func startSMSSink(ctx context.Context, addr string) (*smsSink, error) {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("sink address %q: want a loopback IP and a port", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
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
