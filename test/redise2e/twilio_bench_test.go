package redise2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/verigate/verigate/internal/loadtest"
	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/internal/twiliotest"
)

const (
	benchAccountSID = "AC0123456789abcdef0123456789abcdef"
	benchAuthToken  = "0123456789abcdef0123456789abcdef"
)

// BenchmarkHTTPStartCheckTwilio runs start+check pairs over HTTP against
// `verigate serve` on Redis whose SMS go through the Twilio provider
// (twilio-go) to a fake Twilio over TLS (HTTP/1.1) on loopback, in this
// process: the path a user runs, handshakes included when connections
// are not reused. The fake posts no status callbacks, so the gateway's
// work per pair is the start (with its Messages API request) and the
// check. loadgen_cpu includes the fake Twilio's TLS server.
func BenchmarkHTTPStartCheckTwilio(b *testing.B) {
	pair, cpu, fake := twilioGateway(b, benchConns)
	flatOut(b, benchConns, pair, cpu)
	// Connections the gateway opened to the fake Twilio, over all runs of
	// this benchmark function: about benchConns when they are reused.
	b.ReportMetric(float64(fake.Connections()), "twilio_conns")
}

// twilioGateway starts a fake Twilio over TLS and a gateway on a private
// Redis that sends through it and trusts its certificate (SSL_CERT_FILE),
// runs one pair, and returns a function that runs a pair and a meter of
// the CPU the gateway, Redis and this process spend.
func twilioGateway(b *testing.B, conns int) (func() error, *loadtest.CPUMeter, *twiliotest.Server) {
	b.Helper()
	var codes sync.Map // number → code of its last message
	fake := twiliotest.New(twiliotest.Config{
		AccountSID: benchAccountSID, AuthToken: benchAuthToken, TLS: true,
		SMSStatuses: []string{},
		OnMessage: func(m twiliotest.Message) {
			if _, code, ok := smsLine([]byte("sms to=x body=" + m.Body)); ok {
				codes.Store(m.To, code)
			}
		},
	})
	b.Cleanup(fake.Close)
	ca := filepath.Join(b.TempDir(), "fake-twilio.pem")
	if err := os.WriteFile(ca, fake.CertPEM(), 0o600); err != nil {
		b.Fatal(err)
	}
	srv := redistest.StartServer(b)
	env := append(unboundedCaps(), "VERIGATE_LOG_LEVEL=warn",
		"SSL_CERT_FILE="+ca,
		"VERIGATE_SMS_PROVIDER=twilio",
		"VERIGATE_TWILIO_ACCOUNT_SID="+benchAccountSID,
		"VERIGATE_TWILIO_AUTH_TOKEN="+benchAuthToken,
		"VERIGATE_TWILIO_FROM=+15005550006",
		"VERIGATE_TWILIO_BASE_URL="+fake.URL,
		// Webhooks are not reached: the fake posts no callbacks.
		"VERIGATE_PUBLIC_URL=http://127.0.0.1:9",
	)
	g := startGateway(b, srv.URL(), env...)
	lc, err := loadtest.NewClient(g.addr, conns, "Authorization: Bearer "+apiKey)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(lc.Close)
	run := func() error {
		to := fmt.Sprintf("+49151%08d", benchSeq.Add(1))
		return startAndCheck(lc, to, func(string) (string, error) {
			code, ok := codes.LoadAndDelete(to)
			if !ok {
				return "", fmt.Errorf("fake Twilio got no message to %s", to)
			}
			return code.(string), nil
		})
	}
	if err := run(); err != nil {
		b.Fatalf("%v\n%s", err, g.output())
	}
	return run, loadtest.NewCPUMeter("loadgen", loadtest.Proc{Name: "gateway", Pid: g.pid()}, loadtest.Proc{Name: "redis", Pid: srv.Pid()}), fake
}
