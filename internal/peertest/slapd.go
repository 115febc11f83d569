package peertest

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// LDAPUser is a person in the directory StartSlapd serves, an entry of
// object classes inetOrgPerson and user (the schema below) at
// uid=<UID>,ou=people,<suffix>.
type LDAPUser struct {
	UID         string // also the cn and, as in AD, sAMAccountName
	UPN         string // userPrincipalName; none when empty
	Password    string // userPassword (clear, for simple binds); none when empty
	DisplayName string
	Mobile      []string // mobile
	Telephone   []string // telephoneNumber
}

// SlapdOptions configures StartSlapd.
type SlapdOptions struct {
	// Suffix is the database's root; "dc=verigate,dc=test" if empty.
	Suffix string
	// Users are loaded below ou=people.
	Users []LDAPUser
	// ServicePassword is the password of the read-only service account
	// cn=verigate,ou=services,<suffix>; "service-secret" if empty.
	ServicePassword string
	// LDIF is added after the users, as it is (entries separated by an
	// empty line, DNs under Suffix).
	LDIF string
	// TLS, when set, makes slapd offer StartTLS on URL and listen for
	// ldaps:// on LDAPSURL, presenting TLS.Server.
	TLS *Certs
}

// Slapd is a running OpenLDAP server.
type Slapd struct {
	// URL is ldap://127.0.0.1:<port>; LDAPSURL ldaps://127.0.0.1:<port>
	// when SlapdOptions.TLS was set.
	URL, LDAPSURL string
	Suffix        string
	// PeopleDN is ou=people,<Suffix>, where the users are.
	PeopleDN string
	// AdminDN and AdminPassword are the database's rootdn, who may write.
	AdminDN, AdminPassword string
	// ServiceDN and ServicePassword are the read-only service account's.
	ServiceDN, ServicePassword string

	proc *process
}

// Log returns what slapd has logged so far (connections, binds and the
// filter of every search: slapd -d stats).
func (s *Slapd) Log() string { return s.proc.log.String() }

// UserDN returns the DN of the user with uid.
func (s *Slapd) UserDN(uid string) string { return "uid=" + ldap.EscapeDN(uid) + "," + s.PeopleDN }

// slapdSchema adds the two Active Directory attributes a directory is
// searched by, with AD's OIDs and, unlike Debian's msuser.schema (which
// has no matching rules, so an equality filter on them never matches),
// case-insensitive equality, as AD compares them; and AD's user class, as
// an auxiliary class so inetOrgPerson entries can carry them.
const slapdSchema = `attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName'
	EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
	EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.2.840.113556.1.5.9 NAME 'user' SUP top AUXILIARY
	MAY ( userPrincipalName $ sAMAccountName ) )
`

// The service account may read everything but passwords; users may read
// their own entry; anonymous may only bind.
var slapdConf = template.Must(template.New("slapd.conf").Parse(`include {{.SchemaDir}}/core.schema
include {{.SchemaDir}}/cosine.schema
include {{.SchemaDir}}/inetorgperson.schema
include {{.Dir}}/verigate-test.schema
pidfile {{.Dir}}/slapd.pid
argsfile {{.Dir}}/slapd.args
modulepath {{.ModuleDir}}
moduleload back_mdb
{{- if .TLS}}
TLSCACertificateFile {{.TLS.CAFile}}
TLSCertificateFile {{.TLS.CertFile}}
TLSCertificateKeyFile {{.TLS.KeyFile}}
{{- end}}
database mdb
maxsize 16777216
suffix "{{.Suffix}}"
rootdn "{{.AdminDN}}"
rootpw {{.AdminPassword}}
directory {{.Dir}}/db
index objectClass eq
index uid,userPrincipalName,sAMAccountName eq
access to attrs=userPassword
	by anonymous auth
	by self write
	by * none
access to *
	by dn.exact="{{.ServiceDN}}" read
	by self read
	by * none
`))

// StartSlapd loads a small directory into an mdb database in a temporary
// directory (slapadd, offline) and runs Debian's slapd on it in the
// foreground as the current user, listening on loopback only:
//
//	<suffix>                          dcObject, organization
//	ou=people,<suffix>                the users, inetOrgPerson + user
//	ou=services,<suffix>
//	cn=verigate,ou=services,<suffix>  the read-only service account
//
// slapd is stopped on cleanup and its log printed if the test failed.
func StartSlapd(t testing.TB, opts SlapdOptions) *Slapd {
	t.Helper()
	bin := requireSbin(t, "slapd", "slapd")
	slapadd := requireSbin(t, "slapadd", "slapd")
	suffix := opts.Suffix
	if suffix == "" {
		suffix = "dc=verigate,dc=test"
	}
	dn, err := ldap.ParseDN(suffix)
	if err != nil || len(dn.RDNs) == 0 || !strings.EqualFold(dn.RDNs[0].Attributes[0].Type, "dc") {
		t.Fatalf("peertest: slapd suffix %q must start with dc=", suffix)
	}
	s := &Slapd{Suffix: suffix, PeopleDN: "ou=people," + suffix,
		AdminDN: "cn=admin," + suffix, AdminPassword: "admin-secret",
		ServiceDN: "cn=verigate,ou=services," + suffix, ServicePassword: opts.ServicePassword}
	if s.ServicePassword == "" {
		s.ServicePassword = "service-secret"
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatalf("peertest: %v", err)
	}
	writeFile(t, dir, "verigate-test.schema", []byte(slapdSchema))
	var conf bytes.Buffer
	err = slapdConf.Execute(&conf, map[string]any{
		"SchemaDir": "/etc/ldap/schema", "ModuleDir": findSlapdModules(t), "Dir": dir, "TLS": opts.TLS,
		"Suffix": suffix, "AdminDN": s.AdminDN, "AdminPassword": s.AdminPassword, "ServiceDN": s.ServiceDN,
	})
	if err != nil {
		t.Fatalf("peertest: slapd.conf: %v", err)
	}
	confPath := writeFile(t, dir, "slapd.conf", conf.Bytes())
	ldifPath := writeFile(t, dir, "data.ldif", []byte(s.ldif(dn.RDNs[0].Attributes[0].Value, opts)))
	if out, err := runBounded(30*time.Second, slapadd, "-f", confPath, "-l", ldifPath); err != nil {
		t.Fatalf("peertest: slapadd: %v\n%s", err, out)
	}

	port := FreePort(t)
	s.URL = "ldap://" + net.JoinHostPort(Loopback, strconv.Itoa(port))
	urls := s.URL + "/"
	if opts.TLS != nil {
		s.LDAPSURL = "ldaps://" + net.JoinHostPort(Loopback, strconv.Itoa(FreePort(t)))
		urls += " " + s.LDAPSURL + "/"
	}
	// -d stats keeps slapd in the foreground and logs each operation,
	// filters included, so a test can see what reached the server.
	s.proc = startProcess(t, "slapd", dir, bin, "-f", confPath, "-h", urls, "-d", "stats")
	err = s.proc.waitUntil(15*time.Second, func() error {
		c, err := ldap.DialURL(s.URL, ldap.DialWithDialer(&net.Dialer{Timeout: time.Second}))
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Bind(s.ServiceDN, s.ServicePassword)
	})
	if err != nil {
		t.Fatalf("peertest: %v\n%s", err, s.Log())
	}
	if opts.TLS != nil {
		err = s.proc.waitUntil(5*time.Second, func() error {
			c, err := ldap.DialURL(s.LDAPSURL, ldap.DialWithTLSConfig(opts.TLS.ClientTLS(Loopback)))
			if err != nil {
				return err
			}
			return c.Close()
		})
		if err != nil {
			t.Fatalf("peertest: slapd ldaps: %v", err)
		}
	}
	return s
}

// ldif renders the entries StartSlapd loads.
func (s *Slapd) ldif(dc string, opts SlapdOptions) string {
	var b strings.Builder
	entry := func(dn string, attrs ...string) {
		fmt.Fprintf(&b, "dn: %s\n", dn)
		for i := 0; i+1 < len(attrs); i += 2 {
			fmt.Fprintf(&b, "%s:: %s\n", attrs[i], b64(attrs[i+1]))
		}
		b.WriteString("\n")
	}
	entry(s.Suffix, "objectClass", "dcObject", "objectClass", "organization", "dc", dc, "o", "Verigate tests")
	entry(s.PeopleDN, "objectClass", "organizationalUnit", "ou", "people")
	entry("ou=services,"+s.Suffix, "objectClass", "organizationalUnit", "ou", "services")
	entry(s.ServiceDN, "objectClass", "person", "objectClass", "simpleSecurityObject",
		"cn", "verigate", "sn", "verigate", "userPassword", s.ServicePassword)
	for _, u := range opts.Users {
		attrs := []string{"objectClass", "inetOrgPerson", "objectClass", "user",
			"uid", u.UID, "cn", u.UID, "sn", u.UID, "sAMAccountName", u.UID}
		if u.UPN != "" {
			attrs = append(attrs, "userPrincipalName", u.UPN)
		}
		if u.Password != "" {
			attrs = append(attrs, "userPassword", u.Password)
		}
		if u.DisplayName != "" {
			attrs = append(attrs, "displayName", u.DisplayName)
		}
		for _, m := range u.Mobile {
			attrs = append(attrs, "mobile", m)
		}
		for _, p := range u.Telephone {
			attrs = append(attrs, "telephoneNumber", p)
		}
		entry(s.UserDN(u.UID), attrs...)
	}
	b.WriteString(opts.LDIF)
	return b.String()
}

// b64 encodes an LDIF value, so any text (a "*)(" in a test UPN, a
// leading space) is loaded as it is.
func b64(v string) string { return base64.StdEncoding.EncodeToString([]byte(v)) }

// runBounded runs bin to completion within d and returns its output.
func runBounded(d time.Duration, bin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return exec.CommandContext(ctx, bin, args...).CombinedOutput()
}

// requireSbin is RequireBinary that also looks in /usr/sbin, which is not
// on every user's PATH.
func requireSbin(t testing.TB, name, debianPackage string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := filepath.Join("/usr/sbin", name); isExecutable(p) {
		return p
	}
	return RequireBinary(t, name, debianPackage)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// findSlapdModules returns the directory holding back_mdb.
func findSlapdModules(t testing.TB) string {
	t.Helper()
	for _, pattern := range []string{"/usr/lib/ldap/back_mdb.so", "/usr/lib/*/ldap/back_mdb.so", "/usr/lib/openldap/back_mdb.so"} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return filepath.Dir(m[0])
		}
	}
	t.Fatal("peertest: slapd's back_mdb module not found: install the Debian package \"slapd\" (scripts/test.sh does so with apt-get)")
	return ""
}
