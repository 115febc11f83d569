package prompts_test

import (
	"testing"
	"time"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/prompts"
)

// BenchmarkLoad is the start-up cost: parsing and validating every
// embedded text and clip.
func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		if _, err := prompts.Load(prompts.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSMSBody(b *testing.B) {
	c := load(b, prompts.Options{WebOTPDomain: "login.example.com", CodeLength: 6})
	for b.Loop() {
		_ = c.SMSBody("pt-BR", "123456")
	}
}

func BenchmarkAudio(b *testing.B) {
	c := load(b, prompts.Options{})
	for b.Loop() {
		if _, err := c.Audio("de-DE", prompts.PressPound, audio.PCMA); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderCode(b *testing.B) {
	c := load(b, prompts.Options{})
	seq := prompts.CodeSequence("123456")
	for b.Loop() {
		if _, err := c.Render("fr", seq, audio.PCMU, 250*time.Millisecond); err != nil {
			b.Fatal(err)
		}
	}
}
