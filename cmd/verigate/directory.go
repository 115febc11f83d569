package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"

	"github.com/verigate/verigate/config"
	"github.com/verigate/verigate/directory"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/verify"
)

// runDirectory is `verigate directory lookup --config FILE --upn U`: who
// the configured directory says a person is, and their numbers, so an
// administrator can try a directory: section before a front end uses it.
func runDirectory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const use = "Usage: verigate directory lookup --config FILE (--upn UPN | --oid OID | --username NAME) [--full]"
	if len(args) == 0 || args[0] != "lookup" {
		fmt.Fprintln(stderr, use)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return flag.ErrHelp
		}
		return errors.New("directory: the subcommand is lookup")
	}
	fs := flag.NewFlagSet("directory lookup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file with a directory: section (the environment applies too)")
	var q directory.Query
	fs.StringVar(&q.UPN, "upn", "", "the person's userPrincipalName")
	fs.StringVar(&q.OID, "oid", "", "the person's Entra object id")
	fs.StringVar(&q.Username, "username", "", "the person's login name (sAMAccountName, uid)")
	full := fs.Bool("full", false, "print the numbers in full (they are masked otherwise)")
	debug := fs.Bool("debug", false, "log each source's steps to stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, use)
		fs.PrintDefaults()
	}
	positional, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if len(positional) != 0 || q.IsZero() {
		fs.Usage()
		return errors.New("directory lookup: give --upn, --oid or --username")
	}
	cfg, err := config.Load(*configPath, os.LookupEnv)
	if err != nil {
		return err
	}
	if !cfg.Directory.Enabled() {
		return errors.New("directory lookup: the configuration has no directory source (directory.static, directory.ldap or directory.graph)")
	}
	level := slog.LevelWarn
	if *debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	dir, err := directory.New(cfg.Directory, directory.Options{
		Parser: route.NewClassifier(route.ClassifierOptions{DefaultRegion: cfg.Verify.DefaultRegion, CacheSize: -1}),
		Logger: logger,
	})
	if err != nil {
		return err
	}
	defer dir.Close()
	u, err := dir.Lookup(ctx, q)
	if err != nil {
		return fmt.Errorf("directory lookup: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "source\t%s\n", u.Source)
	fmt.Fprintf(tw, "id\t%s\n", u.ID)
	if u.DisplayName != "" {
		fmt.Fprintf(tw, "name\t%s\n", u.DisplayName)
	}
	for _, n := range u.Numbers {
		shown := verify.MaskNumber(n.E164)
		if *full {
			shown = n.E164
		}
		fmt.Fprintf(tw, "%s\t%s\n", n.Kind, shown)
	}
	if len(u.Numbers) == 0 {
		fmt.Fprintf(tw, "numbers\tnone: a front end cannot call this person\n")
	}
	return tw.Flush()
}
