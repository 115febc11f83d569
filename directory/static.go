package directory

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"

	"go.yaml.in/yaml/v3"

	"github.com/verigate/verigate/verify"
)

// StaticConfig configures the file source.
type StaticConfig struct {
	// File is a YAML or CSV file of people and numbers (docs/DIRECTORY.md).
	File string `yaml:"file"`
	// Format is yaml or csv; taken from File's extension when empty.
	Format string `yaml:"format"`
}

// Enabled reports whether the source is configured.
func (c StaticConfig) Enabled() bool { return c.File != "" }

// Validate checks the settings (not the file, which NewStatic reads).
func (c StaticConfig) Validate(prefix string) error {
	if !c.Enabled() {
		return nil
	}
	if _, err := c.format(); err != nil {
		return fmt.Errorf("%s.format: %w", prefix, err)
	}
	return nil
}

func (c StaticConfig) format() (string, error) {
	f := strings.ToLower(c.Format)
	if f == "" {
		switch strings.ToLower(filepath.Ext(c.File)) {
		case ".yaml", ".yml":
			f = "yaml"
		case ".csv":
			f = "csv"
		default:
			return "", fmt.Errorf("cannot tell yaml from csv by the name %q: set it", filepath.Base(c.File))
		}
	}
	if f != "yaml" && f != "csv" {
		return "", fmt.Errorf("must be yaml or csv, not %q", c.Format)
	}
	return f, nil
}

// maxStaticFile bounds the file read: a million people fit in 100 MiB.
const maxStaticFile = 100 << 20

// Static is the file source. Keys are matched case-insensitively. It is
// safe for concurrent use; Reload swaps the whole table at once.
type Static struct {
	cfg    StaticConfig
	parser verify.NumberParser
	log    *slog.Logger
	table  atomic.Pointer[staticTable]
}

type staticTable struct {
	byOID, byUPN, byUsername map[string]*User
}

// NewStatic reads and validates the file. Every entry needs a key (oid,
// upn or username) and at least one number the parser accepts; keys are
// unique. An error names the file and the line.
func NewStatic(cfg StaticConfig, parser verify.NumberParser, log *slog.Logger) (*Static, error) {
	if parser == nil {
		return nil, errors.New("directory: static: no number parser")
	}
	s := &Static{cfg: cfg, parser: parser, log: discardIfNil(log)}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads the file; on error the table in use stays (call it on
// SIGHUP).
func (s *Static) Reload() error {
	format, err := s.cfg.format()
	if err != nil {
		return fmt.Errorf("directory: static %s: %w", s.cfg.File, err)
	}
	f, err := os.Open(s.cfg.File)
	if err != nil {
		return fmt.Errorf("directory: static: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStaticFile+1))
	if err != nil {
		return fmt.Errorf("directory: static: %w", err)
	}
	if len(data) > maxStaticFile {
		return fmt.Errorf("directory: static %s: larger than %d MiB", s.cfg.File, maxStaticFile>>20)
	}
	var entries []staticEntry
	if format == "csv" {
		entries, err = parseCSV(data)
	} else {
		entries, err = parseYAML(data)
	}
	if err != nil {
		return fmt.Errorf("directory: static %s: %w", s.cfg.File, err)
	}
	t, err := s.build(entries)
	if err != nil {
		return fmt.Errorf("directory: static %s: %w", s.cfg.File, err)
	}
	s.table.Store(t)
	s.log.Info("directory: static file loaded", "file", s.cfg.File, "users", len(entries))
	return nil
}

// Lookup implements Directory: by oid, upn, then username, the first
// that matches. An oid, when q gives one and the file holds any, is the
// only key looked up: it names the person for good, while a UPN or user
// name can pass to someone else, whose phone a fallback would then call.
func (s *Static) Lookup(ctx context.Context, q Query) (User, error) {
	t := s.table.Load()
	keys := []struct {
		m   map[string]*User
		key string
	}{{t.byOID, q.OID}, {t.byUPN, q.UPN}, {t.byUsername, q.Username}}
	if q.OID != "" && len(t.byOID) > 0 {
		keys = keys[:1]
	}
	for _, k := range keys {
		if k.key == "" {
			continue
		}
		if u, ok := k.m[strings.ToLower(strings.TrimSpace(k.key))]; ok {
			out := *u
			out.Numbers = append([]Number(nil), u.Numbers...)
			return out, nil
		}
	}
	return User{}, fmt.Errorf("static: %w", ErrNotFound)
}

// staticEntry is one person as the file gives them.
type staticEntry struct {
	line               int
	OID, UPN, Username string
	DisplayName        string
	Mobile, Office     []string
}

// guid is an Entra object id.
var guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (s *Static) build(entries []staticEntry) (*staticTable, error) {
	t := &staticTable{byOID: map[string]*User{}, byUPN: map[string]*User{}, byUsername: map[string]*User{}}
	for _, e := range entries {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("line %d: %s", e.line, fmt.Sprintf(format, args...))
		}
		if e.OID == "" && e.UPN == "" && e.Username == "" {
			return nil, bad("needs an oid, upn or username")
		}
		if e.OID != "" && !guid.MatchString(e.OID) {
			return nil, bad("oid %q is not an Entra object id (a GUID)", e.OID)
		}
		if e.UPN != "" && !strings.Contains(e.UPN, "@") {
			return nil, bad("upn %q has no @domain", e.UPN)
		}
		u := &User{ID: firstNonEmpty(e.OID, e.UPN, e.Username), DisplayName: e.DisplayName, Source: "static"}
		for _, n := range []struct {
			k    Kind
			raws []string
		}{{KindMobile, e.Mobile}, {KindOffice, e.Office}} {
			for _, raw := range n.raws {
				num, err := s.parser.ParseNumber(raw)
				if err != nil {
					return nil, bad("%s number: %v", n.k, err)
				}
				if !hasNumber(u.Numbers, num.E164) {
					u.Numbers = append(u.Numbers, Number{E164: num.E164, Kind: n.k})
				}
			}
		}
		if len(u.Numbers) == 0 {
			return nil, bad("needs a mobile or office number")
		}
		if len(u.Numbers) > MaxNumbers {
			return nil, bad("has %d numbers, more than %d", len(u.Numbers), MaxNumbers)
		}
		for _, k := range []struct {
			name, key string
			m         map[string]*User
		}{{"oid", e.OID, t.byOID}, {"upn", e.UPN, t.byUPN}, {"username", e.Username, t.byUsername}} {
			if k.key == "" {
				continue
			}
			key := strings.ToLower(k.key)
			if _, dup := k.m[key]; dup {
				return nil, bad("%s %q appears twice", k.name, k.key)
			}
			k.m[key] = u
		}
	}
	return t, nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// yamlEntry is an entry of the YAML file's users list. mobile and office
// take one number or a list.
type yamlEntry struct {
	OID         string       `yaml:"oid"`
	UPN         string       `yaml:"upn"`
	Username    string       `yaml:"username"`
	DisplayName string       `yaml:"display_name"`
	Mobile      stringOrList `yaml:"mobile"`
	Office      stringOrList `yaml:"office"`
}

type stringOrList []string

func (s *stringOrList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = []string{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

func parseYAML(data []byte) ([]staticEntry, error) {
	var doc struct {
		Users []yaml.Node `yaml:"users"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("no users")
		}
		return nil, err
	}
	if len(doc.Users) == 0 {
		return nil, errors.New("no users: the file needs a users: list")
	}
	out := make([]staticEntry, 0, len(doc.Users))
	for i := range doc.Users {
		n := &doc.Users[i]
		var e yamlEntry
		// Node.Decode has no KnownFields switch: check the keys by hand,
		// so a misspelt "mobil:" is an error, not a person without a phone.
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("line %d: a user is a mapping (oid, upn, username, display_name, mobile, office)", n.Line)
		}
		for j := 0; j+1 < len(n.Content); j += 2 {
			switch k := n.Content[j]; k.Value {
			case "oid", "upn", "username", "display_name", "mobile", "office":
			default:
				return nil, fmt.Errorf("line %d: unknown field %q", k.Line, k.Value)
			}
		}
		if err := n.Decode(&e); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		out = append(out, staticEntry{line: n.Line, OID: strings.TrimSpace(e.OID), UPN: strings.TrimSpace(e.UPN),
			Username: strings.TrimSpace(e.Username), DisplayName: strings.TrimSpace(e.DisplayName),
			Mobile: e.Mobile, Office: e.Office})
	}
	return out, nil
}

// csvColumns are the columns a CSV file may have, in any order, named by
// its header line. Several numbers in one cell are separated by ";".
var csvColumns = []string{"oid", "upn", "username", "display_name", "mobile", "office"}

func parseCSV(data []byte) ([]staticEntry, error) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))) // Excel's BOM
	r.Comment = '#'
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty: the first line names the columns (" + strings.Join(csvColumns, ",") + ")")
		}
		return nil, err
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		known := false
		for _, c := range csvColumns {
			known = known || c == h
		}
		if !known {
			line, _ := r.FieldPos(i)
			return nil, fmt.Errorf("line %d: unknown column %q (known: %s)", line, h, strings.Join(csvColumns, ","))
		}
		if _, dup := col[h]; dup {
			line, _ := r.FieldPos(i)
			return nil, fmt.Errorf("line %d: column %q twice", line, h)
		}
		col[h] = i
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	list := func(rec []string, name string) []string {
		var out []string
		for _, v := range strings.Split(get(rec, name), ";") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
		return out
	}
	var out []staticEntry
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err // csv.ParseError names the line
		}
		line, _ := r.FieldPos(0)
		out = append(out, staticEntry{line: line, OID: get(rec, "oid"), UPN: get(rec, "upn"),
			Username: get(rec, "username"), DisplayName: get(rec, "display_name"),
			Mobile: list(rec, "mobile"), Office: list(rec, "office")})
	}
	if len(out) == 0 {
		return nil, errors.New("no users below the header line")
	}
	return out, nil
}
