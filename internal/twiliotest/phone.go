package twiliotest

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxDocuments bounds the TwiML documents one call fetches, so a gateway
// that loops cannot keep a test running.
const maxDocuments = 50

// phoneCall plays one call: status callbacks, TwiML, keys.
type phoneCall struct {
	s         *Server
	c         *Call
	keys      string
	method    string
	statusURL string
	events    map[string]bool
	hold      <-chan struct{}
	seq       int
}

func (p *phoneCall) params(status string) url.Values {
	return url.Values{
		"AccountSid": {p.s.cfg.AccountSID}, "ApiVersion": {apiVersion}, "CallSid": {p.c.Sid},
		"CallStatus": {status}, "Direction": {"outbound-api"}, "From": {p.c.From}, "To": {p.c.To},
		"Called": {p.c.To}, "Caller": {p.c.From},
	}
}

// status posts a call status callback if its event was asked for.
func (p *phoneCall) status(event, status string, extra url.Values) {
	p.setStatus(status)
	if p.statusURL == "" || !p.events[event] {
		return
	}
	v := p.params(status)
	v.Set("CallbackSource", "call-progress-events")
	v.Set("SequenceNumber", strconv.Itoa(p.seq))
	p.seq++
	for k, vals := range extra {
		v[k] = vals
	}
	p.s.callback(p.statusURL, v)
}

func (p *phoneCall) setStatus(st string) {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.c.Status = st
}

func (p *phoneCall) run(answer string) {
	p.status("initiated", "initiated", nil)
	if answer == "failed" {
		p.status("completed", "failed", url.Values{"SipResponseCode": {"500"}, "CallDuration": {"0"}})
		return
	}
	p.status("ringing", "ringing", nil)
	if p.hold != nil {
		select {
		case <-p.hold:
		case <-p.s.ctx.Done():
			return
		}
	}
	switch answer {
	case "busy":
		p.status("completed", "busy", url.Values{"SipResponseCode": {"486"}, "CallDuration": {"0"}})
		return
	case "no-answer":
		p.status("completed", "no-answer", url.Values{"SipResponseCode": {"487"}, "CallDuration": {"0"}})
		return
	}
	p.status("answered", "in-progress", nil)
	p.play()
	p.status("completed", "completed", url.Values{"SipResponseCode": {"200"}, "CallDuration": {"12"}})
}

// play fetches and executes TwiML until the call ends.
func (p *phoneCall) play() {
	docURL, method, extra := p.c.URL, p.method, url.Values(nil)
	for n := 0; n < maxDocuments; n++ {
		if p.s.ctx.Err() != nil {
			return
		}
		doc, err := p.fetch(docURL, method, extra)
		if err != nil {
			// Twilio says "an application error has occurred" and hangs up.
			p.s.fail("call %s: %v", p.c.Sid, err)
			return
		}
		var next bool
		docURL, method, extra, next, err = p.execute(doc, docURL)
		if err != nil {
			p.s.fail("call %s: %v", p.c.Sid, err)
			return
		}
		if !next {
			return
		}
	}
	p.s.fail("call %s: more than %d TwiML documents", p.c.Sid, maxDocuments)
}

// node is any TwiML element.
type node struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Text     string     `xml:",chardata"`
	Children []node     `xml:",any"`
}

func (n node) attr(name string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

func (p *phoneCall) fetch(rawURL, method string, extra url.Values) (node, error) {
	if method != http.MethodPost {
		return node{}, fmt.Errorf("TwiML fetch with method %s: only POST is played", method)
	}
	params := p.params("in-progress")
	for k, v := range extra {
		params[k] = v
	}
	r, body, err := p.s.signedPost(p.s.ctx, rawURL, params)
	p.s.mu.Lock()
	p.c.Requests = append(p.c.Requests, r)
	p.s.mu.Unlock()
	if err != nil {
		return node{}, fmt.Errorf("fetch TwiML %s: %w", rawURL, err)
	}
	if r.Status != http.StatusOK {
		return node{}, fmt.Errorf("fetch TwiML %s: HTTP %d: %s", rawURL, r.Status, body)
	}
	var doc node
	if err := xml.Unmarshal([]byte(body), &doc); err != nil {
		return node{}, fmt.Errorf("TwiML from %s: %w", rawURL, err)
	}
	if doc.XMLName.Local != "Response" {
		return node{}, fmt.Errorf("TwiML from %s: root <%s>, want <Response>", rawURL, doc.XMLName.Local)
	}
	return doc, nil
}

// execute runs one document's verbs and says where the call goes next:
// next false when it ends (<Hangup>, or the document ran out of verbs).
func (p *phoneCall) execute(doc node, docURL string) (nextURL, method string, extra url.Values, next bool, err error) {
	for _, v := range doc.Children {
		switch v.XMLName.Local {
		case "Say", "Play", "Pause":
			if err := p.speak(v, docURL); err != nil {
				return "", "", nil, false, err
			}
		case "Gather":
			g, err := p.gather(v, docURL)
			if err != nil {
				return "", "", nil, false, err
			}
			if g.Posted {
				m, _ := v.attr("method")
				return g.Action, methodOr(m), url.Values{"Digits": {g.Digits}}, true, nil
			}
			// No input: fall through to the next verb.
		case "Redirect":
			target, err := resolve(docURL, strings.TrimSpace(v.Text))
			if err != nil {
				return "", "", nil, false, err
			}
			m, _ := v.attr("method")
			return target, methodOr(m), nil, true, nil
		case "Hangup":
			return "", "", nil, false, nil
		default:
			return "", "", nil, false, fmt.Errorf("TwiML verb <%s> is not played by the fake", v.XMLName.Local)
		}
	}
	return "", "", nil, false, nil
}

func (p *phoneCall) speak(v node, docURL string) error {
	switch v.XMLName.Local {
	case "Say":
		lang, _ := v.attr("language")
		voice, _ := v.attr("voice")
		p.s.mu.Lock()
		p.c.Said = append(p.c.Said, Say{Text: strings.TrimSpace(v.Text), Language: lang, Voice: voice})
		p.s.mu.Unlock()
	case "Play":
		target, err := resolve(docURL, strings.TrimSpace(v.Text))
		if err != nil {
			return err
		}
		pl := p.s.fetchMedia(target)
		p.s.mu.Lock()
		p.c.Plays = append(p.c.Plays, pl)
		p.s.mu.Unlock()
		if pl.Err != nil {
			// Twilio logs the error (11200, 13420) and goes on with the
			// next verb; a test must hear about it.
			p.s.fail("call %s: %v", p.c.Sid, pl.Err)
		}
	case "Pause":
	default:
		return fmt.Errorf("<%s> cannot be nested in <Gather>", v.XMLName.Local)
	}
	return nil
}

// gather executes one <Gather> as Twilio's reference describes it.
func (p *phoneCall) gather(v node, docURL string) (Gather, error) {
	g := Gather{Input: "dtmf", FinishOnKey: "#", Timeout: 5}
	if in, ok := v.attr("input"); ok {
		g.Input = in
	}
	if !strings.Contains(g.Input, "dtmf") {
		return g, fmt.Errorf("<Gather input=%q> takes no keys", g.Input)
	}
	if k, ok := v.attr("finishOnKey"); ok {
		if k != "" && (len(k) != 1 || !strings.Contains("0123456789#*", k)) {
			return g, fmt.Errorf("<Gather finishOnKey=%q>: Twilio warning 13310", k)
		}
		g.FinishOnKey, g.FinishOnKeySet = k, true
	}
	if t, ok := v.attr("timeout"); ok {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 {
			return g, fmt.Errorf("<Gather timeout=%q>: Twilio warning 13313", t)
		}
		g.Timeout = n
	}
	if d, ok := v.attr("numDigits"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 {
			return g, fmt.Errorf("<Gather numDigits=%q>: Twilio warning 13314", d)
		}
		g.NumDigits = n
	}
	if m, ok := v.attr("method"); ok && methodOr(m) != http.MethodPost {
		return g, fmt.Errorf("<Gather method=%q>: only POST is played", m)
	}
	g.Action = docURL
	if a, ok := v.attr("action"); ok && a != "" {
		target, err := resolve(docURL, a)
		if err != nil {
			return g, err
		}
		g.Action = target
	}
	for _, child := range v.Children {
		if err := p.speak(child, docURL); err != nil {
			return g, err
		}
	}
	onEmpty, _ := v.attr("actionOnEmptyResult")
	digits, posted := p.press(g)
	if !posted && onEmpty == "true" {
		posted = true
	}
	g.Digits, g.Posted = digits, posted
	p.s.mu.Lock()
	p.c.Gathers = append(p.c.Gathers, g)
	p.s.mu.Unlock()
	return g, nil
}

// press takes keys from the phone for gather g: the digits to post (the
// finish key left out), and whether Twilio requests the action at all.
func (p *phoneCall) press(g Gather) (string, bool) {
	var digits strings.Builder
	for {
		if p.keys == "" {
			// No more keys: the timeout passes.
			return digits.String(), digits.Len() > 0
		}
		k := p.keys[0]
		p.keys = p.keys[1:]
		switch {
		case k == '.':
			return digits.String(), digits.Len() > 0
		case g.FinishOnKey != "" && k == g.FinishOnKey[0]:
			// "If the caller enters the finishOnKey value before entering
			// any other digits, Twilio will not make a request to the
			// action URL."
			return digits.String(), digits.Len() > 0
		}
		digits.WriteByte(k)
		if g.NumDigits > 0 && digits.Len() == g.NumDigits {
			return digits.String(), true
		}
	}
}

func resolve(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("TwiML URL %q: %w", ref, err)
	}
	return b.ResolveReference(r).String(), nil
}
