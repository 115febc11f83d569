package callbacktest

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/callback"
)

// Delivery is one callback a Receiver accepted.
type Delivery struct {
	ID     string // the delivery id header
	Body   []byte
	Header http.Header
	At     time.Time
}

// Receiver is an IdP's callback endpoint on loopback that checks every
// signature (callback.VerifyRequest) and records what it accepts. Stop and
// Start take it down and bring it back on the same address, so a gateway
// sees connections refused in between.
type Receiver struct {
	t      testing.TB
	secret []byte
	addr   string

	mu      sync.Mutex
	srv     *http.Server
	got     []Delivery
	arrived chan struct{}
	// reply answers a request; nil accepts it with 204.
	reply func(r *http.Request) (status int, header http.Header)
}

// NewReceiver starts a Receiver checking signatures with secret.
func NewReceiver(t testing.TB, secret string) *Receiver {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{t: t, secret: []byte(secret), addr: l.Addr().String(), arrived: make(chan struct{}, 1)}
	r.serve(l)
	t.Cleanup(r.Stop)
	return r
}

// URL is where to send callbacks.
func (r *Receiver) URL() string { return "http://" + r.addr + "/callbacks" }

// Reply sets how the Receiver answers requests with valid signatures
// (nil: 204, recorded). A request answered other than 2xx is not recorded.
func (r *Receiver) Reply(f func(*http.Request) (int, http.Header)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reply = f
}

// Stop closes the Receiver: connections are refused until Start.
func (r *Receiver) Stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Start listens again on the same address.
func (r *Receiver) Start() {
	r.t.Helper()
	var l net.Listener
	var err error
	for range 50 { // the port was ours; another test could only take it between Stop and Start
		if l, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("callbacktest: listen again on %s: %v", r.addr, err)
	}
	r.serve(l)
}

func (r *Receiver) serve(l net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 5 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.t.Errorf("callbacktest: serve: %v", err)
		}
	}()
}

func (r *Receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := callback.VerifyRequest(r.secret, req.Header, body, time.Now(), 5*time.Minute); err != nil {
		r.t.Errorf("callbacktest: callback refused: %v", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	reply := r.reply
	r.mu.Unlock()
	status, header := http.StatusNoContent, http.Header(nil)
	if reply != nil {
		status, header = reply(req)
	}
	for k, v := range header {
		w.Header()[k] = v
	}
	if status/100 == 2 {
		r.mu.Lock()
		r.got = append(r.got, Delivery{ID: req.Header.Get(callback.DeliveryHeader), Body: body, Header: req.Header.Clone(), At: time.Now()})
		r.mu.Unlock()
		select {
		case r.arrived <- struct{}{}:
		default:
		}
	}
	w.WriteHeader(status)
}

// Deliveries returns what the Receiver accepted, in order.
func (r *Receiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.got...)
}

// WaitDistinct waits until n distinct delivery ids have been accepted,
// failing the test after timeout.
func (r *Receiver) WaitDistinct(n int, timeout time.Duration) []Delivery {
	r.t.Helper()
	deadline := time.After(timeout)
	for {
		got := r.Deliveries()
		ids := map[string]bool{}
		for _, d := range got {
			ids[d.ID] = true
		}
		if len(ids) >= n {
			return got
		}
		select {
		case <-r.arrived:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			r.t.Fatalf("callbacktest: %d distinct callbacks after %s, want %d", len(ids), timeout, n)
		}
	}
}
