package callback

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		ip    string
		class string
	}{
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"2606:4700:4700::1111", ""},
		{"127.0.0.1", ClassLoopback},
		{"127.255.255.254", ClassLoopback},
		{"::1", ClassLoopback},
		{"0.0.0.0", ClassUnspecified},
		{"0.1.2.3", ClassUnspecified},
		{"::", ClassUnspecified},
		{"10.0.0.1", ClassPrivate},
		{"172.16.0.1", ClassPrivate},
		{"172.31.255.255", ClassPrivate},
		{"172.32.0.1", ""},
		{"192.168.1.1", ClassPrivate},
		{"fc00::1", ClassPrivate},
		{"fd12:3456:789a::1", ClassPrivate},
		{"fec0::1", ClassPrivate},
		{"100.64.0.1", ClassCGNAT},
		{"100.127.255.255", ClassCGNAT},
		{"100.128.0.1", ""},
		{"169.254.1.1", ClassLinkLocal},
		{"fe80::1", ClassLinkLocal},
		{"fe80::1%eth0", ClassLinkLocal},
		{"224.0.0.1", ClassMulticast},
		{"239.255.255.250", ClassMulticast},
		{"ff02::1", ClassMulticast},
		{"255.255.255.255", ClassReserved},
		{"240.0.0.1", ClassReserved},
		{"192.0.0.8", ClassReserved},
		{"169.254.169.254", ClassMetadata},
		{"169.254.170.2", ClassMetadata},
		{"100.100.100.200", ClassMetadata},
		{"168.63.129.16", ClassMetadata},
		{"fd00:ec2::254", ClassMetadata},
		// IPv4 inside IPv6: judged as the IPv4 address it reaches.
		{"::ffff:127.0.0.1", ClassLoopback},
		{"::ffff:7f00:1", ClassLoopback},
		{"::ffff:10.1.2.3", ClassPrivate},
		{"::ffff:169.254.169.254", ClassMetadata},
		{"::ffff:8.8.8.8", ""},
		{"::127.0.0.1", ClassReserved}, // IPv4-compatible
		{"64:ff9b::7f00:1", ClassLoopback},
		{"64:ff9b::a9fe:a9fe", ClassMetadata},
		{"64:ff9b::808:808", ""},
		{"64:ff9b:1::a00:1", ClassPrivate},
		{"2002:7f00:1::1", ClassLoopback}, // 6to4 of 127.0.0.1
		{"2002:c0a8:101::1", ClassPrivate},
		{"2002:808:808::1", ""},
	}
	for _, tt := range tests {
		if got := Classify(netip.MustParseAddr(tt.ip)); got != tt.class {
			t.Errorf("Classify(%s) = %q, want %q", tt.ip, got, tt.class)
		}
	}
	if got := Classify(netip.Addr{}); got != ClassReserved {
		t.Errorf("Classify(zero Addr) = %q, want reserved", got)
	}
}

// TestCheckURL covers what a start refuses at once. The numeric forms are
// the ones glibc's inet_aton (and resolvers built on it) read as 127.0.0.1
// while Go's parser does not: refused whatever the setting, since what
// they reach depends on the resolver.
func TestCheckURL(t *testing.T) {
	tests := []struct {
		url string
		// refused by default, and when private networks are allowed
		refused, refusedAllowed bool
		class                   string
	}{
		{"https://idp.example.com/hook", false, false, ""},
		{"https://8.8.8.8/hook", false, false, ""},
		{"https://[2606:4700:4700::1111]:8443/hook", false, false, ""},
		{"http://127.0.0.1:8080/hook", true, false, ClassLoopback},
		{"http://[::1]/hook", true, false, ClassLoopback},
		{"http://[::ffff:127.0.0.1]/hook", true, false, ClassLoopback},
		{"http://[::ffff:7f00:1]/hook", true, false, ClassLoopback},
		{"http://[0:0:0:0:0:ffff:7f00:1]/hook", true, false, ClassLoopback},
		{"http://[fe80::1%25eth0]/hook", true, false, ClassLinkLocal},
		{"http://0.0.0.0/hook", true, false, ClassUnspecified},
		{"http://[::]/hook", true, false, ClassUnspecified},
		{"http://10.0.0.5/hook", true, false, ClassPrivate},
		{"http://192.168.0.10/hook", true, false, ClassPrivate},
		{"http://[fd00::5]/hook", true, false, ClassPrivate},
		{"http://100.64.1.1/hook", true, false, ClassCGNAT},
		{"http://224.0.0.251/hook", true, false, ClassMulticast},
		{"http://localhost:8080/hook", true, false, ClassLoopback},
		{"http://LOCALHOST./hook", true, false, ClassLoopback},
		{"http://idp.localhost/hook", true, false, ClassLoopback},
		{"http://169.254.169.254/latest/meta-data/", true, true, ClassMetadata},
		{"http://[::ffff:169.254.169.254]/", true, true, ClassMetadata},
		{"http://[fd00:ec2::254]/", true, true, ClassMetadata},
		{"http://metadata.google.internal/computeMetadata/v1/", true, true, ClassMetadata},
		{"http://168.63.129.16/", true, true, ClassMetadata},
		{"http://127.1/hook", true, true, classNumeric},
		{"http://127.0.1/hook", true, true, classNumeric},
		{"http://2130706433/hook", true, true, classNumeric},
		{"http://0x7f000001/hook", true, true, classNumeric},
		{"http://0x7f.1/hook", true, true, classNumeric},
		{"http://0177.0.0.1/hook", true, true, classNumeric},
		{"http://127.000.000.001/hook", true, true, classNumeric},
		{"http://127.0.0.1./hook", true, true, classNumeric},
		{"http://134744072/hook", true, true, classNumeric}, // 8.8.8.8 to inet_aton, a name to Go
		// Names that only look numeric, or embed an address, are names:
		// checked when dialled.
		{"https://cafe.be/hook", false, false, ""},
		{"https://1.2.3.4.nip.io/hook", false, false, ""},
		{"https://0x.example/hook", false, false, ""},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatalf("%s: %v", tt.url, err)
		}
		for _, p := range []policy{{}, {allowPrivate: true}} {
			err := p.checkURL(u)
			want := tt.refused
			if p.allowPrivate {
				want = tt.refusedAllowed
			}
			if (err != nil) != want {
				t.Errorf("%s (allow private %v): err %v, want refused %v", tt.url, p.allowPrivate, err, want)
				continue
			}
			var ae *AddressError
			if err != nil && (!errors.Is(err, ErrForbiddenAddress) || !errors.As(err, &ae) || ae.Class != tt.class) {
				t.Errorf("%s: err %v, want an AddressError of class %q", tt.url, err, tt.class)
			}
		}
	}
}

// TestControlChecksTheDialledAddress: whatever a name resolved to, the
// address about to be connected is what counts.
func TestControlChecksTheDialledAddress(t *testing.T) {
	for _, tt := range []struct {
		addr            string
		refused, always bool
	}{
		{"8.8.8.8:443", false, false},
		{"[2606:4700:4700::1111]:443", false, false},
		{"127.0.0.1:80", true, false},
		{"[::1]:80", true, false},
		{"[::ffff:127.0.0.1]:80", true, false},
		{"10.9.8.7:443", true, false},
		{"[fe80::1%eth0]:80", true, false},
		{"169.254.169.254:80", true, true},
		{"[fd00:ec2::254]:80", true, true},
		{"not-an-address:80", true, true},
	} {
		for _, p := range []policy{{}, {allowPrivate: true}} {
			want := tt.refused && (!p.allowPrivate || tt.always)
			if err := p.control("tcp", tt.addr, nil); (err != nil) != want || err != nil && !errors.Is(err, ErrForbiddenAddress) {
				t.Errorf("control(%s) allow private %v: %v, want refused %v", tt.addr, p.allowPrivate, err, want)
			}
		}
	}
}

// counting is a loopback server that counts its requests and answers with h.
func counting(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func notifier(t *testing.T, allow *bool, log *bytes.Buffer) *Notifier {
	t.Helper()
	n, err := New(Config{Secret: testSecret, MaxAttempts: 2, Backoff: time.Millisecond, AllowPrivateNetworks: allow},
		nil, slog.New(slog.NewTextHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func ok(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }

// TestLoopbackCallbackRefusedUnlessAllowed delivers to a server on
// loopback: refused by default, by address and by a name that resolves
// to it (the dial-time check), reached once the operator allows private
// networks.
func TestLoopbackCallbackRefusedUnlessAllowed(t *testing.T) {
	srv, hits := counting(t, ok)
	ctx := context.Background()
	byName := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	for _, allow := range []*bool{nil, ptr(false)} {
		var log bytes.Buffer
		n := notifier(t, allow, &log)
		for _, u := range []string{srv.URL, byName} {
			// post alone: no check of the URL first, only the dialler's.
			if _, err := n.post(ctx, Job{ID: "cb_test", Verification: "VE1", URL: u, Body: []byte(`{}`)}); !errors.Is(err, ErrForbiddenAddress) {
				t.Errorf("post to %s: %v, want ErrForbiddenAddress", u, err)
			}
			deliverOnce(ctx, n, Job{ID: "cb_test", Verification: "VE1", URL: u, Body: []byte(`{}`)})
		}
		if !strings.Contains(log.String(), "callback destination not allowed") {
			t.Errorf("log %q does not say why", log.String())
		}
		if hits.Load() != 0 {
			t.Fatalf("the loopback server got %d requests", hits.Load())
		}
		u, _ := url.Parse(srv.URL)
		if err := n.CheckCallbackURL(u); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("CheckCallbackURL(%s) = %v, want refused", srv.URL, err)
		}
	}
	var log bytes.Buffer
	n := notifier(t, ptr(true), &log)
	deliverOnce(ctx, n, Job{ID: "cb_test", Verification: "VE1", URL: srv.URL, Body: []byte(`{}`)})
	if hits.Load() != 1 {
		t.Fatalf("allowed: the loopback server got %d requests, want 1", hits.Load())
	}
}

// TestRedirectNotFollowed: an IdP answering 3xx gets no second request,
// neither the POST again nor a GET carrying the signature, and the
// notice is not retried.
func TestRedirectNotFollowed(t *testing.T) {
	target, targetHits := counting(t, ok)
	for _, status := range []int{http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		redirect, hits := counting(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/stolen", status)
		})
		var log bytes.Buffer
		n := notifier(t, ptr(true), &log)
		deliverOnce(context.Background(), n, Job{ID: "cb_test", Verification: "VE1", URL: redirect.URL, Body: []byte(`{}`)})
		if hits.Load() != 1 || targetHits.Load() != 0 {
			t.Errorf("%d: %d requests to the IdP and %d to the redirect target, want 1 and 0", status, hits.Load(), targetHits.Load())
		}
		if !strings.Contains(log.String(), "callback redirected") {
			t.Errorf("%d: log %q", status, log.String())
		}
	}
}
