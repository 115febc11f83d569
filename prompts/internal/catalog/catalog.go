// Package catalog holds the schema of the locale files under prompts/text,
// shared by the prompts package (which embeds them) and the audio
// generator (which reads them from disk before any audio exists).
package catalog

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Locale is one prompts/text/<locale>.yaml file.
type Locale struct {
	// Name is the language's own name for itself ("Deutsch").
	Name string `yaml:"name"`
	// Voice is the espeak-ng voice that speaks the locale's audio.
	Voice string `yaml:"voice"`
	// Speed is espeak-ng's words per minute; 0 means the generator's default.
	Speed int `yaml:"speed"`
	// Say is the language Twilio's <Say> speaks the texts in ("de-DE";
	// "cmn-CN" for Mandarin with Polly and Google voices).
	Say string `yaml:"say"`
	// SayVoice is the voice of Twilio's <Say> ("Polly.Vicki"): Twilio's
	// default voice speaks English only.
	SayVoice string `yaml:"say_voice"`
	// Texts maps prompt IDs to what the person reads or hears.
	Texts map[string]string `yaml:"texts"`
	// Speech maps prompt IDs to what espeak-ng is given instead of the
	// text, where the voice cannot read the written form (kana for
	// Japanese, numbered pinyin for Chinese).
	Speech map[string]string `yaml:"speech"`
}

// SpeechText returns what the generator synthesises for id.
func (l Locale) SpeechText(id string) string {
	if s, ok := l.Speech[id]; ok {
		return s
	}
	return l.Texts[id]
}

// Parse decodes one locale file, refusing unknown keys so that a typo
// does not silently fall back to English.
func Parse(data []byte) (Locale, error) {
	var l Locale
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&l); err != nil {
		return l, fmt.Errorf("parse locale: %w", err)
	}
	return l, nil
}
