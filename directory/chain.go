package directory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/verigate/verigate/verify"
)

// Chain asks its sources in order and returns the first person found. A
// source that fails otherwise than ErrNotFound ends the lookup with its
// error: falling through to a later source while an earlier one is down
// could call a number the earlier source has since changed.
type Chain []Directory

// Lookup implements Directory.
func (c Chain) Lookup(ctx context.Context, q Query) (User, error) {
	if q.IsZero() {
		return User{}, fmt.Errorf("directory: empty query: %w", ErrNotFound)
	}
	for _, d := range c {
		u, err := d.Lookup(ctx, q)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		return u, err
	}
	return User{}, ErrNotFound
}

// Close closes the sources that hold connections.
func (c Chain) Close() error {
	var errs []error
	for _, d := range c {
		if cl, ok := d.(io.Closer); ok {
			errs = append(errs, cl.Close())
		}
	}
	return errors.Join(errs...)
}

// Config is the directory: section of the configuration. Each source is
// on when its block is filled in; Order says which is asked first.
type Config struct {
	// Order lists the sources asked, first to last: static, ldap and
	// graph by default (a file of exceptions before the directory).
	Order  []string     `yaml:"order"`
	Static StaticConfig `yaml:"static"`
	LDAP   LDAPConfig   `yaml:"ldap"`
	Graph  GraphConfig  `yaml:"graph"`
}

// Enabled reports whether any source is configured.
func (c Config) Enabled() bool { return c.Static.Enabled() || c.LDAP.Enabled() || c.Graph.Enabled() }

var defaultOrder = []string{"static", "ldap", "graph"}

// Validate checks every configured source, naming the key at fault.
func (c Config) Validate(prefix string) error {
	errs := []error{
		c.Static.Validate(prefix + ".static"),
		c.LDAP.Validate(prefix + ".ldap"),
		c.Graph.Validate(prefix + ".graph"),
	}
	seen := map[string]bool{}
	for i, s := range c.Order {
		switch {
		case s != "static" && s != "ldap" && s != "graph":
			errs = append(errs, fmt.Errorf("%s.order[%d]: must be static, ldap or graph, not %q", prefix, i, s))
		case seen[s]:
			errs = append(errs, fmt.Errorf("%s.order[%d]: %s twice", prefix, i, s))
		case !c.enabled(s):
			errs = append(errs, fmt.Errorf("%s.order[%d]: %s is not configured (%s.%s)", prefix, i, s, prefix, s))
		}
		seen[s] = true
	}
	return errors.Join(errs...)
}

func (c Config) enabled(source string) bool {
	switch source {
	case "static":
		return c.Static.Enabled()
	case "ldap":
		return c.LDAP.Enabled()
	case "graph":
		return c.Graph.Enabled()
	}
	return false
}

// Options are what New needs besides the configuration.
type Options struct {
	// Parser normalises numbers: the gateway's route.Classifier, whose
	// default region (verify.default_region) reads national numbers.
	Parser verify.NumberParser
	// HTTPClient talks to Graph; one of Graph's own (httpclient.NewClient)
	// when nil.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// New builds the Chain of the configured sources in cfg.Order (static,
// ldap, graph when empty); none configured is an empty Chain, which
// finds nobody. A static file is read now; LDAP and Graph are asked on
// the first lookup.
func New(cfg Config, opts Options) (Chain, error) {
	order := cfg.Order
	if len(order) == 0 {
		order = defaultOrder
	}
	var c Chain
	for _, s := range order {
		if !cfg.enabled(s) {
			continue
		}
		var d Directory
		var err error
		switch s {
		case "static":
			d, err = NewStatic(cfg.Static, opts.Parser, opts.Logger)
		case "ldap":
			d, err = NewLDAP(cfg.LDAP, opts.Parser, opts.Logger)
		case "graph":
			d, err = NewGraph(cfg.Graph, opts.Parser, opts.HTTPClient, opts.Logger)
		default:
			err = fmt.Errorf("directory: unknown source %q (one of %s)", s, strings.Join(defaultOrder, ", "))
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		c = append(c, d)
	}
	return c, nil
}
