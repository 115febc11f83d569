package peertest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BaresipOptions configures StartBaresip.
type BaresipOptions struct {
	// User is the phone's SIP user (the Request-URI user that reaches it).
	User string
	// Password is its digest password at the registrar.
	Password string
	// Registrar is the "host:port" it registers to (Kamailio.Addr). Empty:
	// it does not register and is reached directly at Addr.
	Registrar string
	// Transport is "udp" (default) or "tcp", towards the registrar.
	Transport string
	// Source is the WAV file (16-bit PCM) it sends as its microphone. Empty:
	// one second of 440 Hz tone then a minute of silence (baresip hangs up
	// when its source ends).
	Source []byte
	// AnswerMode is baresip's answermode: "auto" (default), "manual" or "early".
	AnswerMode string
	// ModulePath overrides where baresip's modules are looked for.
	ModulePath string
}

// BaresipEvent is one event baresip reported over ctrl_tcp, e.g. Type
// "REGISTER_OK" (Class "register") or "CALL_ESTABLISHED" (Class "call").
type BaresipEvent struct {
	Type       string `json:"type"`
	Class      string `json:"class"`
	AccountAOR string `json:"accountaor"`
	Direction  string `json:"direction"`
	PeerURI    string `json:"peeruri"`
	ID         string `json:"id"`
	Param      string `json:"param"`
}

// Baresip is a running headless baresip: modules g711, aufile (source),
// aubridge (sink), sndfile (records both directions of every call),
// menu and ctrl_tcp (commands and events as netstring JSON).
type Baresip struct {
	// Addr is "127.0.0.1:<port>", its SIP listener (UDP and TCP).
	Addr string
	// AOR is its address of record, e.g. "sip:alice@127.0.0.1:5060".
	AOR string
	// Dir is its configuration directory; RecordDir holds sndfile's WAVs.
	Dir, RecordDir string
	// CtrlAddr is where ctrl_tcp listens.
	CtrlAddr string

	proc *process
	conn net.Conn

	mu       sync.Mutex
	events   []BaresipEvent
	changed  chan struct{} // closed and replaced when events or responses grow
	resp     map[string]ctrlResponse
	token    int
	readDone chan struct{}
}

type ctrlResponse struct {
	OK    bool   `json:"ok"`
	Data  string `json:"data"`
	Token string `json:"token"`
}

// StartBaresip writes a baresip configuration (config, accounts,
// contacts, the source WAV) into a temporary directory, runs baresip on a
// free loopback port and connects to its ctrl_tcp. The phone answers calls
// by itself (answermode=auto), advertises 127.0.0.1 in its SDP, and
// sndfile records each call into RecordDir. baresip is killed on cleanup
// and its log printed if the test failed.
func StartBaresip(t testing.TB, opts BaresipOptions) *Baresip {
	t.Helper()
	bin := RequireBinary(t, "baresip", "baresip")
	if opts.User == "" {
		t.Fatal("peertest: baresip needs a User")
	}
	mpath := opts.ModulePath
	if mpath == "" {
		mpath = findBaresipModules(t)
	}
	answer := opts.AnswerMode
	if answer == "" {
		answer = "auto"
	}
	transport := opts.Transport
	if transport == "" {
		transport = "udp"
	}
	dir := t.TempDir()
	recDir := filepath.Join(dir, "recordings")
	if err := os.Mkdir(recDir, 0o700); err != nil {
		t.Fatalf("peertest: %v", err)
	}
	src := opts.Source
	if src == nil {
		src = ToneWAV(8000, 440, 1, 60)
	}
	srcPath := writeFile(t, dir, "source.wav", src)
	sipPort := freePortWithNext(t)
	ctrlPort := FreePort(t)
	b := &Baresip{
		Addr:      net.JoinHostPort(Loopback, strconv.Itoa(sipPort)),
		Dir:       dir,
		RecordDir: recDir,
		CtrlAddr:  net.JoinHostPort(Loopback, strconv.Itoa(ctrlPort)),
		changed:   make(chan struct{}),
		resp:      map[string]ctrlResponse{},
		readDone:  make(chan struct{}),
	}
	var account string
	if opts.Registrar != "" {
		b.AOR = "sip:" + opts.User + "@" + opts.Registrar
		account = fmt.Sprintf("<%s;transport=%s>;auth_user=%s;auth_pass=%s;answermode=%s;regint=600;audio_codecs=pcmu,pcma;ptime=20;mwi=no\n",
			b.AOR, transport, opts.User, opts.Password, answer)
	} else {
		b.AOR = "sip:" + opts.User + "@" + b.Addr
		account = fmt.Sprintf("<%s>;answermode=%s;regint=0;audio_codecs=pcmu,pcma;ptime=20;mwi=no\n",
			b.AOR, answer)
	}
	config := strings.Join([]string{
		"# Written by peertest: a headless auto-answering phone.",
		"poll_method epoll",
		"sip_listen " + b.Addr,
		"call_local_timeout 120",
		"call_max_calls 4",
		"net_interface " + Loopback,
		"audio_source aufile," + srcPath,
		"audio_player aubridge,peertest-sink",
		"audio_alert aubridge,peertest-alert",
		"audio_level no",
		"ausrc_format s16",
		"auplay_format s16",
		"auenc_format s16",
		"audec_format s16",
		"audio_buffer 20-160",
		// Below the kernel's ephemeral ports and clear of the ranges the
		// sip tests hand out (20000-31999, 40000-42999).
		"rtp_ports 32000-32767",
		"rtcp_mux no",
		"jitter_buffer_delay 2-10",
		"module_path " + mpath,
		"module g711.so",
		"module aufile.so",
		"module aubridge.so",
		"module sndfile.so",
		"module_tmp account.so",
		"module_app contact.so",
		"module_app menu.so",
		"module_app ctrl_tcp.so",
		"ctrl_tcp_listen " + b.CtrlAddr,
		"snd_path " + recDir,
		"",
	}, "\n")
	writeFile(t, dir, "config", []byte(config))
	writeFile(t, dir, "accounts", []byte(account))
	writeFile(t, dir, "contacts", []byte("# none\n"))
	b.proc = startProcess(t, "baresip", dir, bin, "-f", dir)
	var conn net.Conn
	err := b.proc.waitUntil(10*time.Second, func() error {
		c, err := net.DialTimeout("tcp", b.CtrlAddr, 300*time.Millisecond)
		if err != nil {
			return err
		}
		conn = c
		return nil
	})
	if err != nil {
		t.Fatalf("peertest: baresip ctrl_tcp at %s: %v", b.CtrlAddr, err)
	}
	b.conn = conn
	go b.read()
	t.Cleanup(func() {
		conn.Close()
		<-b.readDone
	})
	return b
}

// Log returns what baresip has printed so far.
func (b *Baresip) Log() string { return b.proc.log.String() }

// Events returns every event baresip reported since StartBaresip connected.
func (b *Baresip) Events() []BaresipEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]BaresipEvent(nil), b.events...)
}

// read parses netstrings from ctrl_tcp until the connection closes.
func (b *Baresip) read() {
	defer close(b.readDone)
	r := bufio.NewReader(b.conn)
	for {
		msg, err := readNetstring(r)
		if err != nil {
			return
		}
		var head struct {
			Event    bool `json:"event"`
			Response bool `json:"response"`
		}
		if json.Unmarshal(msg, &head) != nil {
			continue
		}
		b.mu.Lock()
		switch {
		case head.Event:
			var ev BaresipEvent
			if json.Unmarshal(msg, &ev) == nil {
				b.events = append(b.events, ev)
			}
		case head.Response:
			var r ctrlResponse
			if json.Unmarshal(msg, &r) == nil {
				b.resp[r.Token] = r
			}
		}
		close(b.changed)
		b.changed = make(chan struct{})
		b.mu.Unlock()
	}
}

// readNetstring reads one "<len>:<data>," from r.
func readNetstring(r *bufio.Reader) ([]byte, error) {
	head, err := r.ReadString(':')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(head[:len(head)-1])
	if err != nil || n < 0 || n > 1<<20 {
		return nil, fmt.Errorf("netstring: bad length %q", head)
	}
	buf := make([]byte, n+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	if buf[n] != ',' {
		return nil, errors.New("netstring: missing ','")
	}
	return buf[:n], nil
}

// Command sends a ctrl_tcp command (e.g. "sndcode", "#") and waits up to
// timeout for its response. It returns the response's data; an error if
// baresip says the command failed or does not answer in time.
func (b *Baresip) Command(command, params string, timeout time.Duration) (string, error) {
	b.mu.Lock()
	b.token++
	token := "peertest-" + strconv.Itoa(b.token)
	b.mu.Unlock()
	msg, err := json.Marshal(map[string]string{"command": command, "params": params, "token": token})
	if err != nil {
		return "", err
	}
	if _, err := fmt.Fprintf(b.conn, "%d:%s,", len(msg), msg); err != nil {
		return "", fmt.Errorf("baresip %s: %w", command, err)
	}
	var r ctrlResponse
	err = b.wait(timeout, func() bool {
		var ok bool
		r, ok = b.resp[token]
		delete(b.resp, token)
		return ok
	})
	if err != nil {
		return "", fmt.Errorf("baresip %s: %w", command, err)
	}
	if !r.OK {
		return r.Data, fmt.Errorf("baresip %s %q failed: %s", command, params, r.Data)
	}
	return r.Data, nil
}

// wait calls cond under b.mu each time something arrives from ctrl_tcp,
// until it returns true, baresip's connection ends, or timeout passes.
func (b *Baresip) wait(timeout time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		b.mu.Lock()
		done := cond()
		ch := b.changed
		b.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-b.readDone:
			return errors.New("baresip's ctrl_tcp connection closed")
		case <-ctx.Done():
			return fmt.Errorf("no answer within %s", timeout)
		}
	}
}

// WaitEvent waits up to timeout for an event of type typ (e.g.
// "CALL_CLOSED") that arrived after the first skip events of that type,
// and returns it.
func (b *Baresip) WaitEvent(typ string, skip int, timeout time.Duration) (BaresipEvent, error) {
	var found BaresipEvent
	err := b.wait(timeout, func() bool {
		n := 0
		for _, ev := range b.events {
			if ev.Type != typ {
				continue
			}
			if n == skip {
				found = ev
				return true
			}
			n++
		}
		return false
	})
	if err != nil {
		return found, fmt.Errorf("baresip event %s: %w", typ, err)
	}
	return found, nil
}

// WaitRegistered waits up to timeout until the registrar accepted the
// phone's REGISTER. It asks baresip (reginfo) as well as watching events,
// since a registration can finish before ctrl_tcp is connected.
func (b *Baresip) WaitRegistered(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := b.WaitEvent("REGISTER_OK", 0, 200*time.Millisecond); err == nil {
			return nil
		}
		for _, ev := range b.Events() {
			if ev.Type == "REGISTER_FAIL" {
				return fmt.Errorf("baresip registration failed: %s", ev.Param)
			}
		}
		if info, err := b.Command("reginfo", "", time.Second); err == nil && strings.Contains(info, "OK") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("baresip not registered within %s", timeout)
		}
	}
}

// WaitCall waits up to timeout for a call to be established (answered) and
// returns its event.
func (b *Baresip) WaitCall(timeout time.Duration) (BaresipEvent, error) {
	return b.WaitEvent("CALL_ESTABLISHED", 0, timeout)
}

// WaitClosed waits up to timeout for the first call to end and returns its
// event (Param holds the reason).
func (b *Baresip) WaitClosed(timeout time.Duration) (BaresipEvent, error) {
	return b.WaitEvent("CALL_CLOSED", 0, timeout)
}

// Press sends keys as DTMF on the current call (RFC 4733 telephone-events,
// via ctrl_tcp "sndcode"), one key at a time with a short gap so each is
// its own event.
func (b *Baresip) Press(keys string) error {
	for i, k := range keys {
		if i > 0 {
			time.Sleep(300 * time.Millisecond)
		}
		if _, err := b.Command("sndcode", string(k), 5*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// Recordings returns the WAV files sndfile wrote so far, sorted by name.
// sndfile writes two per call: "...-dec.wav" (what the phone heard) and
// "...-enc.wav" (what it sent).
func (b *Baresip) Recordings() ([]string, error) {
	files, err := filepath.Glob(filepath.Join(b.RecordDir, "*.wav"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	return files, nil
}

// Heard returns the recordings of what the phone received ("-dec.wav").
func (b *Baresip) Heard() ([]string, error) {
	all, err := b.Recordings()
	var heard []string
	for _, f := range all {
		if strings.HasSuffix(f, "-dec.wav") {
			heard = append(heard, f)
		}
	}
	return heard, err
}

// findBaresipModules returns the directory holding baresip's g711.so.
func findBaresipModules(t testing.TB) string {
	t.Helper()
	candidates, _ := filepath.Glob("/usr/lib/*/baresip/modules")
	candidates = append([]string{"/usr/lib/baresip/modules"}, candidates...)
	candidates = append(candidates, "/usr/local/lib/baresip/modules")
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c, "g711.so")); err == nil {
			return c
		}
	}
	t.Fatalf("peertest: baresip modules (g711.so) not found in %v: install the Debian package \"baresip\"", candidates)
	return ""
}
