package twilio

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/beevik/etree"
	"github.com/twilio/twilio-go/twiml"

	"github.com/verigate/verigate/ivr"
	"github.com/verigate/verigate/prompts"
)

// errGatherShape is returned for a Gather this transport cannot render.
var errGatherShape = errors.New("twilio: only one-key gathers with finish key # can be rendered")

// speech is how a call speaks: the texts, their <Say> language and voice,
// or, when clips is set (VoicePlay), the recordings to <Play>.
type speech struct {
	texts  Texts
	locale string
	voice  string
	clips  *clips
}

// prompt renders one prompt as <Play> of its clip or as <Say>.
func (sp speech) prompt(id prompts.ID) (twiml.Element, error) {
	if sp.clips != nil {
		u, err := sp.clips.url(sp.locale, id)
		if err != nil {
			return nil, fmt.Errorf("twilio: play %s: %w", id, err)
		}
		return twiml.VoicePlay{Url: u}, nil
	}
	return twiml.VoiceSay{
		Message: sp.texts.Text(sp.locale, id), Language: sp.texts.SayLanguage(sp.locale), Voice: sp.voice,
	}, nil
}

// render turns the actions of one script step (Reports already executed
// and left out) into a TwiML document. gatherURL and silenceURL are the
// <Gather action> and the <Redirect> after it.
//
// Twilio's <Gather> does not request its action URL when the caller
// presses only the finish key, exactly as when no key comes at all: it
// falls through to the next verb (see docs/TWILIO.md). A lone '#' is the
// approve answer, so it must not look like silence: every Gather is
// rendered with finishOnKey="" and numDigits="1", which makes '#' an
// ordinary key that Twilio posts as Digits=# at once. The webhook turns
// that back into ivr.Input{Finished: true}. The <Redirect> after the
// Gather is reached only when no key came (Silence).
func render(sp speech, acts []ivr.Action, gatherURL, silenceURL string) (string, error) {
	var verbs []twiml.Element
	var says []twiml.Element // spoken since the last Gather: nested in the next one
	flush := func() {
		verbs = append(verbs, says...)
		says = nil
	}
	gathers := 0
	for _, a := range acts {
		switch a := a.(type) {
		case ivr.Play:
			for _, id := range a.Prompts {
				el, err := sp.prompt(id)
				if err != nil {
					return "", err
				}
				says = append(says, el)
			}
		case ivr.Gather:
			if a.FinishOnKey != ivr.FinishKey || a.MaxDigits != 1 {
				return "", fmt.Errorf("%w: %+v", errGatherShape, a)
			}
			// Prompts nested in the Gather can be answered while they play;
			// the timeout starts when they end.
			verbs = append(verbs,
				twiml.VoiceGather{
					Input: "dtmf", NumDigits: "1", Timeout: seconds(a.Timeout),
					Action: gatherURL, Method: http.MethodPost, InnerElements: says,
				},
				twiml.VoiceRedirect{Url: silenceURL, Method: http.MethodPost},
			)
			says = nil
			gathers++
		case ivr.Hangup:
			flush()
			verbs = append(verbs, twiml.VoiceHangup{})
		case ivr.Report:
			// Executed by the webhook before rendering.
		default:
			return "", fmt.Errorf("twilio: cannot render %T", a)
		}
	}
	flush()
	doc, resp := twiml.CreateDocument()
	twiml.AddAllVerbs(resp, verbs)
	// twiml drops attributes whose value is empty, so finishOnKey="" is
	// added to the built tree.
	for _, el := range resp.SelectElements("Gather") {
		el.CreateAttr("finishOnKey", "")
	}
	sortAttrs(resp)
	if gathers > 1 {
		return "", errors.New("twilio: more than one gather in one step")
	}
	return twiml.ToXML(doc)
}

// sortAttrs orders every element's attributes by name: twiml writes them
// in map order, and the same step should always render the same bytes.
func sortAttrs(el *etree.Element) {
	sort.Slice(el.Attr, func(i, j int) bool { return el.Attr[i].Key < el.Attr[j].Key })
	for _, c := range el.ChildElements() {
		sortAttrs(c)
	}
}

// seconds renders d as whole seconds, at least 1, for timeout attributes.
func seconds(d time.Duration) string {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s)
}

// inputEvent turns a <Gather> action's Digits into the script's event.
// With finishOnKey="" and numDigits="1" Digits is one key, '#' included.
func inputEvent(digits string) ivr.Event {
	switch {
	case digits == "":
		return ivr.Silence{}
	case digits == ivr.FinishKey:
		return ivr.Input{Finished: true}
	case digits[len(digits)-1] == ivr.FinishKey[0]:
		return ivr.Input{Digits: digits[:len(digits)-1], Finished: true}
	}
	return ivr.Input{Digits: digits}
}
