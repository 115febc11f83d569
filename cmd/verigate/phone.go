package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/sip/media"
)

// runPhone implements `verigate phone`: a SIP phone that answers every
// call, presses keys (RFC 4733, SIP INFO or in-band tones) and can record what it hears, so an
// operator can test the path from the gateway through the PBX.
func runPhone(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("phone", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:5090", "address to take calls on (UDP and TCP)")
	press := fs.String("press", "#", "keys to press once answered (0-9, *, #, A-D); empty presses none")
	dtmf := fs.String("dtmf", "rfc4733", "how keys are sent: rfc4733 (RTP events), info (SIP INFO application/dtmf-relay) or inband (tones in the audio)")
	after := fs.Duration("after", siptest.DefaultPhoneAfter, "wait between answering and the first key (keys count only once the prompt asking for them has begun)")
	gap := fs.Duration("gap", siptest.DefaultKeyGap, "wait between keys")
	ring := fs.Duration("ring", time.Second, "ring this long before answering")
	hangup := fs.Duration("hangup-after", 0, "hang up this long after answering (0: wait for the caller)")
	record := fs.String("record", "", "WAV file to record what the phone hears (each call overwrites it)")
	rtpPorts := fs.String("rtp-ports", siptest.DefaultPhoneRTPPorts, "UDP port range for media")
	tlsListen := fs.String("tls-listen", "", "also take calls over TLS on this address (needs --tls-cert and --tls-key)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate (chain) for --tls-listen")
	tlsKey := fs.String("tls-key", "", "PEM private key for --tls-listen")
	verbose := fs.Bool("v", false, "log SIP details too")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("phone: unexpected argument %q", fs.Arg(0))
	}
	mode, err := media.ParseDTMFMode(*dtmf)
	if err != nil || mode == media.DTMFAuto {
		return fmt.Errorf("phone: --dtmf must be rfc4733, info or inband, not %q", *dtmf)
	}
	var tlsConf *tls.Config
	if *tlsListen != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return fmt.Errorf("phone: --tls-cert/--tls-key: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	p, err := siptest.NewPhone(siptest.PhoneConfig{
		Listen: *listen, TLSListen: *tlsListen, TLSConfig: tlsConf, RTPPorts: *rtpPorts, Ring: *ring, Press: *press, DTMF: mode, After: *after, KeyGap: *gap,
		HangupAfter: *hangup, Record: *record, Logger: log,
		OnCallEnd: func(pc siptest.PhoneCall) {
			status := "ok"
			if pc.Err != nil {
				status = "error: " + pc.Err.Error()
			}
			fmt.Fprintf(stdout, "call %s: codec %s, pressed %q, heard %d packets, hung up by %s after %s (%s)\n",
				pc.CallID, pc.Codec, pc.KeysSent, pc.Heard, pc.HungUpBy, pc.Duration.Round(time.Millisecond), status)
		},
	})
	if err != nil {
		return fmt.Errorf("phone: %w", err)
	}
	fmt.Fprintf(stdout, "phone listening on %s (udp, tcp); pressing %q by %s %s after answering; Ctrl-C to stop\n", p.Addr(), *press, mode, *after)
	<-ctx.Done()
	if err := p.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
