package directory_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/verigate/verigate/directory"
	"github.com/verigate/verigate/internal/peertest"
)

// ldapUsers is the directory the LDAP tests search. mallory's UPN is an
// injection attempt stored as it is; eve and eve2 share a UPN.
var ldapUsers = []peertest.LDAPUser{
	{UID: "alice", UPN: "alice@contoso.example", DisplayName: "Alice Example",
		Mobile: []string{"+49 (0)151 2345 6789"}, Telephone: []string{"030 1234567", "+49 30 1234567"}},
	{UID: "bob", UPN: "bob@contoso.example", Telephone: []string{"+49 30 7654321", "12"}},
	{UID: "carol", UPN: "carol@contoso.example"},
	{UID: "mallory", UPN: "x*)(uid=*", Mobile: []string{"+4915199999999"}},
	{UID: "eve", UPN: "eve@contoso.example", Mobile: []string{"+4915188888888"}},
	{UID: "eve2", UPN: "eve@contoso.example", Mobile: []string{"+4915177777777"}},
}

func startSlapd(t *testing.T, certs *peertest.Certs) *peertest.Slapd {
	t.Helper()
	return peertest.StartSlapd(t, peertest.SlapdOptions{Users: ldapUsers, TLS: certs})
}

func ldapConfig(s *peertest.Slapd) directory.LDAPConfig {
	return directory.LDAPConfig{URL: s.URL, BindDN: s.ServiceDN, BindPassword: s.ServicePassword, BaseDN: s.Suffix,
		UsernameAttribute: "uid"}
}

func newLDAP(t *testing.T, cfg directory.LDAPConfig, log *slog.Logger) *directory.LDAP {
	t.Helper()
	l, err := directory.NewLDAP(cfg, parser(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestLDAPLookup(t *testing.T) {
	s := startSlapd(t, nil)
	var logs bytes.Buffer
	l := newLDAP(t, ldapConfig(s), slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := context.Background()
	alice := directory.User{ID: "alice@contoso.example", DisplayName: "Alice Example", Source: "ldap", Numbers: []directory.Number{
		{E164: "+4915123456789", Kind: directory.KindMobile}, {E164: "+49301234567", Kind: directory.KindOffice}}}
	tests := []struct {
		name string
		q    directory.Query
		want directory.User
		err  error // nil: want; ErrNotFound; errAmbiguous: any other error
	}{
		{"upn", directory.Query{UPN: "alice@contoso.example"}, alice, nil},
		{"upn in capitals", directory.Query{UPN: "ALICE@CONTOSO.EXAMPLE"}, alice, nil},
		{"username", directory.Query{Username: "alice"}, alice, nil},
		{"unknown upn, known username", directory.Query{UPN: "alice@fabrikam.example", Username: "alice"}, alice, nil},
		{"bad number dropped", directory.Query{UPN: "bob@contoso.example"}, directory.User{ID: "bob@contoso.example", Source: "ldap",
			Numbers: []directory.Number{{E164: "+49307654321", Kind: directory.KindOffice}}}, nil},
		{"no numbers", directory.Query{Username: "carol"}, directory.User{ID: "carol@contoso.example", Source: "ldap"}, nil},
		{"missing user", directory.Query{UPN: "nobody@contoso.example"}, directory.User{}, directory.ErrNotFound},
		{"oid without oid_attribute", directory.Query{OID: aliceOID}, directory.User{}, directory.ErrNotFound},
		// The filter must not let a key match anyone but itself.
		{"injection in upn", directory.Query{UPN: "*)(uid=*"}, directory.User{}, directory.ErrNotFound},
		{"wildcard upn", directory.Query{UPN: "*"}, directory.User{}, directory.ErrNotFound},
		{"injection in username", directory.Query{Username: "alice)(|(uid=*"}, directory.User{}, directory.ErrNotFound},
		{"stored injection matches itself only", directory.Query{UPN: "x*)(uid=*"}, directory.User{ID: "x*)(uid=*", Source: "ldap",
			Numbers: []directory.Number{{E164: "+4915199999999", Kind: directory.KindMobile}}}, nil},
		{"NUL", directory.Query{UPN: "alice@contoso.example\x00"}, directory.User{}, directory.ErrNotFound},
		{"ambiguous", directory.Query{UPN: "eve@contoso.example"}, directory.User{}, errAmbiguous},
	}
	for _, tt := range tests {
		got, err := l.Lookup(ctx, tt.q)
		switch {
		case tt.err == errAmbiguous:
			if err == nil || errors.Is(err, directory.ErrNotFound) || !strings.Contains(err.Error(), "more than one") {
				t.Errorf("%s: %v, want an error naming the ambiguity", tt.name, err)
			}
		case !errors.Is(err, tt.err) || (tt.err == nil && err != nil) || !reflect.DeepEqual(got, tt.want):
			t.Errorf("%s: Lookup(%+q) = %+v, %v; want %+v, %v", tt.name, tt.q, got, err, tt.want, tt.err)
		}
	}
	// What reached slapd: the escaped filter.
	if !strings.Contains(s.Log(), `filter="(&(objectClass=person)(userPrincipalName=\2A\29\28uid=\2A))"`) {
		t.Errorf("slapd did not receive the escaped filter:\n%s", s.Log())
	}
	if strings.Contains(logs.String(), "+4915123456789") || !strings.Contains(logs.String(), "number dropped") {
		t.Errorf("log:\n%s", logs.String())
	}
}

var errAmbiguous = errors.New("ambiguous")

// TestLDAPLookupByOIDOnly: with oid_attribute set, a query's oid is the
// only key searched; a UPN or user name beside it is not tried when the
// oid matches nobody. (cn, unique here, stands in for the oid attribute.)
func TestLDAPLookupByOIDOnly(t *testing.T) {
	s := startSlapd(t, nil)
	cfg := ldapConfig(s)
	cfg.OIDAttribute = "cn"
	l := newLDAP(t, cfg, nil)
	ctx := context.Background()
	if u, err := l.Lookup(ctx, directory.Query{OID: "alice", UPN: "bob@contoso.example"}); err != nil || u.ID != "alice@contoso.example" {
		t.Errorf("by oid: %+v, %v; want alice", u, err)
	}
	for _, q := range []directory.Query{
		{OID: "nobody", UPN: "alice@contoso.example"},
		{OID: "nobody", Username: "alice"},
	} {
		if u, err := l.Lookup(ctx, q); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("Lookup(%+v) = %+v, %v; want ErrNotFound, not the UPN's or user name's owner", q, u, err)
		}
	}
}

func TestLDAPTLS(t *testing.T) {
	certs := peertest.NewCerts(t)
	s := startSlapd(t, certs)
	ctx := context.Background()
	q := directory.Query{UPN: "alice@contoso.example"}
	other := peertest.NewCerts(t) // a CA that did not sign slapd's certificate

	tests := []struct {
		name    string
		url     string
		start   bool
		ca      string
		wantErr bool
	}{
		{"starttls", s.URL, true, certs.CAFile, false},
		{"ldaps", s.LDAPSURL, false, certs.CAFile, false},
		{"starttls, unknown CA", s.URL, true, other.CAFile, true},
		{"ldaps, unknown CA", s.LDAPSURL, false, other.CAFile, true},
	}
	for _, tt := range tests {
		cfg := ldapConfig(s)
		cfg.URL, cfg.StartTLS, cfg.CAFile = tt.url, tt.start, tt.ca
		u, err := newLDAP(t, cfg, nil).Lookup(ctx, q)
		if tt.wantErr {
			if err == nil || errors.Is(err, directory.ErrNotFound) || errors.Is(err, directory.ErrUnavailable) {
				t.Errorf("%s: %v, want a certificate error that needs the administrator", tt.name, err)
			}
			continue
		}
		if err != nil || u.ID != "alice@contoso.example" {
			t.Errorf("%s: %+v, %v", tt.name, u, err)
		}
	}
	if !strings.Contains(s.Log(), "STARTTLS") || !strings.Contains(s.Log(), "TLS established") {
		t.Errorf("slapd saw no TLS:\n%s", s.Log())
	}
}

func TestLDAPBindFailures(t *testing.T) {
	s := startSlapd(t, nil)
	ctx := context.Background()
	q := directory.Query{UPN: "alice@contoso.example"}

	cfg := ldapConfig(s)
	cfg.BindPassword = "wrong-password"
	_, err := newLDAP(t, cfg, nil).Lookup(ctx, q)
	if err == nil || errors.Is(err, directory.ErrNotFound) || errors.Is(err, directory.ErrUnavailable) ||
		!strings.Contains(err.Error(), "Invalid Credentials") || strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("wrong bind password: %v", err)
	}

	// An account that may not see the people (here anonymous: slapd
	// answers No Such Object for the base) is an error for the
	// administrator, not a person who does not exist.
	cfg = ldapConfig(s)
	cfg.BindDN, cfg.BindPassword = "", ""
	if _, err := newLDAP(t, cfg, nil).Lookup(ctx, q); err == nil || errors.Is(err, directory.ErrNotFound) || !strings.Contains(err.Error(), "No Such Object") {
		t.Errorf("anonymous: %v, want No Such Object", err)
	}

	// Nobody listening: worth retrying later.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg = ldapConfig(s)
	cfg.URL = "ldap://127.0.0.1:" + strconv.Itoa(port)
	if _, err := newLDAP(t, cfg, nil).Lookup(ctx, q); !errors.Is(err, directory.ErrUnavailable) {
		t.Errorf("server down: %v, want ErrUnavailable", err)
	}
}

// TestLDAPReusesConnections binds once for many lookups, and comes back
// after the server drops its connection.
func TestLDAPReusesConnections(t *testing.T) {
	s := startSlapd(t, nil)
	l := newLDAP(t, ldapConfig(s), nil)
	ctx := context.Background()
	for range 5 {
		if _, err := l.Lookup(ctx, directory.Query{Username: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(s.Log(), `BIND dn="`+s.ServiceDN+`" method=128`); n != 2 { // 1 from StartSlapd's probe
		t.Errorf("%d binds for 5 lookups, want one (plus the harness's)", n-1)
	}
	ctxCancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.Lookup(ctxCancelled, directory.Query{Username: "alice"}); err == nil {
		t.Error("a cancelled context still looked up")
	}
	if _, err := l.Lookup(ctx, directory.Query{Username: "alice"}); err != nil {
		t.Errorf("after a cancelled lookup: %v", err)
	}
}

// TestLDAPConcurrent runs lookups at once on at most MaxConns connections.
func TestLDAPConcurrent(t *testing.T) {
	s := startSlapd(t, nil)
	cfg := ldapConfig(s)
	cfg.MaxConns = 2
	l := newLDAP(t, cfg, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			q := directory.Query{Username: []string{"alice", "bob", "nobody"}[i%3]}
			if _, err := l.Lookup(context.Background(), q); err != nil && !errors.Is(err, directory.ErrNotFound) {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := strings.Count(s.Log(), `BIND dn="`+s.ServiceDN+`" method=128`) - 1; n < 1 || n > 2 {
		t.Errorf("%d connections bound, want 1 or 2 (max_conns)", n)
	}
}

func TestLDAPConfigValidate(t *testing.T) {
	base := directory.LDAPConfig{URL: "ldaps://dc1.contoso.example", BaseDN: "DC=contoso,DC=example", BindDN: "svc", BindPassword: "pw"}
	tests := []struct {
		name string
		edit func(*directory.LDAPConfig)
		want string
	}{
		{"plain ldap to the network", func(c *directory.LDAPConfig) { c.URL = "ldap://dc1.contoso.example" }, "ldap.start_tls"},
		{"starttls on ldaps", func(c *directory.LDAPConfig) { c.StartTLS = true }, "ldap.start_tls"},
		{"scheme", func(c *directory.LDAPConfig) { c.URL = "http://dc1" }, "ldap.url"},
		{"base dn", func(c *directory.LDAPConfig) { c.BaseDN = "" }, "ldap.base_dn"},
		{"password without dn", func(c *directory.LDAPConfig) { c.BindDN = "" }, "ldap.bind_password"},
		{"filter", func(c *directory.LDAPConfig) { c.Filter = "(objectClass=person" }, "ldap.filter"},
		{"ca file", func(c *directory.LDAPConfig) { c.CAFile = "/nonexistent/ca.pem" }, "ldap.ca_file"},
		{"timeout", func(c *directory.LDAPConfig) { c.Timeout = -1 }, "ldap.timeout"},
	}
	for _, tt := range tests {
		c := base
		tt.edit(&c)
		if err := c.Validate("ldap"); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if err := base.Validate("ldap"); err != nil {
		t.Errorf("valid: %v", err)
	}
	loop := base
	loop.URL = "ldap://127.0.0.1:3389"
	if err := loop.Validate("ldap"); err != nil {
		t.Errorf("plain ldap to loopback: %v", err)
	}
}
