package twilio

import (
	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/prompts"
)

// Texts gives the words a call speaks and how Twilio speaks them.
// *prompts.Catalogue satisfies it, with locales negotiated there
// (pt-BR → pt → the default locale); NewWebhooks loads the built-in
// catalogue when no WithTexts option is given.
type Texts interface {
	// Text returns the text of id in locale.
	Text(locale string, id prompts.ID) string
	// SayLanguage returns the language for <Say language=...> ("de-DE").
	SayLanguage(locale string) string
	// SayVoice returns the voice for <Say voice=...> ("Polly.Vicki"), or
	// "" for Twilio's default. Config.Voice, when set, wins.
	SayVoice(locale string) string
}

var _ Texts = (*prompts.Catalogue)(nil)

// Audio gives the recordings a call plays in VoicePlay mode.
// *prompts.Catalogue satisfies it; NewWebhooks uses the Texts as Audio
// when they satisfy it and no WithAudio option is given.
type Audio interface {
	// Path returns id's clip in the negotiated locale as a relative path
	// ("de/greeting.ulaw.wav"); the audio route serves exactly the paths
	// Path returns and nothing else.
	Path(locale string, id prompts.ID, law audio.Codec) string
	// WAV returns the clip as a WAV file; an error if id has no audio.
	WAV(locale string, id prompts.ID, law audio.Codec) ([]byte, error)
}

var _ Audio = (*prompts.Catalogue)(nil)
