// Command verigate is the Verigate gateway and its tools: serve runs the
// gateway; the other subcommands help operators test and inspect it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/verigate/verigate/config"
)

// command is one subcommand. run gets the arguments after the subcommand's
// name; ctx ends on SIGINT or SIGTERM.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists every subcommand, in the order --help shows them.
var commands = []command{
	{"serve", "run the gateway (REST API, SMS and voice delivery)", runServe},
	{"demo", "run the gateway with a loopback test phone and show an SMS and a voice verification", runDemo},
	{"version", "print the version", runVersion},
	{"config", "print the configuration reference (every key, its variable and default): config reference", runConfig},
	{"route", "explain how a number would be routed: route explain NUMBER", runRoute},
	{"prompts", "list the prompts or write one to a WAV file", runPrompts},
	{"phone", "a test phone: answer calls, press keys, record what it hears", runPhone},
	{"directory", "look a person up in the configured directory: directory lookup --upn U", runDirectory},
	{"start", "start a verification on a running gateway: start --to NUMBER [--channel call --wait 30s]", runStart},
	{"check", "check a code on a running gateway: check ID --code CODE, or check --to NUMBER --code CODE", runCheck},
	{"get", "read a verification on a running gateway, or wait for its outcome: get ID [--wait 30s]", runGet},
	{"send", "relay a message through a running gateway: send --to NUMBER --body TEXT [--channel call]", runSend},
	{"entra-fake", "a fake Microsoft Entra ID to walk the external authentication method flow by hand", runEntraFake},
	{"bench", "load a running gateway: bench api (REST start+check) or bench sip (concurrent calls)", runBench},
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errReported):
		os.Exit(1) // written to the log already, in its format
	case err != nil:
		fmt.Fprintln(os.Stderr, "verigate:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version" || args[0] == "-v") {
		return runVersion(ctx, nil, stdout, stderr)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return errors.New("no subcommand given")
		}
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown subcommand %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "verigate: a self-hosted telephony verification gateway")
	fmt.Fprintln(w, "\nUsage: verigate <subcommand> [flags]\n\nSubcommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'verigate <subcommand> --help' for its flags.")
}

func runVersion(_ context.Context, _ []string, stdout, _ io.Writer) error {
	_, err := fmt.Fprintln(stdout, versionLine(debug.ReadBuildInfo()))
	return err
}

// runConfig is `verigate config reference`: docs/CONFIG.md, from the code.
func runConfig(_ context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) != 1 || args[0] != "reference" {
		return errors.New("usage: verigate config reference")
	}
	return config.WriteReference(stdout)
}

// versionLine is `verigate version`'s answer: the version (-ldflags, else
// the module's version), the commit it was built from and the Go version.
func versionLine(bi *debug.BuildInfo, ok bool) string {
	v, commit, goVersion := version, "unknown", runtime.Version()
	if ok {
		goVersion = bi.GoVersion
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if len(commit) > 12 {
			commit = commit[:12]
		}
		if modified && commit != "unknown" {
			commit += "+dirty"
		}
	}
	return fmt.Sprintf("verigate %s (commit %s, %s)", v, commit, goVersion)
}
