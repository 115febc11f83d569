package peertest

import (
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// TestSlapd proves the harness: the service account reads a user's phone
// attributes by userPrincipalName over StartTLS and ldaps://, the user
// binds with their own password, and an anonymous search sees nothing.
func TestSlapd(t *testing.T) {
	certs := NewCerts(t)
	s := StartSlapd(t, SlapdOptions{TLS: certs, Users: []LDAPUser{{
		UID: "alice", UPN: "Alice@Contoso.example", Password: "alice-pw", DisplayName: "Alice Example",
		Mobile: []string{"+49 151 23456789"}, Telephone: []string{"+49 30 1234567"},
	}}})
	search := func(c *ldap.Conn) ([]*ldap.Entry, error) {
		res, err := c.Search(ldap.NewSearchRequest(s.PeopleDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 5, false,
			"(userPrincipalName=alice@contoso.example)", []string{"mobile", "telephoneNumber", "displayName"}, nil))
		if err != nil {
			return nil, err
		}
		return res.Entries, nil
	}

	c, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(certs.ClientTLS(Loopback)); err != nil {
		t.Fatalf("starttls: %v", err)
	}
	// Anonymous may not even learn that ou=people exists.
	if got, err := search(c); !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		t.Fatalf("anonymous search = %d entries, %v; want No Such Object", len(got), err)
	}
	if err := c.Bind(s.ServiceDN, s.ServicePassword); err != nil {
		t.Fatal(err)
	}
	got, err := search(c)
	if err != nil || len(got) != 1 || got[0].DN != s.UserDN("alice") || got[0].GetAttributeValue("mobile") != "+49 151 23456789" ||
		got[0].GetAttributeValue("telephoneNumber") != "+49 30 1234567" {
		t.Fatalf("service search (case-insensitive UPN) = %+v, %v", got, err)
	}

	tc, err := ldap.DialURL(s.LDAPSURL, ldap.DialWithTLSConfig(certs.ClientTLS(Loopback)))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if err := tc.Bind(s.UserDN("alice"), "alice-pw"); err != nil {
		t.Fatalf("user bind over ldaps: %v", err)
	}
	if err := tc.Bind(s.UserDN("alice"), "wrong"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Fatalf("wrong password: %v, want invalid credentials", err)
	}
}
