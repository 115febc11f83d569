package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/prompts"
)

func TestPromptsList(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"prompts", "list"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"de ", "Deutsch", "de-DE", "pt-BR", "cmn-CN", "Polly.Vicki", "press_pound", "sms_body"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("prompts list lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"prompts", "list", "fr_CA"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Appuyez sur la touche dièse") {
		t.Errorf("prompts list fr_CA:\n%s", out.String())
	}
}

func TestPromptsPlay(t *testing.T) {
	c, err := prompts.Load(prompts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		law  audio.Codec
		want []prompts.ID
	}{
		{[]string{"de", "press_pound"}, audio.PCMU, []prompts.ID{prompts.PressPound}},
		{[]string{"--law", "alaw", "ja", "goodbye"}, audio.PCMA, []prompts.ID{prompts.Goodbye}},
		{[]string{"tr", "digit_7", "--law=pcma"}, audio.PCMA, []prompts.ID{prompts.Digit7}},
	} {
		name := filepath.Join(dir, tc.args[len(tc.args)-1]+".wav")
		var out bytes.Buffer
		args := append([]string{"prompts", "play"}, tc.args...)
		if err := run(context.Background(), append(args, "--out", name), &out, &out); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		w, err := audio.ReadWAV(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if law, ok := w.Codec(); !ok || law != tc.law {
			t.Fatalf("%v wrote %s", tc.args, w)
		}
		samples := w.Data
		locale := tc.args[0]
		if strings.HasPrefix(locale, "--") {
			locale = tc.args[2]
		}
		want, _ := c.Render(locale, tc.want, tc.law, prompts.Gap)
		if !bytes.Equal(samples, want) {
			t.Errorf("%v: the file does not hold the clip", tc.args)
		}
	}

	name := filepath.Join(dir, "code.wav")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"prompts", "play", "sv", "code", "--code", "9021", "--out", name}, &out, &out); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(name)
	w, err := audio.ReadWAV(bytes.NewReader(data))
	want, _ := c.Render("sv", prompts.CodeSequence("9021"), audio.PCMU, prompts.Gap)
	if err != nil || !bytes.Equal(w.Data, want) {
		t.Errorf("play code: %v", err)
	}
}

func TestPromptsErrors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.wav")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"prompts"}, "no action"},
		{[]string{"prompts", "shout"}, "unknown action"},
		{[]string{"prompts", "play", "de", "sms_body", "--out", out}, "unknown prompt"},
		{[]string{"prompts", "play", "de", "greeting"}, "--out"},
		{[]string{"prompts", "play", "de", "--out", out}, "<locale> <prompt>"},
		{[]string{"prompts", "play", "de", "greeting", "--out", out, "--law", "g722"}, "g722"},
		{[]string{"prompts", "list", "--audio-dir", filepath.Join(t.TempDir(), "none")}, "audio_dir"},
	} {
		var buf bytes.Buffer
		err := run(context.Background(), tc.args, &buf, &buf)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one saying %q", tc.args, err, tc.want)
		}
	}
}
