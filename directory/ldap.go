package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/verigate/verigate/internal/loopback"

	"github.com/go-ldap/ldap/v3"

	"github.com/verigate/verigate/verify"
)

// LDAPConfig configures the LDAP source: Active Directory or OpenLDAP,
// searched by a service account that may read the phone attributes.
type LDAPConfig struct {
	// URL is ldaps://host:636 or ldap://host:389. Plain ldap:// needs
	// StartTLS unless the host is a loopback address: the bind password
	// must not cross a network in clear.
	URL      string `yaml:"url"`
	StartTLS bool   `yaml:"start_tls"`
	// CAFile is a PEM file of the CAs that may sign the server's
	// certificate; the system's pool when empty.
	CAFile string `yaml:"ca_file"`
	// ServerName is the name checked in the certificate; URL's host when empty.
	ServerName string `yaml:"server_name"`
	// BindDN and BindPassword are the service account's (in AD also
	// "svc-verigate@contoso.com"). Both empty binds anonymously.
	BindDN       string `yaml:"bind_dn"`
	BindPassword string `yaml:"bind_password" secret:"true"`
	// BaseDN is where people are searched, with its whole subtree.
	BaseDN string `yaml:"base_dn"`
	// Filter narrows the search, ANDed with the key's equality
	// filter; "(objectClass=person)" when empty.
	Filter string `yaml:"filter"`
	// The attributes looked up by: userPrincipalName and sAMAccountName
	// when empty. OIDAttribute (none by default) holds the Entra object id
	// where a directory keeps it (a synchronised extension attribute).
	UPNAttribute      string `yaml:"upn_attribute"`
	UsernameAttribute string `yaml:"username_attribute"`
	OIDAttribute      string `yaml:"oid_attribute"`
	// IDAttribute names the person in User.ID: UPNAttribute when empty,
	// the entry's DN when the entry lacks it.
	IDAttribute          string `yaml:"id_attribute"`
	DisplayNameAttribute string `yaml:"display_name_attribute"` // displayName when empty
	// The attributes holding numbers: [mobile] and [telephoneNumber] when empty.
	MobileAttributes []string `yaml:"mobile_attributes"`
	OfficeAttributes []string `yaml:"office_attributes"`
	// Timeout bounds connecting, binding and each search (5s when 0).
	Timeout time.Duration `yaml:"timeout"`
	// MaxConns bounds the connections open at once (4 when 0): a burst
	// of sign-ins queues for them instead of flooding a domain controller.
	MaxConns int `yaml:"max_conns"`
	// IdleTimeout closes a connection unused that long (1m when 0),
	// before the server's own idle limit (AD: 15 min) cuts it.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// Enabled reports whether the source is configured.
func (c LDAPConfig) Enabled() bool { return c.URL != "" }

// WithDefaults returns c with every unset setting at its default.
func (c LDAPConfig) WithDefaults() LDAPConfig {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Filter, "(objectClass=person)")
	def(&c.UPNAttribute, "userPrincipalName")
	def(&c.UsernameAttribute, "sAMAccountName")
	def(&c.IDAttribute, c.UPNAttribute)
	def(&c.DisplayNameAttribute, "displayName")
	if len(c.MobileAttributes) == 0 {
		c.MobileAttributes = []string{"mobile"}
	}
	if len(c.OfficeAttributes) == 0 {
		c.OfficeAttributes = []string{"telephoneNumber"}
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 4
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = time.Minute
	}
	return c
}

// Validate checks the settings, naming the key at fault.
func (c LDAPConfig) Validate(prefix string) error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", prefix, key, fmt.Sprintf(format, args...)))
	}
	u, err := url.Parse(c.URL)
	switch {
	case err != nil || u.Host == "":
		bad("url", "must be ldaps://host[:port] or ldap://host[:port], not %q", c.URL)
	case u.Scheme == "ldaps" && c.StartTLS:
		bad("start_tls", "is for ldap://; ldaps:// is TLS from the start")
	case u.Scheme == "ldap" && !c.StartTLS && !loopback.Host(u.Hostname()):
		bad("start_tls", "must be true for ldap:// to %s: the bind password must not cross the network in clear (or use ldaps://)", u.Hostname())
	case u.Scheme != "ldap" && u.Scheme != "ldaps":
		bad("url", "must start with ldaps:// or ldap://, not %q", u.Scheme+"://")
	}
	if c.BaseDN == "" {
		bad("base_dn", "must be set (e.g. DC=contoso,DC=com)")
	} else if _, err := ldap.ParseDN(c.BaseDN); err != nil {
		bad("base_dn", "%v", err)
	}
	if (c.BindDN == "") != (c.BindPassword == "") {
		bad("bind_password", "bind_dn and bind_password go together (both empty binds anonymously)")
	}
	if c.Filter != "" {
		if _, err := ldap.CompileFilter(c.Filter); err != nil {
			bad("filter", "%v", err)
		}
	}
	if c.CAFile != "" {
		if _, err := loadCAs(c.CAFile); err != nil {
			bad("ca_file", "%v", err)
		}
	}
	if c.Timeout < 0 || c.Timeout > time.Minute {
		bad("timeout", "must be between 0 (5s) and 1m, not %s", c.Timeout)
	}
	if c.MaxConns < 0 || c.MaxConns > 100 {
		bad("max_conns", "must be between 0 (4) and 100, not %d", c.MaxConns)
	}
	return errors.Join(errs...)
}

func loadCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// LDAP is the LDAP source. It keeps up to MaxConns bound connections and
// reuses idle ones; Close ends them. It is safe for concurrent use.
type LDAP struct {
	cfg    LDAPConfig
	url    *url.URL
	tls    *tls.Config
	norm   normaliser
	attrs  []string
	tokens chan struct{} // one per connection that may be open

	mu     sync.Mutex
	idle   []idleConn
	closed bool
}

type idleConn struct {
	c     *ldap.Conn
	since time.Time
}

// NewLDAP checks cfg and prepares the source; it connects on the first
// lookup, so a directory down at start does not stop the gateway.
func NewLDAP(cfg LDAPConfig, parser verify.NumberParser, log *slog.Logger) (*LDAP, error) {
	if err := cfg.Validate("ldap"); err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	if parser == nil {
		return nil, errors.New("directory: ldap: no number parser")
	}
	cfg = cfg.WithDefaults()
	u, _ := url.Parse(cfg.URL)
	tc := &tls.Config{ServerName: cfg.ServerName, MinVersion: tls.VersionTLS12}
	if tc.ServerName == "" {
		tc.ServerName = u.Hostname()
	}
	if cfg.CAFile != "" {
		pool, err := loadCAs(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("directory: ldap.ca_file: %w", err)
		}
		tc.RootCAs = pool
	}
	l := &LDAP{cfg: cfg, url: u, tls: tc, tokens: make(chan struct{}, cfg.MaxConns),
		norm: normaliser{parser: parser, log: discardIfNil(log), source: "ldap"}}
	l.attrs = append([]string{cfg.IDAttribute, cfg.DisplayNameAttribute}, cfg.MobileAttributes...)
	l.attrs = append(l.attrs, cfg.OfficeAttributes...)
	return l, nil
}

// maxKeyLength bounds a key sent to the server.
const maxKeyLength = 256

// Lookup implements Directory: one subtree search per key that q gives
// and the configuration can look up, each asking for at most two entries
// (two is ambiguous: an error, never a guess). An oid, when q gives one
// and OIDAttribute is set, is the only key searched: it names the person
// for good, while a UPN or user name can pass to someone else, whose
// phone a fallback would then call.
func (l *LDAP) Lookup(ctx context.Context, q Query) (User, error) {
	keys := []struct{ attr, value string }{
		{l.cfg.OIDAttribute, q.OID}, {l.cfg.UPNAttribute, q.UPN}, {l.cfg.UsernameAttribute, q.Username},
	}
	if l.cfg.OIDAttribute != "" && q.OID != "" {
		keys = keys[:1]
	}
	asked := false
	for _, k := range keys {
		if k.attr == "" || k.value == "" {
			continue
		}
		if len(k.value) > maxKeyLength {
			return User{}, fmt.Errorf("ldap: %s longer than %d bytes: %w", k.attr, maxKeyLength, ErrNotFound)
		}
		asked = true
		u, err := l.search(ctx, k.attr, k.value)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		return u, err
	}
	if !asked {
		return User{}, fmt.Errorf("ldap: none of the query's keys is looked up by this configuration: %w", ErrNotFound)
	}
	return User{}, fmt.Errorf("ldap: %w", ErrNotFound)
}

func (l *LDAP) search(ctx context.Context, attr, value string) (User, error) {
	// EscapeFilter turns *, (, ), \ and NUL into \xx: a UPN such as
	// "x*)(uid=*" matches only itself.
	filter := fmt.Sprintf("(&%s(%s=%s))", l.cfg.Filter, attr, ldap.EscapeFilter(value))
	req := ldap.NewSearchRequest(l.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, int(l.cfg.Timeout/time.Second)+1, false, filter, l.attrs, nil)
	req.EnforceSizeLimit = true
	var res *ldap.SearchResult
	// A reused connection may have been cut by the server while idle:
	// one more try on a fresh one.
	for attempt := 0; ; attempt++ {
		c, reused, err := l.get(ctx)
		if err != nil {
			return User{}, err
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		res, err = c.Search(req)
		cancelled := !stop()
		if err == nil || ldap.IsErrorAnyOf(err, ldap.LDAPResultSizeLimitExceeded) {
			l.put(c, !cancelled)
			if err != nil || len(res.Entries) > 1 {
				return User{}, fmt.Errorf("ldap: more than one entry has %s=%q: fix the directory or ldap.filter", attr, value)
			}
			break
		}
		l.put(c, false)
		if cancelled {
			return User{}, fmt.Errorf("ldap: search: %w", ctx.Err())
		}
		if reused && attempt == 0 && isNetworkError(err) {
			continue
		}
		return User{}, l.classify("search", err)
	}
	if len(res.Entries) == 0 {
		return User{}, ErrNotFound
	}
	e := res.Entries[0]
	u := User{ID: e.GetEqualFoldAttributeValue(l.cfg.IDAttribute), DisplayName: e.GetEqualFoldAttributeValue(l.cfg.DisplayNameAttribute), Source: "ldap"}
	if u.ID == "" {
		u.ID = e.DN
	}
	for _, a := range l.cfg.MobileAttributes {
		u.Numbers = l.norm.add(u.Numbers, u.ID, KindMobile, e.GetEqualFoldAttributeValues(a)...)
	}
	for _, a := range l.cfg.OfficeAttributes {
		u.Numbers = l.norm.add(u.Numbers, u.ID, KindOffice, e.GetEqualFoldAttributeValues(a)...)
	}
	l.norm.log.Debug("directory: found", "source", "ldap", "user", u.ID, "numbers", maskedNumbers(u.Numbers))
	return u, nil
}

// get returns a bound connection: an idle one, or a new one once fewer
// than MaxConns are open.
func (l *LDAP) get(ctx context.Context) (*ldap.Conn, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("directory: ldap: %w", err)
	}
	select {
	case l.tokens <- struct{}{}:
	case <-ctx.Done():
		return nil, false, &UnavailableError{Source: "ldap", Err: fmt.Errorf("waiting for a connection: %w", ctx.Err())}
	}
	l.mu.Lock()
	for len(l.idle) > 0 {
		ic := l.idle[len(l.idle)-1]
		l.idle = l.idle[:len(l.idle)-1]
		if time.Since(ic.since) < l.cfg.IdleTimeout && !ic.c.IsClosing() {
			l.mu.Unlock()
			return ic.c, true, nil
		}
		ic.c.Close()
	}
	l.mu.Unlock()
	c, err := l.dial(ctx)
	if err != nil {
		<-l.tokens
		return nil, false, err
	}
	return c, false, nil
}

// put returns c to the idle list (keep) or closes it, and frees its token.
func (l *LDAP) put(c *ldap.Conn, keep bool) {
	l.mu.Lock()
	if keep && !l.closed {
		l.idle = append(l.idle, idleConn{c: c, since: time.Now()})
		c = nil
	}
	l.mu.Unlock()
	if c != nil {
		c.Close()
	}
	<-l.tokens
}

// DialLDAP connects to the server of u (ldap:// or ldaps://, the port
// 389 or 636 when u names none), with TLS from the start for ldaps://, and
// starts go-ldap's connection with timeout on each operation. On failure,
// stage says which step failed: "connect" (the TCP dial: worth retrying)
// or "tls" (the handshake: a certificate or a TLS setting). StartTLS,
// when wanted, is the caller's next step. The directory's LDAP source and
// RADIUS's LDAP bind both connect through it.
func DialLDAP(ctx context.Context, u *url.URL, tlsCfg *tls.Config, timeout time.Duration) (_ *ldap.Conn, stage string, _ error) {
	host := u.Host
	if u.Port() == "" {
		port := "389"
		if u.Scheme == "ldaps" {
			port = "636"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, "connect", err
	}
	if u.Scheme == "ldaps" {
		tc := tls.Client(nc, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, "tls", err
		}
		nc = tc
	}
	c := ldap.NewConn(nc, u.Scheme == "ldaps")
	c.Start()
	c.SetTimeout(timeout)
	return c, "", nil
}

// dial connects (TLS from the start for ldaps://, else StartTLS when
// configured) and binds as the service account, all within Timeout.
func (l *LDAP) dial(ctx context.Context) (*ldap.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	c, stage, err := DialLDAP(ctx, l.url, l.tls, l.cfg.Timeout)
	switch {
	case err != nil && stage == "connect":
		return nil, &UnavailableError{Source: "ldap", Err: fmt.Errorf("connect: %w", err)}
	case err != nil:
		return nil, fmt.Errorf("directory: ldap: %s: %w", stage, err)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if l.cfg.StartTLS {
		if err := c.StartTLS(l.tls); err != nil {
			c.Close()
			// go-ldap flattens the handshake's error into text: a
			// certificate the CA did not sign must not look like an
			// outage.
			if strings.Contains(err.Error(), "x509:") || strings.Contains(err.Error(), "certificate") {
				return nil, fmt.Errorf("directory: ldap: starttls: %w", err)
			}
			return nil, l.classify("starttls", err)
		}
	}
	if l.cfg.BindDN != "" {
		err = c.Bind(l.cfg.BindDN, l.cfg.BindPassword)
	} else {
		err = c.UnauthenticatedBind("")
	}
	if err != nil {
		c.Close()
		return nil, l.classify("bind as "+l.cfg.BindDN, err)
	}
	if ctx.Err() != nil {
		c.Close()
		return nil, &UnavailableError{Source: "ldap", Err: ctx.Err()}
	}
	return c, nil
}

// classify wraps err: network trouble and a busy or unavailable server
// may pass (UnavailableError); anything else (invalid credentials, a
// certificate the CA did not sign) needs the administrator.
func (l *LDAP) classify(op string, err error) error {
	if isNetworkError(err) || ldap.IsErrorAnyOf(err, ldap.LDAPResultBusy, ldap.LDAPResultUnavailable,
		ldap.LDAPResultTimeLimitExceeded, ldap.LDAPResultUnwillingToPerform) {
		return &UnavailableError{Source: "ldap", Err: fmt.Errorf("%s: %w", op, err)}
	}
	return fmt.Errorf("directory: ldap: %s: %w", op, err)
}

func isNetworkError(err error) bool {
	var ne net.Error
	var tlsErr *tls.CertificateVerificationError
	if errors.As(err, &tlsErr) {
		return false
	}
	return ldap.IsErrorAnyOf(err, ldap.ErrorNetwork) || errors.As(err, &ne)
}

// Close ends the idle connections; lookups after it still work, each on
// a connection of its own that is closed after use.
func (l *LDAP) Close() error {
	l.mu.Lock()
	idle := l.idle
	l.idle, l.closed = nil, true
	l.mu.Unlock()
	for _, ic := range idle {
		ic.c.Close()
	}
	return nil
}
