package directory_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/verigate/verigate/directory"
	"github.com/verigate/verigate/internal/graphtest"
)

// TestChain asks the static file first, then Graph, and stops at a source
// that fails.
func TestChain(t *testing.T) {
	f := graphtest.New(t, graphAlice, graphtest.User{ID: "3c8d2b8f-6e4a-4b9c-8d1e-2f3a4b5c6d7e", UserPrincipalName: "dave@contoso.example", MobilePhone: "+4915111111111"})
	newChain := func(order ...string) directory.Chain {
		c, err := directory.New(directory.Config{Order: order,
			Static: directory.StaticConfig{File: writeFile(t, "people.yaml", staticYAML)},
			Graph: directory.GraphConfig{TenantID: f.TenantID, ClientID: f.ClientID, ClientSecret: f.ClientSecret,
				TokenURL: f.TokenURL, BaseURL: f.BaseURL},
		}, directory.Options{Parser: parser()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c := newChain()
	ctx := context.Background()
	tests := []struct {
		name       string
		q          directory.Query
		wantSource string
		wantErr    error
	}{
		{"in the file", directory.Query{OID: aliceOID}, "static", nil},
		{"only in Graph", directory.Query{UPN: "dave@contoso.example"}, "graph", nil},
		{"nowhere", directory.Query{UPN: "zoe@contoso.example"}, "", directory.ErrNotFound},
		{"empty query", directory.Query{}, "", directory.ErrNotFound},
	}
	for _, tt := range tests {
		u, err := c.Lookup(ctx, tt.q)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) || u.Source != tt.wantSource {
			t.Errorf("%s: %+v, %v; want source %q, %v", tt.name, u, err, tt.wantSource, tt.wantErr)
		}
	}
	f.FailNext(graphtest.Failure{Status: http.StatusBadGateway})
	if _, err := c.Lookup(ctx, directory.Query{UPN: "dave@contoso.example"}); !errors.Is(err, directory.ErrUnavailable) {
		t.Errorf("Graph down: %v, want ErrUnavailable", err)
	}

	// Order puts Graph first: alice then comes from Graph.
	if u, err := newChain("graph", "static").Lookup(ctx, directory.Query{OID: aliceOID}); err != nil || u.Source != "graph" {
		t.Errorf("graph first: %+v, %v", u, err)
	}
}

func TestConfigValidateOrder(t *testing.T) {
	cfg := directory.Config{Order: []string{"ldap", "static", "static", "phonebook"},
		Static: directory.StaticConfig{File: "people.yaml"}}
	err := cfg.Validate("directory")
	for _, want := range []string{"directory.order[0]: ldap is not configured", "directory.order[2]: static twice", "directory.order[3]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v, want %q", err, want)
		}
	}
}
