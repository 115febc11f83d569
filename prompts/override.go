package prompts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/prompts/internal/catalog"
)

// maxOverrideSeconds bounds an operator's recording: a longer one is
// almost certainly the wrong file.
const maxOverrideSeconds = 60

// loadTextFile merges the operator's text overrides: a YAML map from
// locale to the fields of a locale file. A new locale must be complete
// (finish checks), and needs recordings in the audio directory.
func (c *Catalogue) loadTextFile(name string) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	var file map[string]catalog.Locale
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	tags := make([]string, 0, len(file))
	for tag := range file {
		tags = append(tags, tag)
	}
	sort.Strings(tags)
	for _, tag := range tags {
		if err := c.merge(tag, file[tag]); err != nil {
			return err
		}
	}
	return nil
}

// loadAudioDir replaces built-in audio with <dir>/<locale>/<id>.wav.
func (c *Catalogue) loadAudioDir(dir string) error {
	locales, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, ld := range locales {
		lpath := filepath.Join(dir, ld.Name())
		if strings.HasPrefix(ld.Name(), ".") {
			continue
		}
		if !ld.IsDir() {
			return fmt.Errorf("%s: want a directory per locale (such as de/), not a file", lpath)
		}
		loc := c.locales[strings.ToLower(normaliseTag(ld.Name()))]
		if loc == nil {
			return fmt.Errorf("%s: locale %q is not in the catalogue (add its texts to text_file first)", lpath, ld.Name())
		}
		files, err := os.ReadDir(lpath)
		if err != nil {
			return err
		}
		for _, f := range files {
			fpath := filepath.Join(lpath, f.Name())
			if strings.HasPrefix(f.Name(), ".") {
				continue
			}
			id := ID(strings.TrimSuffix(f.Name(), ".wav"))
			if f.IsDir() || !strings.HasSuffix(f.Name(), ".wav") || !id.Spoken() {
				return fmt.Errorf("%s: want <prompt>.wav with a spoken prompt (greeting, press_pound, digit_0, ...)", fpath)
			}
			cl, err := readRecording(fpath)
			if err != nil {
				return err
			}
			loc.audio[id] = cl
		}
	}
	return nil
}

// readRecording reads and converts one operator recording to both laws.
func readRecording(name string) (*clip, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	w, err := audio.ReadWAV(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	pcm := w.PCM()
	switch {
	case len(pcm) == 0:
		return nil, fmt.Errorf("%s: no samples", name)
	case len(pcm) > maxOverrideSeconds*8000:
		return nil, fmt.Errorf("%s: %.0f s long, more than %d s", name, float64(len(pcm))/8000, maxOverrideSeconds)
	}
	return &clip{ulaw: audio.PCMU.Encode(nil, pcm), alaw: audio.PCMA.Encode(nil, pcm)}, nil
}
