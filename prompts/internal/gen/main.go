// Command gen synthesises the prompt audio: for every locale file under
// prompts/text and every spoken prompt, espeak-ng speaks the text with the
// locale's voice and sox turns it into 8 kHz mono, trims the silence at
// both ends, normalises the loudness and writes µ-law and A-law WAV files
// to prompts/audio/<locale>/<id>.{ulaw,alaw}.wav. prompts/generate.sh
// (make prompts) installs the tools and runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/prompts/internal/catalog"
)

// defaultSpeed is espeak-ng's words per minute: a little slower than its
// own 175, since the line is narrow-band and the listener may be writing
// the code down.
const defaultSpeed = 150

func main() {
	textDir := flag.String("text", "prompts/text", "directory of <locale>.yaml files")
	outDir := flag.String("out", "prompts/audio", "directory the audio is written to")
	only := flag.String("locales", "", "comma-separated locales to generate (default: all)")
	jobs := flag.Int("j", 2, "clips synthesised in parallel")
	flag.Parse()
	if err := run(context.Background(), *textDir, *outDir, *only, *jobs); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

type clip struct {
	locale string
	loc    catalog.Locale
	id     prompts.ID
}

func run(ctx context.Context, textDir, outDir, only string, jobs int) error {
	for _, tool := range []string{"espeak-ng", "sox"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: run make prompts, which installs it", tool)
		}
	}
	files, err := filepath.Glob(filepath.Join(textDir, "*.yaml"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	want := map[string]bool{}
	for _, l := range strings.Split(only, ",") {
		if l = strings.TrimSpace(l); l != "" {
			want[l] = true
		}
	}
	var clips []clip
	for _, f := range files {
		locale := strings.TrimSuffix(filepath.Base(f), ".yaml")
		if len(want) > 0 && !want[locale] {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		loc, err := catalog.Parse(data)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if loc.Voice == "" {
			return fmt.Errorf("%s: no voice", f)
		}
		if err := os.MkdirAll(filepath.Join(outDir, locale), 0o755); err != nil {
			return err
		}
		if err := removeStale(filepath.Join(outDir, locale)); err != nil {
			return err
		}
		for _, id := range prompts.SpokenIDs() {
			if loc.SpeechText(string(id)) == "" {
				return fmt.Errorf("%s: no text for %s", f, id)
			}
			clips = append(clips, clip{locale, loc, id})
		}
	}
	tmp, err := os.MkdirTemp("", "verigate-prompts-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	work := make(chan clip)
	errs := make(chan error, len(clips))
	var wg sync.WaitGroup
	for w := range max(jobs, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				if err := synth(ctx, filepath.Join(tmp, fmt.Sprint(w)), outDir, c); err != nil {
					errs <- fmt.Errorf("%s/%s: %w", c.locale, c.id, err)
				}
			}
		}()
	}
	for _, c := range clips {
		work <- c
	}
	close(work)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) == 0 {
		fmt.Printf("gen: %d clips written to %s\n", len(clips), outDir)
	}
	return errors.Join(all...)
}

func synth(ctx context.Context, tmp, outDir string, c clip) error {
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	speed := c.loc.Speed
	if speed == 0 {
		speed = defaultSpeed
	}
	raw := filepath.Join(tmp, "raw.wav")
	clean := filepath.Join(tmp, "clean.wav")
	// The text goes in on stdin so that nothing in it is read as a flag.
	cmd := exec.CommandContext(ctx, "espeak-ng", "-v", c.loc.Voice, "-s", fmt.Sprint(speed), "-w", raw, "--stdin")
	cmd.Stdin = strings.NewReader(c.loc.SpeechText(string(c.id)))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("espeak-ng: %w: %s", err, out)
	}
	// Resample first, then trim (20 ms above 0.2 % at each end, by trimming
	// the reversed clip), then normalise the peak to -3 dBFS.
	if err := sox(ctx, raw, "-b", "16", "-c", "1", clean,
		"rate", "8000",
		"silence", "1", "0.02", "0.2%", "reverse", "silence", "1", "0.02", "0.2%", "reverse",
		"gain", "-n", "-3"); err != nil {
		return err
	}
	for _, law := range []struct{ ext, enc string }{{"ulaw", "mu-law"}, {"alaw", "a-law"}} {
		out := filepath.Join(outDir, c.locale, string(c.id)+"."+law.ext+".wav")
		if err := sox(ctx, clean, "-e", law.enc, "-b", "8", out); err != nil {
			return err
		}
	}
	return nil
}

// removeStale deletes clips of prompts no longer in the catalogue, which
// would otherwise stay embedded.
func removeStale(dir string) error {
	keep := map[string]bool{}
	for _, id := range prompts.SpokenIDs() {
		keep[string(id)+".ulaw.wav"], keep[string(id)+".alaw.wav"] = true, true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// sox runs sox without dither (-D): its dither is random, which would
// make every regeneration differ; G.711 speech does not need it.
func sox(ctx context.Context, in string, args ...string) error {
	out, err := exec.CommandContext(ctx, "sox", append([]string{"-V1", "-D", in}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("sox: %w: %s", err, out)
	}
	return nil
}
