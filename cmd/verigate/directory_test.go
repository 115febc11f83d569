package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verigate/verigate/directory"
	"github.com/verigate/verigate/internal/peertest"
)

// TestDirectoryLookup looks people up through the configuration: a static
// file asked first, then a real slapd.
func TestDirectoryLookup(t *testing.T) {
	dir := t.TempDir()
	people := filepath.Join(dir, "people.csv")
	if err := os.WriteFile(people, []byte("upn,display_name,mobile\nalice@contoso.example,Alice Example,0151 23456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := peertest.StartSlapd(t, peertest.SlapdOptions{Users: []peertest.LDAPUser{
		{UID: "bob", UPN: "bob@contoso.example", Telephone: []string{"+49 30 1234567"}},
		{UID: "carol", UPN: "carol@contoso.example"},
	}})
	cfgPath := filepath.Join(dir, "verigate.yaml")
	cfg := "verify:\n  default_region: DE\ndirectory:\n  static:\n    file: " + people +
		"\n  ldap:\n    url: " + s.URL + "\n    base_dn: " + s.Suffix + "\n    bind_dn: " + s.ServiceDN + "\n    username_attribute: uid\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VERIGATE_DIRECTORY_LDAP_BIND_PASSWORD", s.ServicePassword)

	lookup := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"directory", "lookup", "--config", cfgPath}, args...), &out, &errOut)
		return squeeze(out.String()), err
	}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--upn", "alice@contoso.example"}, []string{"source static\n", "name Alice Example\n", "mobile +49151*****789\n"}},
		{[]string{"--upn", "alice@contoso.example", "--full"}, []string{"mobile +4915123456789\n"}},
		{[]string{"--username", "bob"}, []string{"source ldap\n", "id bob@contoso.example\n", "office +49301***567\n"}},
		{[]string{"--upn", "carol@contoso.example"}, []string{"numbers none"}},
	}
	for _, tt := range tests {
		out, err := lookup(tt.args...)
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", tt.args, w, out)
			}
		}
	}
	if _, err := lookup("--upn", "zoe@contoso.example"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("unknown person: %v, want ErrNotFound", err)
	}
	if _, err := lookup(); err == nil || !strings.Contains(err.Error(), "--upn") {
		t.Errorf("no key: %v", err)
	}
}
