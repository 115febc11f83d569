package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// YAMLError is a configuration file that did not decode: its syntax, or
// values of the wrong type, each line naming the key at fault.
type YAMLError struct {
	Path string // the file
	Err  error
}

func (e *YAMLError) Error() string { return fmt.Sprintf("config %s: %v", e.Path, e.Err) }

// Unwrap returns the decoder's error.
func (e *YAMLError) Unwrap() error { return e.Err }

// yamlLine is the "line N: " yaml.v3 starts each of a TypeError's lines with.
var yamlLine = regexp.MustCompile(`^line (\d+): `)

// nameKeys rewrites err's lines when it is a *yaml.TypeError: "line 3:
// cannot unmarshal !!str `abc` into int" becomes "line 3: http.body_limit:
// cannot unmarshal ...", the key path found in data's node tree. Every
// error of the file is kept, as yaml.v3 gathers them.
func nameKeys(data []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return err
	}
	keys := map[int]string{}
	keyLines(&root, "", keys)
	lines := make([]string, len(te.Errors))
	for i, line := range te.Errors {
		lines[i] = line
		m := yamlLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if key, ok := keys[n]; ok {
			lines[i] = m[0] + key + ": " + strings.TrimPrefix(line, m[0])
		}
	}
	return errors.New(strings.Join(lines, "\n"))
}

// keyLines records, by line, the key path of the first key or value on it.
func keyLines(n *yaml.Node, path string, keys map[int]string) {
	note := func(line int, p string) {
		if _, ok := keys[line]; !ok && p != "" {
			keys[line] = p
		}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			keyLines(c, path, keys)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			note(k.Line, p)
			if v.Kind != yaml.MappingNode {
				// A mapping's line is its first key's, which names itself.
				note(v.Line, p)
			}
			keyLines(v, p, keys)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if c.Kind != yaml.MappingNode {
				note(c.Line, p)
			}
			keyLines(c, p, keys)
		}
	}
}
