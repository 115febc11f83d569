package soak

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verigate/verigate/internal/twiliotest"
	"github.com/verigate/verigate/twilio"
)

// Generations of the run, as the Redis restart moves through them. A
// request is judged by the generations it began and ended in.
const (
	genUp       = iota // Redis up
	genDown            // Redis stopped: every request that needs it must answer 503
	genComeback        // Redis being restarted and served again: either answer
	genUpAgain         // Redis up again
	generations
)

// phases tracks the generation and the requests in flight in each.
type phases struct {
	gen      atomic.Int32
	inflight [generations]atomic.Int64
	requests [generations]atomic.Int64 // begun in each
}

// begin counts a request in the current generation and returns it. Once
// advance has moved on and drain has seen a generation empty, no request
// counts in it again.
func (p *phases) begin() int32 {
	for {
		g := p.gen.Load()
		p.inflight[g].Add(1)
		if p.gen.Load() == g {
			p.requests[g].Add(1)
			return g
		}
		p.inflight[g].Add(-1)
	}
}

func (p *phases) end(began int32) int32 {
	p.inflight[began].Add(-1)
	return p.gen.Load()
}

func (p *phases) advance(g int32) { p.gen.Store(g) }

// drain waits until no request of generation g is in flight (at most
// limit); false if some still are.
func (p *phases) drain(g int32, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); p.inflight[g].Load() > 0; {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// expect is what a kind of request may be answered.
type expect struct {
	up   []int // while Redis is up
	down []int // while Redis is down; nil: as up
	// noAnswerOK: the gateway may close the connection instead of
	// answering (a body it refuses before reading all of it).
	noAnswerOK bool
}

// What each kind of request may be answered. While Redis is up a request
// that needs it may answer 503 all the same (a stall past go-redis's
// timeouts fails closed too; the report counts them); while it is down it
// must, and nothing else.
var (
	expStart    = expect{up: []int{201, 200, 429, 503}, down: []int{503}}
	expCheck    = expect{up: []int{200, 404, 409, 429, 503}, down: []int{503}}
	expGet      = expect{up: []int{200, 404, 503}, down: []int{503}}
	expNotFound = expect{up: []int{404, 503}, down: []int{503}} // another tenant's id, an unknown id
	expStatus   = expect{up: []int{204, 503}}                   // a status callback: recorded, or Redis is down
	expTwiML    = expect{up: []int{200}}
)

func only(s ...int) expect { return expect{up: s} }

func (e expect) allows(status int, began, ended int32) bool {
	if status == 0 {
		return e.noAnswerOK
	}
	down := e.down
	if down == nil {
		down = e.up
	}
	switch {
	case began == ended && began == genDown:
		return slices.Contains(down, status)
	case began == ended && (began == genUp || began == genUpAgain):
		return slices.Contains(e.up, status)
	}
	return slices.Contains(e.up, status) || slices.Contains(down, status)
}

// answer is what came back for one request.
type answer struct {
	status int
	body   []byte
	header http.Header
	began  int32
	ended  int32
}

// str is a top-level string field of a JSON answer.
func (a answer) str(field string) string {
	var m map[string]any
	if json.Unmarshal(a.body, &m) != nil {
		return ""
	}
	s, _ := m[field].(string)
	return s
}

func (a answer) ok() bool { return a.status == 200 || a.status == 201 }

// Keys of the two tenants: the soak's, and another that must see none of it.
const (
	tenant      = "soak"
	apiKey      = "soak-key-0123456789abcdef"
	otherTenant = "other"
	otherKey    = "other-key-0123456789abcdef"
	twilioSID   = "AC0000000000000000000000000000soak"
	twilioToken = "50a650a650a650a650a650a650a650a6"
)

// soak is the running load: the gateway, the fake Twilio, what was seen.
type soak struct {
	gw     *gateway
	fake   *twiliotest.Server
	client *http.Client
	led    *ledger
	ph     phases

	began       time.Time
	pools       map[pool][]number
	digitWords  map[string]byte // how the English catalogue speaks each digit
	codeLength  int
	gatherState string // a valid script state for forged gathers

	fraud fraudGate

	spanMu             sync.Mutex
	firstSend, lastEnd time.Time // the span in which a start was in flight

	// for the report, set by the test goroutine
	downRequests     int64
	probes           int
	sendSpan         time.Duration
	sendBound        map[string]int
	sent, maxSent    map[pool]int
	final, approved  map[pool]int
	lost             int
	approvalsByCheck int
	pressed          int
	failBound        int
	maxFailed        int
}

// do sends req as a request of kind and judges the answer by want.
func (s *soak) do(kind string, req *http.Request, want expect) answer {
	return s.track(kind, want, func() (int, []byte, http.Header, error) {
		resp, err := s.client.Do(req)
		if err != nil {
			return 0, nil, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, body, resp.Header, err
	})
}

// track runs one request made by send, counts it and judges its answer.
func (s *soak) track(kind string, want expect, send func() (int, []byte, http.Header, error)) answer {
	a := answer{began: s.ph.begin()}
	status, body, header, err := send()
	a.ended = s.ph.end(a.began)
	a.status, a.body, a.header = status, body, header
	if err != nil && status != 0 {
		err = nil // the answer came; its body was cut short
	}
	s.led.count(kind, a.status)
	if a.status == 503 && a.began == a.ended && (a.began == genUp || a.began == genUpAgain) {
		s.led.unavailableWhileUp()
	}
	if !want.allows(a.status, a.began, a.ended) {
		detail := strings.TrimSpace(string(body[:min(len(body), 200)]))
		if err != nil {
			detail = err.Error()
		}
		s.led.surprise(kind, a.status, fmt.Sprintf("generation %d→%d: %s", a.began, a.ended, detail))
	}
	return a
}

// span widens the span of starts by one start sent at begin.
func (s *soak) span(begin time.Time) {
	end := time.Now()
	s.spanMu.Lock()
	defer s.spanMu.Unlock()
	if s.firstSend.IsZero() || begin.Before(s.firstSend) {
		s.firstSend = begin
	}
	if end.After(s.lastEnd) {
		s.lastEnd = end
	}
}

func (s *soak) startSpan() time.Duration {
	s.spanMu.Lock()
	defer s.spanMu.Unlock()
	return s.lastEnd.Sub(s.firstSend)
}

// api builds a REST request with a bearer key (none if key is "").
func (s *soak) api(method, path, key, contentType string, body io.Reader) *http.Request {
	req, err := http.NewRequest(method, s.gw.url+path, body)
	if err != nil {
		panic(err) // the soak's own paths: a bug here
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

func jsonBody(v any) io.Reader {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return bytes.NewReader(b)
}

// startBody is a valid start for n.
func startBody(n number) map[string]string {
	b := map[string]string{"to": n.e164, "channel": n.pool.channel(), "locale": "en"}
	switch n.pool {
	case poolCode:
		b["call_mode"] = "code"
	case poolPress, poolSilent, poolFraud:
		b["call_mode"] = "approve"
	}
	return b
}

// --- the actions ---

type action struct {
	weight int
	run    func(s *soak, r *rand.Rand)
}

var actions = []action{
	{24, (*soak).start},
	{3, (*soak).startIdempotent},
	{12, (*soak).checkRight},
	{14, (*soak).checkWrong},
	{15, (*soak).badRequest},
	{16, (*soak).forge},
	{8, (*soak).replay},
	{8, (*soak).get},
	{3, (*soak).cancel},
	{3, (*soak).startBlocked},
}

// worker runs actions until ctx ends, resting pause (±50 %) between them
// so the load stays bounded on a shared machine.
func (s *soak) worker(ctx context.Context, seed uint64, pause time.Duration) {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	total := 0
	for _, a := range actions {
		total += a.weight
	}
	for ctx.Err() == nil {
		n := r.IntN(total)
		for _, a := range actions {
			if n < a.weight {
				a.run(s, r)
				break
			}
			n -= a.weight
		}
		waitCtx(ctx, pause/2+time.Duration(r.Int64N(int64(pause)+1)))
	}
}

// pick is a number of the soak: SMS most often.
func (s *soak) pick(r *rand.Rand, pools ...pool) number {
	if len(pools) == 0 {
		pools = []pool{poolSMS, poolSMS, poolSMS, poolCode, poolPress, poolSilent}
	}
	ns := s.pools[pools[r.IntN(len(pools))]]
	return ns[r.IntN(len(ns))]
}

// start sends a valid start, an SMS or a call as the number's pool says.
func (s *soak) start(r *rand.Rand) { s.startNumber(s.pick(r)) }

func (s *soak) startNumber(n number) answer {
	kind := "start_" + n.pool.String()
	begin := time.Now()
	a := s.do(kind, s.api("POST", "/v1/verifications", apiKey, "application/json", jsonBody(startBody(n))), expStart)
	s.span(begin)
	if a.ok() {
		if st := a.str("status"); st != "pending" {
			s.led.violate("%s to %s answered %d with status %q", kind, n.e164, a.status, st)
		}
		s.led.started(a.str("id"), n)
	}
	return a
}

// fraudGate says whether the fraud number is blocked: armed once a call
// to it ended with a fraud report recorded, disarmed before Redis (which
// holds the block) stops. Each change is a new epoch.
type fraudGate struct {
	mu    sync.Mutex
	armed bool
	epoch int
	arms  int
}

func (g *fraudGate) state() (epoch int, armed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.epoch, g.armed
}

func (g *fraudGate) set(armed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = armed
	g.epoch++
	if armed {
		g.arms++
	}
}

// startBlocked starts an SMS or a call to the fraud number while it is
// blocked: a limit must refuse it (or Redis fail), whatever the load.
func (s *soak) startBlocked(r *rand.Rand) {
	epoch, armed := s.fraud.state()
	if !armed {
		return
	}
	n := s.pools[poolFraud][0]
	body := startBody(n)
	if r.IntN(2) == 0 {
		body = map[string]string{"to": n.e164, "channel": "sms"}
	}
	begin := time.Now()
	a := s.do("start_blocked", s.api("POST", "/v1/verifications", apiKey, "application/json", jsonBody(body)), expStart)
	s.span(begin)
	if e, still := s.fraud.state(); e == epoch && still && a.status != 429 && a.status != 503 {
		s.led.violate("%s start to %s, blocked after a fraud report, answered %d %.100s", body["channel"], n.e164, a.status, a.body)
	}
}

// startIdempotent sends one start twice with one Idempotency-Key: a
// success is replayed, with the same verification, and sends once.
func (s *soak) startIdempotent(r *rand.Rand) {
	n := s.pick(r)
	key := fmt.Sprintf("soak-%016x", r.Uint64())
	send := func(kind string) answer {
		req := s.api("POST", "/v1/verifications", apiKey, "application/json", jsonBody(startBody(n)))
		req.Header.Set("Idempotency-Key", key)
		begin := time.Now()
		a := s.do(kind, req, expStart)
		s.span(begin)
		if a.ok() {
			s.led.started(a.str("id"), n)
		}
		return a
	}
	first := send("start_idempotent")
	second := send("start_idempotent_again")
	// Only a run wholly while Redis was up keeps the record between them.
	if !first.ok() || first.began != second.ended || (first.began != genUp && first.began != genUpAgain) {
		return
	}
	replayed := second.header.Get("Idempotent-Replayed") == "true"
	s.led.idempotent(replayed)
	if second.status != first.status || second.str("id") != first.str("id") || !replayed {
		s.led.violate("Idempotency-Key %s: first %d %s, again %d %s (replayed %v)", key, first.status, first.str("id"), second.status, second.str("id"), replayed)
	}
}

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

// delivered is every code the fake delivered to n (in SMS bodies, or
// read out in calls), and the latest.
func (s *soak) delivered(n number) (all map[string]bool, last string) {
	all = map[string]bool{}
	switch n.pool {
	case poolSMS, poolProbe:
		for _, m := range s.fake.MessagesTo(n.e164) {
			if c := sixDigits.FindString(m.Body); c != "" {
				all[c], last = true, c
			}
		}
	case poolCode:
		for _, c := range s.fake.CallsTo(n.e164) {
			if code := s.spoken(c); code != "" {
				all[code], last = true, code
			}
		}
	}
	return all, last
}

// spoken is the code read out in a code-mode call: the first run of
// digit words as long as a code.
func (s *soak) spoken(c twiliotest.Call) string {
	var run []byte
	for _, say := range c.Said {
		d, ok := s.digitWords[say.Text]
		if !ok {
			if len(run) == s.codeLength {
				return string(run)
			}
			run = run[:0]
			continue
		}
		run = append(run, d)
	}
	if len(run) == s.codeLength {
		return string(run)
	}
	return ""
}

// checkTarget is a number whose code the soak can know, and its latest
// verification.
func (s *soak) checkTarget(r *rand.Rand) (number, string) {
	n := s.pick(r, poolSMS, poolSMS, poolCode)
	return n, s.led.latest(n)
}

// check sends c by id (or by number when c.id is empty) and records it.
func (s *soak) check(kind string, c *checkTry) {
	var a answer
	if c.id != "" {
		a = s.do(kind, s.api("POST", "/v1/verifications/"+c.id+"/check", apiKey, "application/json", jsonBody(map[string]string{"code": c.code})), expCheck)
	} else {
		a = s.do(kind+"_by_number", s.api("POST", "/v1/verifications/check", apiKey, "application/json", jsonBody(map[string]string{"to": c.num.e164, "code": c.code})), expCheck)
	}
	c.status = a.status
	if a.status == 200 {
		c.result = a.str("status")
	}
	s.led.checked(c, kind, a.str("id"))
}

// checkRight checks a verification with the latest code the fake
// delivered to its number (right unless a newer verification replaced it).
func (s *soak) checkRight(r *rand.Rand) {
	n, id := s.checkTarget(r)
	_, code := s.delivered(n)
	if code == "" {
		s.startNumber(n)
		return
	}
	if r.IntN(3) == 0 {
		id = ""
	}
	s.check("check_right", &checkTry{id: id, num: n, code: code})
}

// checkWrong checks with a code the fake never delivered to the number.
func (s *soak) checkWrong(r *rand.Rand) {
	n, id := s.checkTarget(r)
	if id == "" {
		s.startNumber(n)
		return
	}
	seen, _ := s.delivered(n)
	code := ""
	for code == "" || seen[code] {
		code = fmt.Sprintf("%06d", r.IntN(1_000_000))
	}
	if r.IntN(3) == 0 {
		id = ""
	}
	s.check("check_wrong", &checkTry{id: id, num: n, code: code})
}

// get reads a verification; one of a silent phone must never be approved.
func (s *soak) get(r *rand.Rand) {
	v, ok := s.led.someID(r.IntN, poolSMS, poolCode, poolPress, poolSilent)
	if !ok {
		return
	}
	a := s.do("get", s.api("GET", "/v1/verifications/"+v.id, apiKey, "", nil), expGet)
	if a.status == 200 && a.str("status") == "approved" {
		s.led.sawApproved(v.id)
	}
}

// cancel cancels a verification whose code the soak can know: once
// canceled, nothing may approve it.
func (s *soak) cancel(r *rand.Rand) {
	v, ok := s.led.someID(r.IntN, poolSMS, poolCode)
	if !ok {
		return
	}
	a := s.do("cancel", s.api("POST", "/v1/verifications/"+v.id+"/cancel", apiKey, "", nil), expect{up: []int{200, 404, 409, 503}, down: []int{503}})
	if a.status == 200 {
		if st := a.str("status"); st != "canceled" {
			s.led.violate("cancel of %s answered 200 with status %q", v.id, st)
		}
		s.led.canceledID(v.id)
	}
}

// --- malformed requests and bad keys on the REST API ---

type badCase struct {
	kind  string
	want  expect
	build func(s *soak, r *rand.Rand) *http.Request
}

var badCases = []badCase{
	{"bad_json", only(400), func(s *soak, r *rand.Rand) *http.Request {
		return s.api("POST", "/v1/verifications", apiKey, "application/json", strings.NewReader(`{"to":"+49151`))
	}},
	{"bad_too_large", expect{up: []int{413}, noAnswerOK: true}, func(s *soak, r *rand.Rand) *http.Request {
		body := `{"to":"+4915123450001","channel":"sms","user_id":"` + strings.Repeat("u", 100<<10) + `"}`
		return s.api("POST", "/v1/verifications", apiKey, "application/json", strings.NewReader(body))
	}},
	{"bad_too_large_chunked", expect{up: []int{413}, noAnswerOK: true}, func(s *soak, r *rand.Rand) *http.Request {
		// No Content-Length: the limit must hold while reading.
		body := io.MultiReader(strings.NewReader(`{"to":"+4915123450001","user_id":"`), io.LimitReader(repeatReader('u'), 200<<10), strings.NewReader(`"}`))
		return s.api("POST", "/v1/verifications", apiKey, "application/json", body)
	}},
	{"bad_form_body", only(400), func(s *soak, r *rand.Rand) *http.Request {
		return s.api("POST", "/v1/verifications", apiKey, "application/x-www-form-urlencoded", strings.NewReader("to=%2B4915123450001&channel=sms"))
	}},
	{"bad_text_body", only(400), func(s *soak, r *rand.Rand) *http.Request {
		return s.api("POST", "/v1/verifications", apiKey, "text/plain", strings.NewReader("send a code to +4915123450001 please"))
	}},
	{"bad_unknown_field", only(400), func(s *soak, r *rand.Rand) *http.Request {
		return s.api("POST", "/v1/verifications", apiKey, "application/json", strings.NewReader(`{"to":"+4915123450001","channel":"sms","approved":true}`))
	}},
	{"bad_field_type", only(400), func(s *soak, r *rand.Rand) *http.Request {
		return s.api("POST", "/v1/verifications", apiKey, "application/json", strings.NewReader(`{"to":4915123450001,"channel":"sms"}`))
	}},
	{"bad_two_objects", only(400), func(s *soak, r *rand.Rand) *http.Request {
		return s.api("POST", "/v1/verifications", apiKey, "application/json", strings.NewReader(`{"to":"+4915123450001"}{"to":"+4915123450002"}`))
	}},
	{"bad_number", only(400), func(s *soak, r *rand.Rand) *http.Request {
		return s.api("POST", "/v1/verifications", apiKey, "application/json", strings.NewReader(`{"to":"+49000","channel":"sms"}`))
	}},
	{"bad_channel", only(400), func(s *soak, r *rand.Rand) *http.Request {
		return s.api("POST", "/v1/verifications", apiKey, "application/json", strings.NewReader(`{"to":"+4915123450001","channel":"fax"}`))
	}},
	{"bad_code_format", only(400), func(s *soak, r *rand.Rand) *http.Request {
		return s.api("POST", "/v1/verifications/check", apiKey, "application/json", strings.NewReader(`{"to":"+4915123450001","code":"12ab56"}`))
	}},
	{"bad_idempotency_key", only(400), func(s *soak, r *rand.Rand) *http.Request {
		req := s.api("POST", "/v1/verifications", apiKey, "application/json", jsonBody(startBody(s.pick(r, poolSMS))))
		req.Header.Set("Idempotency-Key", strings.Repeat("k", 300))
		return req
	}},
	{"bad_no_key", only(401), func(s *soak, r *rand.Rand) *http.Request {
		return s.api("POST", "/v1/verifications", "", "application/json", jsonBody(startBody(s.pick(r))))
	}},
	{"bad_wrong_key", only(401), func(s *soak, r *rand.Rand) *http.Request {
		return s.api("POST", "/v1/verifications", "soak-key-0123456789abcdeX", "application/json", jsonBody(startBody(s.pick(r))))
	}},
	{"bad_basic_auth", only(401), func(s *soak, r *rand.Rand) *http.Request {
		req := s.api("POST", "/v1/verifications", "", "application/json", jsonBody(startBody(s.pick(r))))
		req.SetBasicAuth(tenant, apiKey)
		return req
	}},
	{"bad_method", only(405), func(s *soak, r *rand.Rand) *http.Request {
		return s.api("DELETE", "/v1/verifications", apiKey, "", nil)
	}},
	{"unknown_id_check", expNotFound, func(s *soak, r *rand.Rand) *http.Request {
		return s.api("POST", "/v1/verifications/"+randomHex(r, 16)+"/check", apiKey, "application/json", strings.NewReader(`{"code":"123456"}`))
	}},
	{"other_tenant_get", expNotFound, func(s *soak, r *rand.Rand) *http.Request {
		v, ok := s.led.someID(r.IntN, poolSMS, poolCode, poolPress, poolSilent)
		if !ok {
			return nil
		}
		return s.api("GET", "/v1/verifications/"+v.id, otherKey, "", nil)
	}},
	{"other_tenant_cancel", expNotFound, func(s *soak, r *rand.Rand) *http.Request {
		v, ok := s.led.someID(r.IntN, poolSMS, poolCode, poolPress, poolSilent)
		if !ok {
			return nil
		}
		return s.api("POST", "/v1/verifications/"+v.id+"/cancel", otherKey, "", nil)
	}},
	{"other_tenant_check", expNotFound, func(s *soak, r *rand.Rand) *http.Request {
		// The other tenant holds the right code: still not its verification.
		n, id := s.checkTarget(r)
		_, code := s.delivered(n)
		if id == "" || code == "" {
			return nil
		}
		return s.api("POST", "/v1/verifications/"+id+"/check", otherKey, "application/json", jsonBody(map[string]string{"code": code}))
	}},
	{"other_tenant_check_by_number", expNotFound, func(s *soak, r *rand.Rand) *http.Request {
		n, _ := s.checkTarget(r)
		_, code := s.delivered(n)
		if code == "" {
			return nil
		}
		return s.api("POST", "/v1/verifications/check", otherKey, "application/json", jsonBody(map[string]string{"to": n.e164, "code": code}))
	}},
}

func (s *soak) badRequest(r *rand.Rand) {
	c := badCases[r.IntN(len(badCases))]
	if req := c.build(s, r); req != nil {
		s.do(c.kind, req, c.want)
	}
}

// repeatReader yields b forever.
type repeatReader byte

func (b repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

func randomHex(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return hex.EncodeToString(b)
}

// --- forged and replayed Twilio webhooks ---

// forgedSignature is a signature of the right shape that Twilio did not make.
func forgedSignature(r *rand.Rand) string {
	b := make([]byte, sha1.Size)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// webhook posts a form to the gateway's /twilio/ route with signature
// sig ("" sends none).
func (s *soak) webhook(path string, query url.Values, form string, contentType, sig string) *http.Request {
	u := s.gw.url + "/twilio" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest("POST", u, strings.NewReader(form))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", contentType)
	if sig != "" {
		req.Header.Set("X-Twilio-Signature", sig)
	}
	return req
}

const formType = "application/x-www-form-urlencoded"

// callToken is the sealed call context of a call the fake placed to a
// number of pool p (Twilio's view of it: the voice URL's c).
func (s *soak) callToken(r *rand.Rand, p pool) (string, bool) {
	calls := s.fake.CallsTo(s.pick(r, p).e164)
	if len(calls) == 0 {
		return "", false
	}
	u, err := url.Parse(calls[r.IntN(len(calls))].URL)
	if err != nil {
		return "", false
	}
	return u.Query().Get("c"), true
}

// forge sends a webhook Twilio did not send.
func (s *soak) forge(r *rand.Rand) {
	switch r.IntN(9) {
	case 0: // a delivery failure for a real SMS verification, unsigned
		v, ok := s.led.someID(r.IntN, poolSMS)
		if !ok {
			return
		}
		form := url.Values{"MessageSid": {"SM" + randomHex(r, 16)}, "MessageStatus": {"undelivered"}, "ErrorCode": {"30003"}, "AccountSid": {twilioSID}}
		s.do("forged_sms_status_unsigned", s.webhook("/status/sms", url.Values{"v": {v.id}, "a": {"1"}}, form.Encode(), formType, ""), only(403))
	case 1: // the same with a made-up signature
		v, ok := s.led.someID(r.IntN, poolSMS)
		if !ok {
			return
		}
		form := url.Values{"MessageSid": {"SM" + randomHex(r, 16)}, "MessageStatus": {"failed"}, "AccountSid": {twilioSID}}
		s.do("forged_sms_status", s.webhook("/status/sms", url.Values{"v": {v.id}, "a": {"1"}}, form.Encode(), formType, forgedSignature(r)), only(403))
	case 2: // a call's end for a real call verification, signed with another key
		v, ok := s.led.someID(r.IntN, poolPress, poolSilent)
		if !ok {
			return
		}
		q := url.Values{"v": {v.id}, "a": {"1"}}
		form := url.Values{"CallSid": {"CA" + randomHex(r, 16)}, "CallStatus": {"no-answer"}, "AccountSid": {twilioSID}}
		sig := twiliotest.Signature("not-the-auth-token", s.gw.url+"/twilio/status/call?"+q.Encode(), form)
		s.do("forged_call_status", s.webhook("/status/call", q, form.Encode(), formType, sig), only(403))
	case 3, 4: // '#' for a real call held ringing at a silent phone
		token, ok := s.callToken(r, poolSilent)
		if !ok {
			return
		}
		q := url.Values{"c": {token}, "s": {s.gatherState}}
		form := url.Values{"CallSid": {"CA" + randomHex(r, 16)}, "Digits": {"#"}, "AccountSid": {twilioSID}, "CallStatus": {"in-progress"}}
		sigs := []string{
			forgedSignature(r),
			twiliotest.Signature("not-the-auth-token", s.gw.url+"/twilio/voice/gather?"+q.Encode(), form),
			s.liftedSignature(r), // Twilio's, but for another request
		}
		sig := sigs[r.IntN(len(sigs))]
		if sig == "" {
			sig = sigs[0]
		}
		s.do("forged_gather_pound", s.webhook("/voice/gather", q, form.Encode(), formType, sig), only(403))
	case 5: // the TwiML of a code-mode call (it reads the code out), unsigned and forged
		token, ok := s.callToken(r, poolCode)
		if !ok {
			return
		}
		form := url.Values{"CallSid": {"CA" + randomHex(r, 16)}, "AccountSid": {twilioSID}, "CallStatus": {"in-progress"}}
		sig := forgedSignature(r)
		if r.IntN(2) == 0 {
			sig = ""
		}
		s.do("forged_voice_code", s.webhook("/voice", url.Values{"c": {token}}, form.Encode(), formType, sig), only(403))
	case 6: // a body far over the bound, with a signature of the right shape
		body := "Digits=%23&Pad=" + strings.Repeat("p", 1<<20)
		s.do("forged_huge", s.webhook("/status/sms", url.Values{"v": {randomHex(r, 16)}}, body, formType, forgedSignature(r)), expect{up: []int{413}, noAnswerOK: true})
	case 7: // too many parameters in a small body
		var b strings.Builder
		for i := range 300 {
			fmt.Fprintf(&b, "k%d=v&", i)
		}
		s.do("forged_many_params", s.webhook("/status/call", url.Values{"v": {randomHex(r, 16)}}, b.String(), formType, forgedSignature(r)), only(413))
	case 8: // JSON where Twilio posts forms
		s.do("forged_json", s.webhook("/voice/gather", url.Values{"c": {"x"}}, `{"Digits":"#"}`, "application/json", forgedSignature(r)), only(400))
	}
}

// liftedSignature is the signature of a request Twilio really sent (the
// fake's), to be put on another request; "" when there is none yet.
func (s *soak) liftedSignature(r *rand.Rand) string {
	cbs := s.fake.Callbacks()
	if len(cbs) == 0 {
		return ""
	}
	return cbs[r.IntN(len(cbs))].Signature
}

// replay sends again, byte for byte, a request Twilio really sent: a
// status callback or a TwiML request of a call (Twilio retries both).
func (s *soak) replay(r *rand.Rand) {
	var (
		req  twiliotest.Request
		kind string
		want expect
	)
	if r.IntN(2) == 0 {
		cbs := s.fake.Callbacks()
		if len(cbs) == 0 {
			return
		}
		req, kind, want = cbs[r.IntN(len(cbs))], "replay_status", expStatus
	} else {
		var reqs []twiliotest.Request
		for _, c := range s.fake.CallsTo(s.pick(r, poolCode, poolPress, poolSilent).e164) {
			reqs = append(reqs, c.Requests...)
		}
		if len(reqs) == 0 {
			return
		}
		req, kind, want = reqs[r.IntN(len(reqs))], "replay_twiml", expTwiML
		if time.Since(s.began) > twilio.DefaultCallTTL-5*time.Minute {
			// The call's sealed context may have expired: refused as it should be.
			want = only(200, 400)
		}
	}
	s.do(kind, s.signed(req), want)
}

// signed is a recorded Twilio request, to send again.
func (s *soak) signed(rec twiliotest.Request) *http.Request {
	req, err := http.NewRequest("POST", rec.URL, strings.NewReader(rec.Params.Encode()))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", formType)
	req.Header.Set("X-Twilio-Signature", rec.Signature)
	return req
}
