// Package routetest holds test helpers for routing: a GeoIP country
// database built with mmdbwriter and fake number-lookup servers (a
// generic HLR and Twilio Lookup v2) on loopback.
package routetest

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// GeoIPDB writes a MaxMind country database mapping each CIDR network to
// an ISO country code, in GeoLite2-Country's layout, and returns its path.
func GeoIPDB(t testing.TB, networks map[string]string) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-Country", RecordSize: 24})
	if err != nil {
		t.Fatalf("mmdbwriter: %v", err)
	}
	for cidr, country := range networks {
		_, network, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatalf("network %q: %v", cidr, err)
		}
		rec := mmdbtype.Map{
			"country":            mmdbtype.Map{"iso_code": mmdbtype.String(country)},
			"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String(country)},
		}
		if err := tree.Insert(network, rec); err != nil {
			t.Fatalf("insert %s: %v", cidr, err)
		}
	}
	path := filepath.Join(t.TempDir(), "country.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatalf("write mmdb: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// LookupServer is a fake number-lookup API on loopback. Answers maps an
// E.164 number to the JSON body returned for it; other numbers get 404.
// It counts the requests it served and checks credentials.
type LookupServer struct {
	*httptest.Server
	mu      sync.Mutex
	answers map[string]string
	hits    map[string]int
	user    string
	pass    string
}

// Hits is how many requests asked about e164.
func (s *LookupServer) Hits(e164 string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[e164]
}

// NewHLR serves GET /lookup?msisdn=<e164> with Basic auth user:pass,
// answering answers[e164].
func NewHLR(t testing.TB, user, pass string, answers map[string]string) *LookupServer {
	t.Helper()
	s := &LookupServer{answers: answers, hits: map[string]int{}, user: user, pass: pass}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /lookup", func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, r.URL.Query().Get("msisdn"), `{"error":"unknown msisdn"}`)
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// NewTwilioLookup serves Twilio Lookup v2's
// GET /v2/PhoneNumbers/{number}?Fields=line_type_intelligence with Basic
// auth sid:token. answers[e164] is the line_type_intelligence object; the
// rest of the answer is built as Twilio builds it.
func NewTwilioLookup(t testing.TB, sid, token string, answers map[string]string) *LookupServer {
	t.Helper()
	s := &LookupServer{answers: map[string]string{}, hits: map[string]int{}, user: sid, pass: token}
	for num, lti := range answers {
		s.answers[num] = fmt.Sprintf(`{"calling_country_code":null,"country_code":null,"phone_number":%q,`+
			`"national_format":null,"valid":true,"validation_errors":[],"caller_name":null,"sim_swap":null,`+
			`"call_forwarding":null,"line_status":null,"line_type_intelligence":%s,"identity_match":null,`+
			`"reassigned_number":null,"sms_pumping_risk":null,"phone_number_quality_score":null,"pre_fill":null,`+
			`"url":"https://lookups.twilio.com/v2/PhoneNumbers/%s"}`, num, lti, num)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/PhoneNumbers/{number}", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("Fields") != "line_type_intelligence" {
			http.Error(w, `{"code":20001,"message":"Fields must be line_type_intelligence here","status":400}`, http.StatusBadRequest)
			return
		}
		s.serve(w, r, r.PathValue("number"), `{"code":20404,"message":"The requested resource was not found","more_info":"https://www.twilio.com/docs/errors/20404","status":404}`)
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *LookupServer) serve(w http.ResponseWriter, r *http.Request, number, notFound string) {
	w.Header().Set("Content-Type", "application/json")
	if u, p, ok := r.BasicAuth(); !ok || u != s.user || p != s.pass {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"code":20003,"message":"Authenticate","status":401}`)
		return
	}
	s.mu.Lock()
	s.hits[number]++
	body, ok := s.answers[number]
	s.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, notFound)
		return
	}
	fmt.Fprint(w, body)
}
