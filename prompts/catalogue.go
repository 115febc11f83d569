package prompts

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/prompts/internal/catalog"
	"github.com/verigate/verigate/verify"
)

//go:embed text/*.yaml audio
var embedded embed.FS

// DefaultLocale is the locale of last resort when negotiation finds none.
const DefaultLocale = "en"

// DefaultAppName names the service in SMS bodies when none is configured.
const DefaultAppName = "Verigate"

// Errors callers can branch on.
var (
	// ErrUnknownPrompt: the ID is not in the catalogue, or has no audio.
	ErrUnknownPrompt = errors.New("unknown prompt")
)

// Config is the operator's prompts configuration, embedded by the config
// package under the key prompts (environment VERIGATE_PROMPTS_<KEY>).
type Config struct {
	// AudioDir holds recordings that replace the built-in audio:
	// <AudioDir>/<locale>/<prompt id>.wav, 8 or 16 kHz mono, 16-bit PCM
	// or G.711.
	AudioDir string `yaml:"audio_dir"`
	// TextFile is a YAML file of text overrides, keyed by locale, in the
	// form of prompts/text/<locale>.yaml (name, say, texts).
	TextFile string `yaml:"text_file"`
	// DefaultLocale is spoken and written when a verification's locale
	// matches none; "en" if empty.
	DefaultLocale string `yaml:"default_locale"`
	// WebOTPDomain, if set, ends each SMS with "@<domain> #<code>" so
	// browsers (WebOTP) and phones can fill the code in by themselves.
	WebOTPDomain string `yaml:"webotp_domain"`
	// AppHash, if set, is the 11-character Android SMS Retriever hash of
	// the app that reads the code; it gets a line of its own.
	AppHash string `yaml:"app_hash"`
}

// Options returns the Load options for c, with the SMS app name and code
// length from the rest of the configuration.
func (c Config) Options(appName string, codeLength int) Options {
	return Options{
		AudioDir: c.AudioDir, TextFile: c.TextFile, DefaultLocale: c.DefaultLocale,
		WebOTPDomain: c.WebOTPDomain, AppHash: c.AppHash,
		AppName: appName, CodeLength: codeLength,
	}
}

// Options configures Load. The zero value gives the built-in catalogue.
type Options struct {
	AudioDir      string // see Config
	TextFile      string // see Config
	DefaultLocale string // see Config
	WebOTPDomain  string // see Config
	AppHash       string // see Config
	// AppName replaces {app} in texts; DefaultAppName if empty.
	AppName string
	// CodeLength is the length of the codes SMS bodies carry, used to
	// prove at start-up that every body fits one segment;
	// verify.MaxCodeLength if 0.
	CodeLength int
}

// Catalogue is the validated set of texts and audio. It is immutable and
// safe for concurrent use.
type Catalogue struct {
	locales map[string]*locale // by lower-case tag
	tags    []string           // canonical tags, sorted
	def     *locale
	app     string
	domain  string
	appHash string
}

type locale struct {
	tag   string
	name  string
	say   string
	voice string        // Twilio <Say> voice
	texts map[ID]string // {app} already replaced
	sms   string        // SMS template after any GSM-7 folding; {code} left in
	// smsApp is the SMS template as written, {app} and {code} left in,
	// for bodies that name another app (SMSBodyFor).
	smsApp string
	audio  map[ID]*clip
}

// clip is one prompt's audio in both laws, 8 kHz mono.
type clip struct{ ulaw, alaw []byte }

func (c *clip) samples(l audio.Codec) []byte {
	if l == audio.PCMA {
		return c.alaw
	}
	return c.ulaw
}

var _ verify.AppFormatter = (*Catalogue)(nil)

// Load builds the catalogue from the embedded texts and audio and the
// overrides opts names, and validates all of it: every locale has every
// text and the audio of every spoken prompt, every recording is a format
// the gateway plays, and every SMS body fits one segment. The errors name
// the file, locale and prompt at fault.
func Load(opts Options) (*Catalogue, error) {
	c := &Catalogue{locales: map[string]*locale{}, app: opts.AppName, domain: opts.WebOTPDomain, appHash: opts.AppHash}
	if c.app == "" {
		c.app = DefaultAppName
	}
	if err := c.loadEmbedded(); err != nil {
		return nil, fmt.Errorf("prompts: built-in catalogue: %w", err)
	}
	if opts.TextFile != "" {
		if err := c.loadTextFile(opts.TextFile); err != nil {
			return nil, fmt.Errorf("prompts: text_file %s: %w", opts.TextFile, err)
		}
	}
	if opts.AudioDir != "" {
		if err := c.loadAudioDir(opts.AudioDir); err != nil {
			return nil, fmt.Errorf("prompts: audio_dir: %w", err)
		}
	}
	def := opts.DefaultLocale
	if def == "" {
		def = DefaultLocale
	}
	if c.def = c.locales[strings.ToLower(normaliseTag(def))]; c.def == nil {
		return nil, fmt.Errorf("prompts: default_locale %q is not in the catalogue", def)
	}
	codeLen := opts.CodeLength
	if codeLen == 0 {
		codeLen = verify.MaxCodeLength
	}
	if err := c.finish(codeLen); err != nil {
		return nil, fmt.Errorf("prompts: %w", err)
	}
	return c, nil
}

func (c *Catalogue) loadEmbedded() error {
	files, err := fs.Glob(embedded, "text/*.yaml")
	if err != nil {
		return err
	}
	for _, f := range files {
		data, err := embedded.ReadFile(f)
		if err != nil {
			return err
		}
		tag := strings.TrimSuffix(path.Base(f), ".yaml")
		l, err := catalog.Parse(data)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if err := c.merge(tag, l); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		loc := c.locales[strings.ToLower(tag)]
		for _, id := range spoken {
			cl := &clip{}
			for _, law := range []audio.Codec{audio.PCMU, audio.PCMA} {
				name := fmt.Sprintf("audio/%s/%s.%s.wav", tag, id, law.Name())
				data, err := embedded.ReadFile(name)
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				w, err := audio.ReadWAV(bytes.NewReader(data))
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				if got, ok := w.Codec(); !ok || got != law {
					return fmt.Errorf("%s: holds %s", name, w)
				}
				samples := w.Data
				if law == audio.PCMA {
					cl.alaw = samples
				} else {
					cl.ulaw = samples
				}
			}
			loc.audio[id] = cl
		}
	}
	return nil
}

var tagPattern = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)

// merge lays l over the locale tag, creating it if new. A new regional
// variant (en-GB) inherits from its parent (en) what it does not define;
// a new language must be complete.
func (c *Catalogue) merge(tag string, l catalog.Locale) error {
	tag = normaliseTag(tag)
	if !tagPattern.MatchString(tag) {
		return fmt.Errorf("%q is not a language tag such as de or pt-BR", tag)
	}
	key := strings.ToLower(tag)
	loc := c.locales[key]
	if loc == nil {
		loc = &locale{tag: tag, texts: map[ID]string{}, audio: map[ID]*clip{}}
		c.locales[key] = loc
		c.tags = append(c.tags, tag)
		sort.Strings(c.tags)
	}
	if l.Name != "" {
		loc.name = l.Name
	}
	if l.Say != "" {
		loc.say = l.Say
	}
	if l.SayVoice != "" {
		loc.voice = l.SayVoice
	}
	for k, v := range l.Texts {
		id := ID(k)
		if !id.Valid() {
			return fmt.Errorf("%s: unknown prompt %q", tag, k)
		}
		if err := checkText(id, v); err != nil {
			return fmt.Errorf("%s: %s: %w", tag, k, err)
		}
		loc.texts[id] = v
	}
	return nil
}

// checkText allows {app} everywhere, requires {code} once in the SMS
// body and each of a page text's placeholders (pagePlaceholders) once in
// it, and refuses other placeholders, which would reach people verbatim.
func checkText(id ID, v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("empty text")
	}
	rest := strings.ReplaceAll(v, "{app}", "")
	for _, ph := range pagePlaceholders[id] {
		if strings.Count(rest, ph) != 1 {
			return fmt.Errorf("the text must hold %s exactly once", ph)
		}
		rest = strings.ReplaceAll(rest, ph, "")
	}
	if id == SMSBody {
		if strings.Count(rest, "{code}") != 1 {
			return errors.New("the SMS body must hold {code} exactly once")
		}
		rest = strings.ReplaceAll(rest, "{code}", "")
	}
	if strings.ContainsAny(rest, "{}") {
		return fmt.Errorf("unknown placeholder in %q: only {app} (and {code} in sms_body, {number} and {seconds} in some page texts) are replaced", v)
	}
	return nil
}

// finish checks completeness, fills {app} and fixes each SMS template.
func (c *Catalogue) finish(codeLen int) error {
	if c.appHash != "" && !appHashPattern.MatchString(c.appHash) {
		return fmt.Errorf("app_hash %q: want the 11 characters (A-Z a-z 0-9 + /) Android's SMS Retriever gives the app", c.appHash)
	}
	if c.domain != "" && !domainPattern.MatchString(c.domain) {
		return fmt.Errorf("webotp_domain %q: want a host name such as login.example.com", c.domain)
	}
	if strings.ContainsAny(c.app, "{}\n") {
		return fmt.Errorf("app name %q: must not hold braces or line breaks", c.app)
	}
	var errs []error
	// Parents before children, so that en-GB inherits from a complete en.
	byDepth := append([]string(nil), c.tags...)
	sort.SliceStable(byDepth, func(i, j int) bool {
		return strings.Count(byDepth[i], "-") < strings.Count(byDepth[j], "-")
	})
	for _, tag := range byDepth {
		loc := c.locales[strings.ToLower(tag)]
		if parent := c.parent(tag); parent != nil {
			if loc.voice == "" && (loc.say == "" || loc.say == parent.say) {
				loc.voice = parent.voice // a voice speaks its own language only
			}
			for id, t := range parent.texts {
				if _, ok := loc.texts[id]; !ok {
					loc.texts[id] = t
				}
			}
			for id, a := range parent.audio {
				if _, ok := loc.audio[id]; !ok {
					loc.audio[id] = a
				}
			}
		}
		var noText, noAudio []string
		for _, id := range IDs() {
			if _, ok := loc.texts[id]; !ok {
				noText = append(noText, string(id))
			}
			if _, ok := loc.audio[id]; id.Spoken() && !ok {
				noAudio = append(noAudio, string(id))
			}
		}
		if len(noText) > 0 {
			errs = append(errs, fmt.Errorf("locale %s: no text for %s (add them to text_file)", tag, strings.Join(noText, ", ")))
		}
		if len(noAudio) > 0 {
			errs = append(errs, fmt.Errorf("locale %s: no audio for %s (add %s/<prompt>.wav to audio_dir)", tag, strings.Join(noAudio, ", "), tag))
		}
		if loc.say == "" {
			loc.say = tag
		}
		if loc.name == "" {
			loc.name = tag
		}
		loc.smsApp = loc.texts[SMSBody]
		for id, t := range loc.texts {
			loc.texts[id] = strings.ReplaceAll(t, "{app}", c.app)
		}
		if tmpl, ok := loc.texts[SMSBody]; ok {
			sms, err := c.fitSMS(tmpl, codeLen)
			if err != nil {
				errs = append(errs, fmt.Errorf("locale %s: %w", tag, err))
			}
			loc.sms = sms
		}
	}
	return errors.Join(errs...)
}

var (
	appHashPattern = regexp.MustCompile(`^[A-Za-z0-9+/]{11}$`)
	domainPattern  = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(:[0-9]{1,5})?$`)
)

// fitSMS returns the template to use: as written if the body (with the
// optional lines and the longest code) fits one segment, else folded to
// GSM-7 if that fits, else an error.
func (c *Catalogue) fitSMS(tmpl string, codeLen int) (string, error) {
	code := strings.Repeat("0", codeLen)
	if _, _, ok := SMSLength(c.compose(tmpl, code)); ok {
		return tmpl, nil
	}
	folded := gsm7Fold.Replace(tmpl)
	if enc, _, ok := SMSLength(c.compose(folded, code)); ok && enc == GSM7 {
		return folded, nil
	}
	enc, n, _ := SMSLength(c.compose(tmpl, code))
	return tmpl, fmt.Errorf("sms_body with a %d-digit code is %d %s units, over one segment (%d GSM-7 or %d UCS-2): shorten the text, the app name or the webotp_domain",
		codeLen, n, enc, MaxGSM7Septets, MaxUCS2Units)
}

// compose fills the code into an SMS template and adds the optional app
// hash and WebOTP lines. WebOTP requires its line to be the last.
func (c *Catalogue) compose(tmpl, code string) string {
	var b strings.Builder
	b.WriteString(strings.ReplaceAll(tmpl, "{code}", code))
	if c.appHash != "" {
		b.WriteString("\n")
		b.WriteString(c.appHash)
	}
	if c.domain != "" {
		b.WriteString("\n@")
		b.WriteString(c.domain)
		b.WriteString(" #")
		b.WriteString(code)
	}
	return b.String()
}

// parent returns the locale a regional variant inherits what it lacks
// from (en for en-GB), or nil.
func (c *Catalogue) parent(tag string) *locale {
	key := strings.ToLower(tag)
	for {
		i := strings.LastIndexByte(key, '-')
		if i < 0 {
			return nil
		}
		key = key[:i]
		if l := c.locales[key]; l != nil {
			return l
		}
	}
}

// normaliseTag turns POSIX and sloppy forms into BCP 47: "pt_BR.UTF-8" →
// "pt-BR".
func normaliseTag(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, ".@"); i >= 0 {
		s = s[:i]
	}
	return strings.ReplaceAll(s, "_", "-")
}

// Negotiate returns the catalogue locale that serves locale: the tag
// itself, case-insensitively and with _ for -, else its shorter prefixes
// (pt-BR-x → pt-BR → pt), else the default locale.
func (c *Catalogue) Negotiate(locale string) string { return c.lookup(locale).tag }

func (c *Catalogue) lookup(tag string) *locale {
	key := strings.ToLower(normaliseTag(tag))
	for key != "" {
		if l := c.locales[key]; l != nil {
			return l
		}
		i := strings.LastIndexByte(key, '-')
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return c.def
}

// Locales returns the catalogue's locale tags, sorted.
func (c *Catalogue) Locales() []string { return append([]string(nil), c.tags...) }

// Name returns the negotiated locale's name for itself ("Deutsch").
func (c *Catalogue) Name(locale string) string { return c.lookup(locale).name }

// SayLanguage returns the language for Twilio's <Say language=...> in the
// negotiated locale ("de-DE").
func (c *Catalogue) SayLanguage(locale string) string { return c.lookup(locale).say }

// SayVoice returns the voice for Twilio's <Say voice=...> in the
// negotiated locale ("Polly.Vicki"), or "" for Twilio's default.
func (c *Catalogue) SayVoice(locale string) string { return c.lookup(locale).voice }

// Text returns the text of id in the negotiated locale, with {app}
// replaced; SMSBody keeps its {code} (use SMSBody to fill it). It returns
// "" for an ID not in the catalogue.
func (c *Catalogue) Text(locale string, id ID) string { return c.lookup(locale).texts[id] }

// SMSBody implements verify.Formatter: the SMS carrying code in the
// negotiated locale, with the app hash and WebOTP lines if configured.
// Load has proved it fits one segment for codes of the configured length.
func (c *Catalogue) SMSBody(locale, code string) string {
	return c.compose(c.lookup(locale).sms, code)
}

// SMSBodyFor implements verify.AppFormatter: SMSBody naming app instead of
// the configured app name, folded to GSM-7 when that keeps it in one
// segment. A name that CheckAppName accepted fits one segment; a longer
// one still goes out, in more than one.
func (c *Catalogue) SMSBodyFor(locale, app, code string) string {
	tmpl := strings.ReplaceAll(c.lookup(locale).smsApp, "{app}", app)
	fitted, _ := c.fitSMS(tmpl, len(code))
	return c.compose(fitted, code)
}

// CheckAppName reports why app cannot name the app in SMS bodies with
// codes of codeLength digits: braces or line breaks, or a body in some
// locale over one segment.
func (c *Catalogue) CheckAppName(app string, codeLength int) error {
	if app == "" || strings.ContainsAny(app, "{}\r\n") {
		return fmt.Errorf("app name %q: must be non-empty, without braces or line breaks", app)
	}
	var errs []error
	for _, tag := range c.tags {
		tmpl := strings.ReplaceAll(c.locales[strings.ToLower(tag)].smsApp, "{app}", app)
		if _, err := c.fitSMS(tmpl, codeLength); err != nil {
			errs = append(errs, fmt.Errorf("locale %s: %w", tag, err))
		}
	}
	return errors.Join(errs...)
}

// Audio returns the 8 kHz mono G.711 samples (no header) of id in the
// negotiated locale. The slice is shared: callers must not modify it.
// Errors: ErrUnknownPrompt if id has no audio.
func (c *Catalogue) Audio(locale string, id ID, law audio.Codec) ([]byte, error) {
	cl := c.lookup(locale).audio[id]
	if cl == nil {
		return nil, fmt.Errorf("audio %q: %w", id, ErrUnknownPrompt)
	}
	return cl.samples(law), nil
}

// WAV returns id in the negotiated locale as a playable WAV file (for
// Twilio's <Play> and operators).
func (c *Catalogue) WAV(locale string, id ID, law audio.Codec) ([]byte, error) {
	samples, err := c.Audio(locale, id, law)
	if err != nil {
		return nil, err
	}
	return audio.EncodeWAV(samples, law), nil
}

// Render joins the audio of ids in the negotiated locale, with gap of
// silence between them: one buffer to play, such as a code read aloud
// (CodeSequence). Errors: ErrUnknownPrompt.
func (c *Catalogue) Render(locale string, ids []ID, law audio.Codec, gap time.Duration) ([]byte, error) {
	loc := c.lookup(locale)
	silence := make([]byte, int(gap*8000/time.Second))
	for i := range silence {
		silence[i] = law.Silence()
	}
	size := 0
	for i, id := range ids {
		cl := loc.audio[id]
		if cl == nil {
			return nil, fmt.Errorf("render %q: %w", id, ErrUnknownPrompt)
		}
		size += len(cl.samples(law))
		if i > 0 {
			size += len(silence)
		}
	}
	out := make([]byte, 0, size)
	for i, id := range ids {
		cl := loc.audio[id]
		if i > 0 {
			out = append(out, silence...)
		}
		out = append(out, cl.samples(law)...)
	}
	return out, nil
}
