package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/verigate/verigate/config"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/verify"
)

// runRoute is `verigate route explain NUMBER [flags]`: how the gateway
// would route a verification to NUMBER, and why.
func runRoute(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "explain" {
		fmt.Fprintln(stderr, "Usage: verigate route explain NUMBER [--roaming] [--client-ip IP] [--channel sms|call|auto] [--tenant T] [--config FILE] [--json]")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return flag.ErrHelp
		}
		return errors.New("route: the subcommand is explain")
	}
	fs := flag.NewFlagSet("route explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	roaming := fs.Bool("roaming", false, "the request's roaming hint (--roaming=false to say not roaming; absent: no hint)")
	clientIP := fs.String("client-ip", "", "the client's IP address (GeoIP roaming signal)")
	channel := fs.String("channel", "auto", "the channel asked for: sms, call or auto")
	tenant := fs.String("tenant", "", "the tenant asking (rules may match on it)")
	configPath := fs.String("config", "", "configuration file, read as serve reads it with the VERIGATE_* variables (built-in defaults if absent)")
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: verigate route explain NUMBER [flags]")
		fs.PrintDefaults()
	}
	positional, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if len(positional) != 1 {
		fs.Usage()
		return errors.New("route explain: give exactly one NUMBER")
	}
	ch := verify.Channel(*channel)
	if !ch.Valid() {
		return fmt.Errorf("route explain: --channel must be sms, call or auto, not %q", *channel)
	}
	var hint *bool
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "roaming" {
			hint = roaming
		}
	})

	// The configuration as serve reads it (file and VERIGATE_* variables),
	// and the engine as serve opens it: the explanation is the gateway's.
	cfg, err := config.Load(*configPath, os.LookupEnv)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	engine, err := openRouteEngine(cfg, route.OpenOptions{Logger: logger, NoHistory: true})
	if err != nil {
		return err
	}
	defer engine.Close()
	num, err := route.NewClassifier(route.ClassifierOptions{DefaultRegion: cfg.Verify.DefaultRegion, Carrier: true, CacheSize: -1}).ParseNumber(positional[0])
	if err != nil {
		return err
	}
	ex := engine.Explain(ctx, verify.RouteRequest{Tenant: *tenant, Number: num, Channel: ch, Roaming: hint, ClientIP: *clientIP})
	if *asJSON {
		return printJSON(stdout, ex)
	}
	return printExplanation(stdout, ex)
}

func printExplanation(w io.Writer, ex *route.Explanation) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	n := ex.Number
	desc := []string{n.Region, strings.ReplaceAll(n.LineType, "_", " ")}
	if n.Carrier != "" {
		desc = append(desc, "carrier "+n.Carrier)
	}
	fmt.Fprintf(tw, "number\t%s (%s)\n", n.E164, strings.Join(desc, ", "))
	if ex.LineType != n.LineType {
		fmt.Fprintf(tw, "line type\t%s (from the number lookup)\n", strings.ReplaceAll(ex.LineType, "_", " "))
	}
	fmt.Fprintf(tw, "requested\t%s\n", ex.Requested)
	for i, s := range ex.Signals {
		label := ""
		if i == 0 {
			label = "signals"
		}
		used := ""
		if s.Used {
			used = " (decides)"
		}
		fmt.Fprintf(tw, "%s\t%s: %s%s\n", label, s.Name, s.Detail, used)
	}
	if len(ex.Signals) == 0 {
		fmt.Fprintf(tw, "signals\tnone\n")
	}
	fmt.Fprintf(tw, "roaming\t%s\n", yesNo(ex.Roaming))
	for i, r := range ex.Rules {
		label := ""
		if i == 0 {
			label = "rules"
		}
		if r.Matched {
			fmt.Fprintf(tw, "%s\t%d. %s: matched\n", label, i+1, r.Name)
		} else {
			fmt.Fprintf(tw, "%s\t%d. %s: no, %s\n", label, i+1, r.Name, r.Why)
		}
	}
	if len(ex.Rules) == 0 {
		fmt.Fprintf(tw, "rules\tnone looked at\n")
	}
	if ex.Refused != nil {
		fmt.Fprintf(tw, "decision\trefused (%s)\n", ex.Refused.Code)
		fmt.Fprintf(tw, "reason\t%s\n", ex.Refused.Message)
		return tw.Flush()
	}
	r := ex.Route
	how := string(r.Channel)
	if r.Provider != "" {
		how += " via " + r.Provider
	}
	if r.Trunk != "" {
		how += ", trunk " + r.Trunk
	}
	if r.SenderID != "" {
		how += ", from " + r.SenderID
	}
	fmt.Fprintf(tw, "decision\t%s\n", how)
	fallback := "none"
	if r.Fallback != "" {
		fallback = string(r.Fallback)
	}
	fmt.Fprintf(tw, "fallback\t%s\n", fallback)
	fmt.Fprintf(tw, "reasons\t%s\n", strings.Join(r.Reasons, ", "))
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
