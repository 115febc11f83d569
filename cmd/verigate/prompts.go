package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/prompts"
)

// runPrompts implements `verigate prompts list [locale]` and `verigate
// prompts play <locale> <prompt> --out file.wav [--law ulaw|alaw]`.
func runPrompts(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: verigate prompts list [locale] | play <locale> <prompt|code> --out file.wav [--law ulaw|alaw] [--code 123456]")
		return errors.New("prompts: no action given")
	}
	fs := flag.NewFlagSet("prompts "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	audioDir := fs.String("audio-dir", "", "operator recordings to apply (prompts.audio_dir)")
	textFile := fs.String("text-file", "", "operator text overrides to apply (prompts.text_file)")
	appName := fs.String("app", "", "app name for {app} in texts")
	out := fs.String("out", "", "play: WAV file to write")
	lawName := fs.String("law", "ulaw", "play: G.711 law, ulaw or alaw")
	code := fs.String("code", "123456", "play: the code read by the prompt named code")
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	cat, err := prompts.Load(prompts.Options{AudioDir: *audioDir, TextFile: *textFile, AppName: *appName})
	if err != nil {
		return err
	}
	switch args[0] {
	case "list":
		if len(pos) > 1 {
			return errors.New("prompts list: at most one locale")
		}
		return listPrompts(cat, pos, stdout)
	case "play":
		if len(pos) != 2 {
			return errors.New("prompts play: want <locale> <prompt>")
		}
		if *out == "" {
			return errors.New("prompts play: --out file.wav is required")
		}
		law, err := audio.ParseCodec(*lawName)
		if err != nil {
			return fmt.Errorf("prompts play: --law: %w", err)
		}
		locale, id := pos[0], prompts.ID(pos[1])
		ids := []prompts.ID{id}
		if id == "code" {
			ids = prompts.CodeSequence(*code)
		}
		samples, err := cat.Render(locale, ids, law, prompts.Gap)
		if err != nil {
			return fmt.Errorf("prompts play: %w (see verigate prompts list)", err)
		}
		if err := os.WriteFile(*out, audio.EncodeWAV(samples, law), 0o644); err != nil {
			return fmt.Errorf("prompts play: %w", err)
		}
		_, err = fmt.Fprintf(stdout, "wrote %s: %s %s, %.2f s of 8 kHz %s\n", *out, cat.Negotiate(locale), pos[1],
			float64(len(samples))/8000, law.Name())
		return err
	}
	return fmt.Errorf("prompts: unknown action %q: want list or play", args[0])
}

// parseInterleaved lets flags follow the positional arguments, as in
// `prompts play de greeting --out g.wav`.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// listPrompts prints the locales, or every prompt of one locale.
func listPrompts(cat *prompts.Catalogue, pos []string, stdout io.Writer) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if len(pos) == 0 {
		fmt.Fprintln(tw, "LOCALE\tNAME\tSAY\tVOICE\tSMS")
		for _, l := range cat.Locales() {
			enc, n, _ := prompts.SMSLength(cat.SMSBody(l, "123456"))
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s, %d units\n", l, cat.Name(l), cat.SayLanguage(l), cat.SayVoice(l), enc, n)
		}
		fmt.Fprintln(tw, "\nPROMPTS\tSPOKEN")
		for _, id := range prompts.IDs() {
			fmt.Fprintf(tw, "%s\t%v\n", id, id.Spoken())
		}
		fmt.Fprintln(tw, "code\ttrue (the code read twice: --code)")
		return tw.Flush()
	}
	l := cat.Negotiate(pos[0])
	fmt.Fprintf(tw, "PROMPT\tSECONDS\tTEXT (%s)\n", l)
	for _, id := range prompts.IDs() {
		secs := "-"
		if a, err := cat.Audio(l, id, audio.PCMU); err == nil {
			secs = fmt.Sprintf("%.2f", float64(len(a))/8000)
		}
		text := cat.Text(l, id)
		if id == prompts.SMSBody {
			text = cat.SMSBody(l, "123456")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", id, secs, strings.ReplaceAll(text, "\n", `\n`))
	}
	return tw.Flush()
}
