package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/verigate/verigate/client"
)

// The client subcommands (start, check, get, send) call a running
// gateway's REST API with the client package and print its answer as
// JSON on stdout; an API error goes to stderr as "<code>: <message>" and
// the command exits non-zero.

// defaultURL is where `serve` listens unless configured otherwise.
const defaultURL = "http://127.0.0.1:8080"

// apiKeyEnv holds the API key when --key is not given. The key is never
// printed, nor shown as a flag default in --help.
const apiKeyEnv = "VERIGATE_API_KEY"

// clientFlags are the flags every client subcommand has.
type clientFlags struct {
	url, key string
	timeout  time.Duration
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "url", defaultURL, "the gateway's base URL")
	fs.StringVar(&f.key, "key", "", "API key (default: $"+apiKeyEnv+")")
	fs.DurationVar(&f.timeout, "timeout", client.DefaultTimeout, "time allowed for each request (beyond --wait)")
}

func (f *clientFlags) client(name string) (*client.Client, error) {
	key := f.key
	if key == "" {
		key = os.Getenv(apiKeyEnv)
	}
	if key == "" {
		return nil, fmt.Errorf("%s: no API key: give --key or set %s", name, apiKeyEnv)
	}
	c, err := client.New(f.url, key, client.WithTimeout(f.timeout), client.WithUserAgent("verigate-cli/"+version))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// newClientFlagSet returns the flag set of subcommand name.
func newClientFlagSet(name, usage string, stderr io.Writer, cf *clientFlags) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: verigate "+name+" "+usage)
		fs.PrintDefaults()
	}
	cf.register(fs)
	return fs
}

// printJSON writes v indented, one value per run.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// runStart is `verigate start --to NUMBER [flags]`.
func runStart(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	var req client.StartRequest
	var channel, mode string
	var roaming bool
	var wait time.Duration
	fs := newClientFlagSet("start", "--to NUMBER [--channel sms|call|auto] [--call-mode approve|code] [--wait 30s] [flags]", stderr, &cf)
	fs.StringVar(&req.To, "to", "", "the phone number (+4915123456789)")
	fs.StringVar(&channel, "channel", "", "sms, call or auto (default sms)")
	fs.StringVar(&req.Locale, "locale", "", "language of the message or call (en, de, pt-BR, ...)")
	fs.StringVar(&mode, "call-mode", "", "for calls: approve (press #) or code (the code read aloud)")
	fs.StringVar(&req.UserID, "user-id", "", "the IdP's user, for per-user limits")
	fs.StringVar(&req.ClientIP, "client-ip", "", "the end user's IP address")
	fs.BoolVar(&roaming, "roaming", false, "the phone is roaming (--roaming=false: it is not; absent: no hint)")
	fs.StringVar(&req.CallbackURL, "callback-url", "", "URL to receive the status changes")
	fs.StringVar(&req.IdempotencyKey, "idempotency-key", "", "Idempotency-Key: a retry with the same key gets the first answer")
	fs.DurationVar(&wait, "wait", 0, "then wait up to this long for the outcome (a press-# call) and print the verification as it stands")
	if err := parseClientArgs(fs, args); err != nil {
		return err
	}
	if req.To == "" {
		fs.Usage()
		return errors.New("start: give --to NUMBER")
	}
	req.Channel, req.CallMode = client.Channel(channel), client.CallMode(mode)
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "roaming" {
			req.Roaming = &roaming
		}
	})
	c, err := cf.client("start")
	if err != nil {
		return err
	}
	s, err := c.Start(ctx, req)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if wait <= 0 {
		return printJSON(stdout, s)
	}
	v, err := c.Wait(ctx, s.ID, wait)
	if err != nil {
		return fmt.Errorf("start: wait for %s: %w", s.ID, err)
	}
	return printJSON(stdout, v)
}

// runCheck is `verigate check (ID | --to NUMBER) --code CODE`.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	var id, to, code string
	fs := newClientFlagSet("check", "(ID | --id ID | --to NUMBER) --code CODE [flags]", stderr, &cf)
	fs.StringVar(&id, "id", "", "the verification id")
	fs.StringVar(&to, "to", "", "the number whose pending verification to check (instead of an id)")
	fs.StringVar(&code, "code", "", "the code the person entered")
	pos, err := parseClientPositional(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 1 && id == "" {
		id = pos[0]
	}
	if code == "" || (id == "") == (to == "") {
		fs.Usage()
		return errors.New("check: give --code and either an id or --to")
	}
	c, err := cf.client("check")
	if err != nil {
		return err
	}
	var r *client.CheckResult
	if id != "" {
		r, err = c.Check(ctx, id, code)
	} else {
		r, err = c.CheckNumber(ctx, to, code)
	}
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	return printJSON(stdout, r)
}

// runGet is `verigate get ID [--wait 30s]`.
func runGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	var id string
	var wait time.Duration
	fs := newClientFlagSet("get", "(ID | --id ID) [--wait 30s] [flags]", stderr, &cf)
	fs.StringVar(&id, "id", "", "the verification id")
	fs.DurationVar(&wait, "wait", 0, "wait up to this long for the verification to leave pending")
	pos, err := parseClientPositional(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 1 && id == "" {
		id = pos[0]
	}
	if id == "" {
		fs.Usage()
		return errors.New("get: give the verification id")
	}
	c, err := cf.client("get")
	if err != nil {
		return err
	}
	var v *client.Verification
	if wait > 0 {
		v, err = c.Wait(ctx, id, wait)
	} else {
		v, err = c.Get(ctx, id)
	}
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	return printJSON(stdout, v)
}

// runSend is `verigate send --to NUMBER --body TEXT [--channel sms|call|auto]`.
func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	var m client.MessageRequest
	var channel string
	fs := newClientFlagSet("send", "--to NUMBER --body TEXT [--channel sms|call|auto] [flags]", stderr, &cf)
	fs.StringVar(&m.To, "to", "", "the phone number")
	fs.StringVar(&m.Body, "body", "", "the message; with --channel call, the code in it is read aloud")
	fs.StringVar(&channel, "channel", "", "sms, call or auto (default sms)")
	fs.StringVar(&m.Locale, "locale", "", "language of a call (en, de, pt-BR, ...)")
	fs.StringVar(&m.IdempotencyKey, "idempotency-key", "", "Idempotency-Key: a retry with the same key gets the first answer")
	if err := parseClientArgs(fs, args); err != nil {
		return err
	}
	if m.To == "" || m.Body == "" {
		fs.Usage()
		return errors.New("send: give --to and --body")
	}
	m.Channel = client.Channel(channel)
	c, err := cf.client("send")
	if err != nil {
		return err
	}
	r, err := c.Send(ctx, m)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return printJSON(stdout, r)
}

// parseClientArgs parses flags and accepts no other arguments.
func parseClientArgs(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// parseClientPositional parses flags before and after at most one
// positional argument (the id).
func parseClientPositional(fs *flag.FlagSet, args []string) ([]string, error) {
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) > 1 {
		fs.Usage()
		return nil, fmt.Errorf("%s: unexpected argument %q", fs.Name(), pos[1])
	}
	return pos, nil
}
