package peertest

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"
)

// KamailioOptions configures StartKamailio.
type KamailioOptions struct {
	// Users maps digest user names to passwords, for REGISTER (phones) and
	// INVITE (the gateway) alike. Names and passwords are limited to
	// letters, digits and "+-_.!~*" so they need no quoting in the config.
	Users map[string]string
	// Realm is the digest realm of both challenges; "verigate.test" if empty.
	Realm string
	// ForbidWrongPassword answers an INVITE or REGISTER whose credentials
	// carry a wrong password with 403, as FreeSWITCH does, instead of
	// challenging it again, as Asterisk and kamailio's sample config do.
	ForbidWrongPassword bool
	// ModulePath overrides where kamailio's modules are looked for.
	ModulePath string
	// Debug is kamailio's log level (debug=); 2 (info) if zero.
	Debug int
	// Port is the port to listen on (UDP and TCP); a free one if zero.
	// Tests that need kamailio to appear later at a known address set it.
	Port int
	// TLS, when set, adds a TLS listener (TLSAddr) presenting TLS.Server.
	// It needs kamailio's tls module (Debian package kamailio-tls-modules);
	// StartKamailio fails, naming the package, when it is missing.
	TLS *Certs
}

// Kamailio is a running kamailio acting as registrar and proxy.
type Kamailio struct {
	// Addr is "127.0.0.1:<port>", where it listens on UDP and TCP.
	Addr string
	// Port is Addr's port.
	Port int
	// Realm is the digest realm of its challenges.
	Realm string
	// TLSAddr is "127.0.0.1:<port>" of the TLS listener; empty without
	// KamailioOptions.TLS.
	TLSAddr string
	// Config is the path of the kamailio.cfg it runs.
	Config string

	proc *process
}

// Log returns what kamailio has logged so far (one line per request and
// reply it handled, plus its own messages).
func (k *Kamailio) Log() string { return k.proc.log.String() }

// CountLog returns how many of kamailio's log lines match re.
func (k *Kamailio) CountLog(re *regexp.Regexp) int {
	n := 0
	for _, line := range strings.Split(k.Log(), "\n") {
		if re.MatchString(line) {
			n++
		}
	}
	return n
}

// WaitCount waits up to d until at least n log lines match re (kamailio's
// output reaches the test through a pipe, a moment after the packets) and
// returns how many do.
func (k *Kamailio) WaitCount(re *regexp.Regexp, n int, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		got := k.CountLog(re)
		if got >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitLog waits up to d for a log line matching re and reports whether one came.
func (k *Kamailio) WaitLog(re *regexp.Regexp, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if re.MatchString(k.Log()) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var safeCredential = regexp.MustCompile(`^[A-Za-z0-9+\-_.!~*]+$`)

// StartKamailio writes a kamailio.cfg into a temporary directory and runs
// kamailio in the foreground on a free loopback port (UDP and TCP) as:
//   - a registrar (usrloc in memory, db_mode 0) that demands www digest
//     authentication (401, pv_www_authenticate) for REGISTER, the auth user
//     having to match the To user, and grants lifetimes from 1 s to 1 h;
//   - a proxy that demands proxy digest authentication (407,
//     pv_proxy_authenticate) for every INVITE, then relays it with
//     record-route to the contact registered for the Request-URI's user
//     (404 when none is registered);
//   - in-dialog requests (ACK, BYE, re-INVITE) follow the route set, and
//     CANCEL follows its INVITE transaction; a Request-URI that is a GRUU
//     this registrar handed out (;gr, linphone's Contact) is looked up in
//     the location table; OPTIONS to the proxy itself
//     is answered 200 (that is how StartKamailio knows it is up).
//
// Passwords live in an htable filled at start-up; no database is used.
// kamailio is killed on cleanup and its log printed if the test failed.
func StartKamailio(t testing.TB, opts KamailioOptions) *Kamailio {
	t.Helper()
	bin := RequireBinary(t, "kamailio", "kamailio")
	mpath := opts.ModulePath
	if mpath == "" {
		mpath = findKamailioModules(t)
	}
	realm := opts.Realm
	if realm == "" {
		realm = "verigate.test"
	}
	if !safeCredential.MatchString(realm) {
		t.Fatalf("peertest: kamailio realm %q has characters the config cannot hold unquoted", realm)
	}
	debug := opts.Debug
	if debug == 0 {
		debug = 2
	}
	names := make([]string, 0, len(opts.Users))
	for u, p := range opts.Users {
		if !safeCredential.MatchString(u) || !safeCredential.MatchString(p) {
			t.Fatalf("peertest: kamailio user %q or its password has characters outside [A-Za-z0-9+-_.!~*]", u)
		}
		names = append(names, u)
	}
	sort.Strings(names)
	dir := t.TempDir()
	port := opts.Port
	if port == 0 {
		port = FreePort(t)
	}
	var users []struct{ Name, Password string }
	for _, u := range names {
		users = append(users, struct{ Name, Password string }{u, opts.Users[u]})
	}
	tlsPort, tlsConfig := 0, ""
	if opts.TLS != nil {
		if _, err := os.Stat(filepath.Join(mpath, "tls.so")); err != nil {
			t.Fatalf("peertest: kamailio's tls module is missing (%v): install the Debian package \"kamailio-tls-modules\"", err)
		}
		tlsPort = FreePort(t)
		tlsConfig = writeFile(t, dir, "tls.cfg", []byte(fmt.Sprintf(kamailioTLSConfig, opts.TLS.KeyFile, opts.TLS.CertFile)))
	}
	var cfg bytes.Buffer
	err := kamailioTemplate.Execute(&cfg, map[string]any{
		"TLSPort":    tlsPort,
		"TLSConfig":  tlsConfig,
		"Port":       port,
		"Addr":       Loopback,
		"ModulePath": mpath,
		"Realm":      realm,
		"Users":      users,
		"Forbid":     opts.ForbidWrongPassword,
		"Debug":      debug,
	})
	if err != nil {
		t.Fatalf("peertest: kamailio config: %v", err)
	}
	cfgPath := writeFile(t, dir, "kamailio.cfg", cfg.Bytes())
	runDir := filepath.Join(dir, "run")
	if err := os.Mkdir(runDir, 0o700); err != nil {
		t.Fatalf("peertest: %v", err)
	}
	k := &Kamailio{
		Addr:   net.JoinHostPort(Loopback, strconv.Itoa(port)),
		Port:   port,
		Realm:  realm,
		Config: cfgPath,
	}
	// -DD: stay in the foreground (children are still forked); -E: log to
	// stderr; small memory pools, as several run at once on small machines.
	k.proc = startProcess(t, "kamailio", dir, bin,
		"-f", cfgPath, "-DD", "-E", "-Y", runDir, "-P", filepath.Join(runDir, "kamailio.pid"),
		"-m", "32", "-M", "4")
	if err := k.proc.waitUntil(15*time.Second, func() error { return sipOptionsProbe(k.Addr) }); err != nil {
		t.Fatalf("peertest: kamailio at %s: %v", k.Addr, err)
	}
	if err := k.proc.waitUntil(5*time.Second, func() error { return tcpProbe(k.Addr) }); err != nil {
		t.Fatalf("peertest: kamailio tcp at %s: %v", k.Addr, err)
	}
	if opts.TLS != nil {
		k.TLSAddr = net.JoinHostPort(Loopback, strconv.Itoa(tlsPort))
		if err := k.proc.waitUntil(5*time.Second, func() error { return tlsProbe(k.TLSAddr, opts.TLS) }); err != nil {
			t.Fatalf("peertest: kamailio tls at %s: %v", k.TLSAddr, err)
		}
	}
	return k
}

// findKamailioModules returns the directory holding kamailio's tm.so.
func findKamailioModules(t testing.TB) string {
	t.Helper()
	candidates, _ := filepath.Glob("/usr/lib/*/kamailio/modules")
	candidates = append(candidates, "/usr/lib/kamailio/modules", "/usr/lib64/kamailio/modules",
		"/usr/local/lib/kamailio/modules", "/usr/local/lib64/kamailio/modules")
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c, "tm.so")); err == nil {
			return c
		}
	}
	t.Fatalf("peertest: kamailio modules (tm.so) not found in %v: install the Debian package \"kamailio\"", candidates)
	return ""
}

// sipOptionsProbe sends one OPTIONS over UDP to addr and waits briefly for
// any SIP response.
func sipOptionsProbe(addr string) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	local := c.LocalAddr().String()
	host, port, _ := net.SplitHostPort(addr)
	branch := fmt.Sprintf("z9hG4bK-peertest-%d", time.Now().UnixNano())
	msg := "OPTIONS sip:" + host + ":" + port + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=" + branch + ";rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:probe@" + host + ">;tag=" + branch[8:] + "\r\n" +
		"To: <sip:" + host + ":" + port + ">\r\n" +
		"Call-ID: " + branch + "@peertest\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Content-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return fmt.Errorf("%w: %v", errNotReady, err)
	}
	if !strings.HasPrefix(string(buf[:n]), "SIP/2.0 ") {
		return fmt.Errorf("%w: not a SIP response", errNotReady)
	}
	return nil
}

// tlsProbe completes a TLS handshake with addr, trusting c's CA only.
func tlsProbe(addr string, c *Certs) error {
	d := &net.Dialer{Timeout: 500 * time.Millisecond}
	conn, err := tls.DialWithDialer(d, "tcp", addr, c.ClientTLS(Loopback))
	if err != nil {
		return err
	}
	return conn.Close()
}

// kamailioTLSConfig is tls.cfg: the server presents the test certificate;
// nobody is asked for a client certificate.
const kamailioTLSConfig = `[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = %s
certificate = %s

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
`

func tcpProbe(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err != nil {
		return err
	}
	return c.Close()
}

var kamailioTemplate = template.Must(template.New("kamailio.cfg").Parse(`#!KAMAILIO
# Written by peertest: a registrar and proxy demanding digest auth, no database.
debug={{.Debug}}
log_stderror=yes
log_prefix="{{"{"}}$mt $rm $ci{{"}"}} "
memdbg=5
memlog=5
children=2
tcp_children=2
auto_aliases=no
dns=no
rev_dns=no
use_dns_cache=no
listen=udp:{{.Addr}}:{{.Port}}
listen=tcp:{{.Addr}}:{{.Port}}
{{- if .TLSPort}}
enable_tls=yes
listen=tls:{{.Addr}}:{{.TLSPort}}
alias="{{.Addr}}:{{.TLSPort}}"
{{- end}}
alias="{{.Addr}}:{{.Port}}"
alias="{{.Realm}}"

mpath="{{.ModulePath}}"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "htable.so"
{{- if .TLSPort}}
loadmodule "tls.so"
modparam("tls", "config", "{{.TLSConfig}}")
{{- end}}

modparam("tm", "fr_timer", 5000)
modparam("tm", "fr_inv_timer", 60000)
modparam("rr", "enable_full_lr", 1)
modparam("rr", "append_fromtag", 1)
modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", 3600)
# Tests register for seconds, not the usual minutes.
modparam("registrar", "min_expires", 1)
modparam("htable", "htable", "users=>size=4;")

event_route[htable:mod-init] {
{{- range .Users}}
	$sht(users=>{{.Name}}) = "{{.Password}}";
{{- end}}
	xlog("L_INFO", "{{len .Users}} users loaded\n");
}

request_route {
	xlog("L_INFO", "request $rm $ru from $si:$sp ($pr) From=$fu Via=$hdr(Via)\n");
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}
	if (!sanity_check("17895", "7")) {
		xlog("L_WARN", "malformed $rm from $si:$sp\n");
		exit;
	}
	if (is_method("OPTIONS") && uri==myself && $rU==$null) {
		sl_send_reply("200", "OK");
		exit;
	}
	if (has_totag()) {
		route(WITHINDLG);
		exit;
	}
	if (is_method("CANCEL")) {
		if (t_check_trans()) {
			route(RELAY);
		}
		exit;
	}
	if (!is_method("ACK")) {
		if (t_precheck_trans()) {
			t_check_trans();
			exit;
		}
		t_check_trans();
	}
	if (is_method("REGISTER")) {
		route(REGISTRAR);
		exit;
	}
	if (is_method("INVITE")) {
		route(AUTH);
		record_route();
	}
	if (!lookup("location")) {
		xlog("L_INFO", "no contact for $rU\n");
		sl_send_reply("404", "Not Found");
		exit;
	}
	route(RELAY);
}

route[RELAY] {
	if (is_method("INVITE")) {
		t_on_reply("REPLY");
	}
	if (!t_relay()) {
		sl_reply_error();
	}
	exit;
}

route[WITHINDLG] {
	if (loose_route()) {
		route(GRUU);
		route(RELAY);
		exit;
	}
	if ($ru =~ ";gr(=|;|>|$)") {
		route(GRUU);
		route(RELAY);
		exit;
	}
	if (is_method("ACK")) {
		if (t_check_trans()) {
			route(RELAY);
		}
		exit;
	}
	sl_send_reply("404", "Not here");
	exit;
}

# A phone that registered with +sip.instance (linphone) gets a GRUU from
# the registrar and puts it into its Contact: requests within its dialogs
# then name this proxy with ;gr and go to the contact registered for it.
# The GRUU names the AOR's host without a port, so uri==myself (which
# compares the port, 5060 when absent) does not recognise it.
route[GRUU] {
	if ($ru =~ ";gr(=|;|>|$)" && (uri==myself || $rd == "{{.Addr}}" || $rd == "{{.Realm}}")) {
		if (!lookup("location")) {
			xlog("L_INFO", "no contact for gruu $ru\n");
			sl_send_reply("404", "Not Found");
			exit;
		}
		xlog("L_INFO", "gruu resolved to $ru\n");
	}
}

route[AUTH] {
	if (!is_present_hf("Proxy-Authorization")) {
		proxy_challenge("{{.Realm}}", "0");
		exit;
	}
	if (!pv_proxy_authenticate("{{.Realm}}", "$sht(users=>$au)", "0")) {
		$var(rc) = $rc;
		xlog("L_INFO", "proxy auth of $au failed: $var(rc)\n");
{{- if .Forbid}}
		if ($var(rc) == -2 || $var(rc) == -3) {
			sl_send_reply("403", "Wrong password");
			exit;
		}
{{- end}}
		proxy_challenge("{{.Realm}}", "0");
		exit;
	}
	xlog("L_INFO", "proxy auth of $au ok\n");
	consume_credentials();
}

route[REGISTRAR] {
	if (!is_present_hf("Authorization")) {
		www_challenge("{{.Realm}}", "0");
		exit;
	}
	if (!pv_www_authenticate("{{.Realm}}", "$sht(users=>$au)", "0")) {
		$var(rc) = $rc;
		xlog("L_INFO", "www auth of $au failed: $var(rc)\n");
{{- if .Forbid}}
		if ($var(rc) == -2 || $var(rc) == -3) {
			sl_send_reply("403", "Wrong password");
			exit;
		}
{{- end}}
		www_challenge("{{.Realm}}", "0");
		exit;
	}
	if ($au != $tU) {
		sl_send_reply("403", "Auth user does not match the AoR");
		exit;
	}
	consume_credentials();
	if (!save("location")) {
		sl_reply_error();
	}
	xlog("L_INFO", "registered $tU at $ct expires $hdr(Expires)\n");
	exit;
}

onreply_route[REPLY] {
	xlog("L_INFO", "reply $rs $rr for $rm from $si:$sp\n");
}
`))
