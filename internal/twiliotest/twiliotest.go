// Package twiliotest is a fake Twilio for tests: an HTTP server on
// loopback that speaks Twilio's REST wire format (Basic auth, form-encoded
// POST to /2010-04-01/Accounts/{Sid}/Messages.json and Calls.json, JSON
// resources and errors shaped like Twilio's), records the messages it is
// asked to send, and plays the phone for the calls it is asked to place:
// it fetches the gateway's TwiML with a valid X-Twilio-Signature, executes
// <Say>, <Play>, <Pause>, <Gather>, <Redirect> and <Hangup> the way
// Twilio's TwiML reference describes them, answers gathers with scripted
// keys, and posts signed status callbacks. For each <Play> it fetches the
// media as Twilio does (a plain GET, no signature), refuses a Content-Type
// Twilio would not play (13420) or a failed fetch (11200), decodes WAV
// files and records them (Call.Plays).
//
// Gather, as the reference describes it (docs/TWILIO.md cites it): the
// finishOnKey attribute defaults to "#" and is left out of Digits; a
// finishOnKey="" attribute means no key finishes the gather; numDigits
// ends it once that many keys came; when the timeout passes with no key,
// or the caller presses only the finish key, Twilio does not request the
// action URL but falls through to the verb after the <Gather>, unless
// actionOnEmptyResult="true"; the action defaults to the current document
// URL and the method to POST. Timeouts are not waited for: a '.' in a
// phone's keys is a gather that times out.
package twiliotest

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config sets up a fake Twilio.
type Config struct {
	AccountSID string
	AuthToken  string
	// APIKey and APISecret are accepted as Basic auth too, when set.
	APIKey    string
	APISecret string
	// WebhookTransport carries the fake's requests to the gateway's
	// webhooks. If nil, only loopback addresses are reached (any other
	// host fails the request, so a test never leaves the machine);
	// ProxyTransport plays a reverse proxy in front of the gateway.
	WebhookTransport http.RoundTripper
	// TLS serves the REST API over HTTPS with a certificate of its own:
	// clients trust it through ClientTLS, or CertPEM written where the
	// process reads roots from. HTTP/1.1 only unless HTTP2 is set too.
	TLS   bool
	HTTP2 bool
	// OnMessage, if set, is told of each message as it is accepted (a
	// benchmark reads its codes there without a scan of Messages).
	OnMessage func(Message)
	// SMSStatuses, if not nil, are the status callbacks of messages to
	// numbers with no SetSMSOutcome (sent, then delivered, if nil); an
	// empty list posts none.
	SMSStatuses []string
}

// Server is a running fake Twilio. Close it when done.
type Server struct {
	// URL is the REST API base, for twilio.Config.BaseURL.
	URL string

	cfg    Config
	srv    *httptest.Server
	conns  atomic.Int64
	hc     *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	messages  []Message
	calls     []*Call
	phones    map[string]Phone
	outcomes  map[string]SMSOutcome
	callbacks []Request
	errs      []error
}

// Message is one message the fake was asked to send.
type Message struct {
	Sid                 string
	To                  string
	From                string
	MessagingServiceSid string
	Body                string
	StatusCallback      string
}

// SMSOutcome is what happens to messages to one number: the statuses
// posted to the StatusCallback in order, and the ErrorCode sent with
// undelivered or failed.
type SMSOutcome struct {
	Statuses  []string
	ErrorCode string
}

// Phone is how the phone at one number behaves when called.
type Phone struct {
	// Answer is "" to pick up, or the final status of a call that is not
	// answered: "busy", "no-answer" or "failed".
	Answer string
	// Keys are pressed one per character as gathers ask for them; a '.'
	// is a gather that times out with no key. When they run out, every
	// further gather times out.
	Keys string
	// Hold, when set, keeps a call ringing until it is closed; then the
	// call goes on as Answer says. Tests use it to order the outcomes of
	// several calls (WaitCall waits for one to end).
	Hold <-chan struct{}
}

// Call is one call the fake placed, as the phone experienced it.
type Call struct {
	Sid    string
	To     string
	From   string
	URL    string
	Status string // final CallStatus
	// Said is every <Say> heard, in order.
	Said []Say
	// Plays is every <Play> heard, in order, with the media fetched.
	Plays []Play
	// Gathers is every <Gather> executed, in order.
	Gathers []Gather
	// Requests are the TwiML documents fetched, in order.
	Requests []Request
	// StatusCallback is the URL the call's status callbacks go to.
	StatusCallback string

	done chan struct{} // closed when the phone has played the call
}

// Say is one <Say>.
type Say struct{ Text, Language, Voice string }

// Gather is one executed <Gather>: its attributes and what it did.
type Gather struct {
	Input          string
	FinishOnKey    string
	FinishOnKeySet bool // the attribute was present (finishOnKey="" differs from absent)
	NumDigits      int
	Timeout        int // seconds
	Action         string
	// Digits is what was posted to the action; Posted false means the
	// gather fell through to the next verb.
	Digits string
	Posted bool
}

// Request is one signed request the fake sent to the gateway.
type Request struct {
	Method    string
	URL       string
	Params    url.Values
	Signature string
	Status    int // the gateway's HTTP status
}

// New starts a fake Twilio on loopback.
func New(cfg Config) *Server {
	s := &Server{
		cfg:      cfg,
		phones:   map[string]Phone{},
		outcomes: map[string]SMSOutcome{},
	}
	rt := cfg.WebhookTransport
	if rt == nil {
		rt = loopbackOnly
	}
	s.hc = &http.Client{
		Transport:     rt,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveAPI))
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	if cfg.TLS {
		s.srv.EnableHTTP2 = cfg.HTTP2
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	s.URL = s.srv.URL
	return s
}

// Connections is how many connections the REST API has accepted.
func (s *Server) Connections() int64 { return s.conns.Load() }

// ClientTLS is a client TLS configuration that trusts the server (nil
// without Config.TLS).
func (s *Server) ClientTLS() *tls.Config {
	if !s.cfg.TLS {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.srv.Certificate())
	return &tls.Config{RootCAs: pool}
}

// CertPEM is the server's certificate in PEM (nil without Config.TLS): a
// gateway in another process trusts it when it is the file SSL_CERT_FILE
// names.
func (s *Server) CertPEM() []byte {
	if !s.cfg.TLS {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// Close stops every call and callback in flight, then the server.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
	s.srv.Close()
}

// Wait blocks until every call and status callback in flight is done.
func (s *Server) Wait() { s.wg.Wait() }

// SetWebhookTransport replaces Config.WebhookTransport, for a gateway
// started after the fake. Set it before any call or message.
func (s *Server) SetWebhookTransport(rt http.RoundTripper) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hc.Transport = rt
}

// SetPhone scripts the phone at number to.
func (s *Server) SetPhone(to string, p Phone) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.phones[to] = p
}

// SetSMSOutcome scripts the status callbacks of messages to number to;
// the default is sent, then delivered.
func (s *Server) SetSMSOutcome(to string, o SMSOutcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outcomes[to] = o
}

// Messages returns the messages sent so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// MessagesTo returns the messages sent to the number to so far.
func (s *Server) MessagesTo(to string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.To == to {
			out = append(out, m)
		}
	}
	return out
}

// Calls returns copies of the calls placed so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		out[i] = c.copy()
	}
	return out
}

// CallsTo returns copies of the calls placed to the number to so far.
func (s *Server) CallsTo(to string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if c.To == to {
			out = append(out, c.copy())
		}
	}
	return out
}

// copy is c with its own slices; s.mu is held.
func (c *Call) copy() Call {
	out := *c
	out.Said = append([]Say(nil), c.Said...)
	out.Gathers = append([]Gather(nil), c.Gathers...)
	out.Plays = append([]Play(nil), c.Plays...)
	out.Requests = append([]Request(nil), c.Requests...)
	return out
}

// WaitCall blocks until the call sid has ended and its last status
// callback was answered (or the server closed). It reports false when no
// such call was placed.
func (s *Server) WaitCall(sid string) bool {
	s.mu.Lock()
	var done chan struct{}
	for _, c := range s.calls {
		if c.Sid == sid {
			done = c.done
		}
	}
	s.mu.Unlock()
	if done == nil {
		return false
	}
	<-done
	return true
}

// Callbacks returns the status callbacks posted so far, in order.
func (s *Server) Callbacks() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.callbacks...)
}

// Errors returns what went wrong while playing calls and callbacks
// (unreadable TwiML, unreachable webhooks, non-2xx answers).
func (s *Server) Errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

func (s *Server) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, fmt.Errorf(format, args...))
}

// Signature computes X-Twilio-Signature as Twilio does: HMAC-SHA1, keyed
// with the auth token, of the full URL followed by every POST parameter's
// name and value, sorted by name; base64.
func Signature(authToken, fullURL string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		vals := append([]string(nil), params[k]...)
		sort.Strings(vals)
		for _, v := range vals {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Post sends params to rawURL as Twilio would, signed with signature
// (Signature of the request for a valid one; "" sends no header), and
// returns the gateway's status and body.
func (s *Server) Post(ctx context.Context, rawURL string, params url.Values, signature string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, strings.NewReader(params.Encode()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	if signature != "" {
		req.Header.Set("X-Twilio-Signature", signature)
	}
	s.mu.Lock()
	hc := s.hc
	s.mu.Unlock()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var body strings.Builder
	buf := make([]byte, 4096)
	for body.Len() < 1<<20 {
		n, err := resp.Body.Read(buf)
		body.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, body.String(), nil
}

// Resend posts a recorded request again exactly as it was (a Twilio retry).
func (s *Server) Resend(ctx context.Context, r Request) (int, error) {
	status, _, err := s.Post(ctx, r.URL, r.Params, r.Signature)
	return status, err
}

// signedPost posts params to rawURL with a valid signature and records it.
func (s *Server) signedPost(ctx context.Context, rawURL string, params url.Values) (Request, string, error) {
	r := Request{Method: http.MethodPost, URL: rawURL, Params: params, Signature: Signature(s.cfg.AuthToken, rawURL, params)}
	status, body, err := s.Post(ctx, rawURL, params, r.Signature)
	r.Status = status
	return r, body, err
}

// ProxyTransport plays a reverse proxy: requests under publicBase (scheme,
// host and path) go to target (the gateway's real listener) with
// publicBase's path replaced by target's, as nginx's
// `location /gw/ { proxy_pass http://gateway/; }` does; the query is
// unchanged and the Host header stays the public one. Other URLs are
// refused.
func ProxyTransport(publicBase, target string) http.RoundTripper {
	pub, err1 := url.Parse(publicBase)
	tgt, err2 := url.Parse(target)
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("twiliotest proxy: bad URLs %q, %q", publicBase, target)
		}
		rest, under := strings.CutPrefix(r.URL.Path, strings.TrimRight(pub.Path, "/"))
		if r.URL.Scheme != pub.Scheme || r.URL.Host != pub.Host || !under || (rest != "" && rest[0] != '/') {
			return nil, fmt.Errorf("twiliotest proxy: no route to %s", r.URL)
		}
		out := r.Clone(r.Context())
		out.URL.Scheme, out.URL.Host = tgt.Scheme, tgt.Host
		out.URL.Path, out.URL.RawPath = strings.TrimRight(tgt.Path, "/")+rest, ""
		out.Host = pub.Host
		out.Header.Set("X-Forwarded-Proto", pub.Scheme)
		out.Header.Set("X-Forwarded-Host", pub.Host)
		return http.DefaultTransport.RoundTrip(out)
	})
}

// loopbackOnly reaches 127.0.0.0/8 and ::1 only, without name lookups.
var loopbackOnly = roundTripFunc(func(r *http.Request) (*http.Response, error) {
	ip := net.ParseIP(r.URL.Hostname())
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("twiliotest: %s is not a loopback address", r.URL.Host)
	}
	return http.DefaultTransport.RoundTrip(r)
})

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// --- REST API ---

var (
	messagesPath = regexp.MustCompile(`^/2010-04-01/Accounts/([^/]+)/Messages\.json$`)
	callsPath    = regexp.MustCompile(`^/2010-04-01/Accounts/([^/]+)/Calls\.json$`)
	e164         = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

const apiVersion = "2010-04-01"

// restError writes an error the way Twilio's 2010-04-01 API does.
func restError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"code": code, "message": msg, "more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), "status": status,
	})
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	authed := ok && ((user == s.cfg.AccountSID && pass == s.cfg.AuthToken) ||
		(s.cfg.APIKey != "" && user == s.cfg.APIKey && pass == s.cfg.APISecret))
	if !authed {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		restError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	var handle func(http.ResponseWriter, *http.Request)
	var m []string
	if m = messagesPath.FindStringSubmatch(r.URL.Path); m != nil {
		handle = s.createMessage
	} else if m = callsPath.FindStringSubmatch(r.URL.Path); m != nil {
		handle = s.createCall
	}
	if handle == nil || m[1] != s.cfg.AccountSID {
		restError(w, http.StatusNotFound, 20404, fmt.Sprintf("The requested resource %s was not found", r.URL.Path))
		return
	}
	if r.Method != http.MethodPost {
		restError(w, http.StatusMethodNotAllowed, 20004, "Method not allowed")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		restError(w, http.StatusBadRequest, 20001, "Content-Type must be application/x-www-form-urlencoded")
		return
	}
	if err := r.ParseForm(); err != nil {
		restError(w, http.StatusBadRequest, 20001, "Malformed request body")
		return
	}
	handle(w, r)
}

func newSid(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func rfc2822(t time.Time) string { return t.UTC().Format(time.RFC1123Z) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	to, from, msid, body := f.Get("To"), f.Get("From"), f.Get("MessagingServiceSid"), f.Get("Body")
	switch {
	case to == "":
		restError(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.")
		return
	case !e164.MatchString(to):
		restError(w, http.StatusBadRequest, 21211, fmt.Sprintf("Invalid 'To' Phone Number: %s", to))
		return
	case from == "" && msid == "":
		restError(w, http.StatusBadRequest, 21603, "A 'From' phone number is required.")
		return
	case body == "":
		restError(w, http.StatusBadRequest, 21602, "Message body is required.")
		return
	}
	m := Message{Sid: newSid("SM"), To: to, From: from, MessagingServiceSid: msid, Body: body, StatusCallback: f.Get("StatusCallback")}
	now := rfc2822(time.Now())
	uri := fmt.Sprintf("/2010-04-01/Accounts/%s/Messages/%s.json", s.cfg.AccountSID, m.Sid)
	s.mu.Lock()
	s.messages = append(s.messages, m)
	outcome, ok := s.outcomes[to]
	s.mu.Unlock()
	if !ok {
		outcome = SMSOutcome{Statuses: []string{"sent", "delivered"}}
		if s.cfg.SMSStatuses != nil {
			outcome.Statuses = s.cfg.SMSStatuses
		}
	}
	if s.cfg.OnMessage != nil {
		s.cfg.OnMessage(m)
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"account_sid": s.cfg.AccountSID, "api_version": apiVersion, "body": body,
		"date_created": now, "date_sent": nil, "date_updated": now, "direction": "outbound-api",
		"error_code": nil, "error_message": nil, "from": nullable(from), "messaging_service_sid": nullable(msid),
		"num_media": "0", "num_segments": "1", "price": nil, "price_unit": "USD", "sid": m.Sid,
		"status": map[bool]string{true: "accepted", false: "queued"}[msid != ""], "to": to, "uri": uri,
		"subresource_uris": map[string]string{"media": strings.TrimSuffix(uri, ".json") + "/Media.json"},
	})
	if m.StatusCallback == "" || len(outcome.Statuses) == 0 {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for _, st := range outcome.Statuses {
			p := url.Values{
				"AccountSid": {s.cfg.AccountSID}, "ApiVersion": {apiVersion}, "From": {from},
				"MessageSid": {m.Sid}, "SmsSid": {m.Sid}, "MessageStatus": {st}, "SmsStatus": {st}, "To": {to},
			}
			if msid != "" {
				p.Set("MessagingServiceSid", msid)
			}
			if (st == "undelivered" || st == "failed") && outcome.ErrorCode != "" {
				p.Set("ErrorCode", outcome.ErrorCode)
			}
			s.callback(m.StatusCallback, p)
		}
	}()
}

// callback posts one signed status callback and records it.
func (s *Server) callback(rawURL string, p url.Values) {
	r, _, err := s.signedPost(s.ctx, rawURL, p)
	s.mu.Lock()
	s.callbacks = append(s.callbacks, r)
	s.mu.Unlock()
	if err != nil {
		s.fail("status callback %s: %v", rawURL, err)
	} else if r.Status/100 != 2 {
		s.fail("status callback %s: HTTP %d", rawURL, r.Status)
	}
}

func (s *Server) createCall(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	to, from, u := f.Get("To"), f.Get("From"), f.Get("Url")
	switch {
	case to == "":
		restError(w, http.StatusBadRequest, 21201, "No 'To' number is specified")
		return
	case !e164.MatchString(to):
		restError(w, http.StatusBadRequest, 21211, fmt.Sprintf("Invalid 'To' Phone Number: %s", to))
		return
	case from == "":
		restError(w, http.StatusBadRequest, 21213, "No 'From' number is specified")
		return
	case u == "":
		restError(w, http.StatusBadRequest, 21205, "Url parameter is required.")
		return
	}
	if pu, err := url.Parse(u); err != nil || !pu.IsAbs() {
		restError(w, http.StatusBadRequest, 21205, fmt.Sprintf("Url is not a valid URL: %s", u))
		return
	}
	c := &Call{Sid: newSid("CA"), To: to, From: from, URL: u, Status: "queued", StatusCallback: f.Get("StatusCallback"), done: make(chan struct{})}
	now := rfc2822(time.Now())
	uri := fmt.Sprintf("/2010-04-01/Accounts/%s/Calls/%s.json", s.cfg.AccountSID, c.Sid)
	s.mu.Lock()
	s.calls = append(s.calls, c)
	phone := s.phones[to]
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{
		"sid": c.Sid, "account_sid": s.cfg.AccountSID, "api_version": apiVersion, "to": to, "to_formatted": to,
		"from": from, "from_formatted": from, "status": "queued", "direction": "outbound-api",
		"date_created": now, "date_updated": now, "start_time": nil, "end_time": nil, "duration": nil,
		"price": nil, "price_unit": "USD", "parent_call_sid": nil, "phone_number_sid": nil,
		"answered_by": nil, "caller_name": nil, "forwarded_from": nil, "group_sid": nil,
		"queue_time": "0", "trunk_sid": nil, "uri": uri,
		"subresource_uris": map[string]string{"notifications": strings.TrimSuffix(uri, ".json") + "/Notifications.json"},
	})
	events := map[string]bool{}
	for _, e := range f["StatusCallbackEvent"] {
		for _, e := range strings.Fields(e) {
			events[e] = true
		}
	}
	if len(events) == 0 {
		events["completed"] = true // Twilio's default
	}
	pc := &phoneCall{
		s: s, c: c, keys: phone.Keys, method: methodOr(f.Get("Method")),
		statusURL: f.Get("StatusCallback"), events: events, hold: phone.Hold,
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(c.done)
		pc.run(phone.Answer)
	}()
}

func methodOr(m string) string {
	if m == "" {
		return http.MethodPost
	}
	return strings.ToUpper(m)
}
