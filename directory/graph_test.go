package directory_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/directory"
	"github.com/verigate/verigate/internal/graphtest"
)

var graphAlice = graphtest.User{ID: aliceOID, UserPrincipalName: "alice@contoso.example", DisplayName: "Alice Example",
	MobilePhone: "+49 151 23456789", BusinessPhones: []string{"030 1234567", "+49 (30) 1234567", "not a number"}}

func newGraph(t *testing.T, f *graphtest.Fake, log *slog.Logger) *directory.Graph {
	t.Helper()
	g, err := directory.NewGraph(directory.GraphConfig{TenantID: f.TenantID, ClientID: f.ClientID, ClientSecret: f.ClientSecret,
		TokenURL: f.TokenURL, BaseURL: f.BaseURL}, parser(), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGraphLookup(t *testing.T) {
	f := graphtest.New(t, graphAlice, graphtest.User{ID: "3c8d2b8f-6e4a-4b9c-8d1e-2f3a4b5c6d7e", UserPrincipalName: "bob@contoso.example"},
		graphtest.User{ID: "4d9e3c9a-7f5b-4cad-9e2f-3a4b5c6d7e8f", UserPrincipalName: "o'brien@contoso.example", MobilePhone: "+4915122222222"})
	var logs bytes.Buffer
	g := newGraph(t, f, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx := context.Background()
	want := directory.User{ID: aliceOID, DisplayName: "Alice Example", Source: "graph", Numbers: []directory.Number{
		{E164: "+4915123456789", Kind: directory.KindMobile}, {E164: "+49301234567", Kind: directory.KindOffice}}}
	tests := []struct {
		name string
		q    directory.Query
		want directory.User
		err  error
	}{
		{"oid", directory.Query{OID: aliceOID}, want, nil},
		{"upn", directory.Query{UPN: "Alice@Contoso.example"}, want, nil},
		{"oid wins over upn", directory.Query{OID: aliceOID, UPN: "bob@contoso.example"}, want, nil},
		{"no numbers", directory.Query{UPN: "bob@contoso.example"}, directory.User{ID: "3c8d2b8f-6e4a-4b9c-8d1e-2f3a4b5c6d7e", Source: "graph"}, nil},
		{"unknown oid: 404", directory.Query{OID: "00000000-0000-0000-0000-000000000000"}, directory.User{}, directory.ErrNotFound},
		{"username only", directory.Query{Username: "alice"}, directory.User{}, directory.ErrNotFound},
		{"oid not a guid", directory.Query{OID: "../me"}, directory.User{}, directory.ErrNotFound},
		{"upn with path syntax", directory.Query{UPN: "alice@contoso.example/../x"}, directory.User{}, directory.ErrNotFound},
		{"upn starting with $", directory.Query{UPN: "$batch@contoso.example"}, directory.User{}, directory.ErrNotFound},
		{"upn with an apostrophe", directory.Query{UPN: "o'brien@contoso.example"}, directory.User{ID: "4d9e3c9a-7f5b-4cad-9e2f-3a4b5c6d7e8f", Source: "graph",
			Numbers: []directory.Number{{E164: "+4915122222222", Kind: directory.KindMobile}}}, nil},
	}
	for _, tt := range tests {
		got, err := g.Lookup(ctx, tt.q)
		if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Lookup(%+v) = %+v, %v; want %+v, %v", tt.name, tt.q, got, err, tt.want, tt.err)
		}
	}
	// One token for all the lookups, asked for as the identity platform
	// wants it.
	token, _ := f.Calls()
	if token != 1 {
		t.Errorf("%d token requests, want 1 (cached)", token)
	}
	form := f.LastTokenForm()
	for k, v := range map[string]string{"grant_type": "client_credentials", "client_id": f.ClientID,
		"client_secret": f.ClientSecret, "scope": "https://graph.microsoft.com/.default"} {
		if got := form[k]; len(got) != 1 || got[0] != v {
			t.Errorf("token form %s = %q, want %q", k, got, v)
		}
	}
	// Logs: the dropped number masked, no number or secret in full.
	out := logs.String()
	for _, secret := range []string{"+4915123456789", "23456789", f.ClientSecret, "not a number"} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "number dropped") || !strings.Contains(out, "+49151*****789") {
		t.Errorf("log lacks the dropped number's warning or the masked numbers:\n%s", out)
	}
}

func TestGraphToken(t *testing.T) {
	ctx := context.Background()
	q := directory.Query{OID: aliceOID}

	t.Run("renewed before it expires", func(t *testing.T) {
		f := graphtest.New(t, graphAlice)
		f.SetTokenLifetime(time.Minute) // under the renewal margin: every lookup needs a new one
		g := newGraph(t, f, nil)
		for range 3 {
			if _, err := g.Lookup(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		if token, _ := f.Calls(); token != 3 {
			t.Errorf("%d token requests, want 3", token)
		}
	})
	t.Run("revoked: one new token", func(t *testing.T) {
		f := graphtest.New(t, graphAlice)
		g := newGraph(t, f, nil)
		if _, err := g.Lookup(ctx, q); err != nil {
			t.Fatal(err)
		}
		f.RevokeTokens()
		if _, err := g.Lookup(ctx, q); err != nil {
			t.Fatalf("after revocation: %v", err)
		}
		if token, user := f.Calls(); token != 2 || user != 3 {
			t.Errorf("calls token %d user %d, want 2 and 3", token, user)
		}
	})
	t.Run("wrong secret: not retryable, not echoed", func(t *testing.T) {
		f := graphtest.New(t, graphAlice)
		g, err := directory.NewGraph(directory.GraphConfig{TenantID: f.TenantID, ClientID: f.ClientID, ClientSecret: "wrong-secret",
			TokenURL: f.TokenURL, BaseURL: f.BaseURL}, parser(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = g.Lookup(ctx, q)
		if err == nil || errors.Is(err, directory.ErrUnavailable) || errors.Is(err, directory.ErrNotFound) ||
			!strings.Contains(err.Error(), "invalid_client") || strings.Contains(err.Error(), "wrong-secret") {
			t.Fatalf("wrong secret: %v", err)
		}
	})
}

func TestGraphRetryable(t *testing.T) {
	ctx := context.Background()
	q := directory.Query{OID: aliceOID}
	f := graphtest.New(t, graphAlice)
	g := newGraph(t, f, nil)

	f.FailNext(graphtest.Failure{Status: http.StatusServiceUnavailable})
	_, err := g.Lookup(ctx, q)
	var ue *directory.UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, directory.ErrUnavailable) || ue.RetryAfter != 0 {
		t.Fatalf("503: %v, want an UnavailableError without Retry-After", err)
	}
	if _, err := g.Lookup(ctx, q); err != nil {
		t.Fatalf("after a 503 without Retry-After: %v", err)
	}

	f.FailNext(graphtest.Failure{Status: http.StatusTooManyRequests, RetryAfter: "1"})
	if _, err = g.Lookup(ctx, q); !errors.As(err, &ue) || ue.RetryAfter != time.Second {
		t.Fatalf("429: %v, want an UnavailableError with Retry-After 1s", err)
	}
	// Until Retry-After has passed Graph is left alone.
	_, before := f.Calls()
	if _, err = g.Lookup(ctx, q); !errors.As(err, &ue) || ue.RetryAfter <= 0 {
		t.Fatalf("while throttled: %v", err)
	}
	if _, after := f.Calls(); after != before {
		t.Fatalf("a lookup reached Graph before its Retry-After")
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := g.Lookup(ctx, q); err != nil {
		t.Fatalf("after Retry-After: %v", err)
	}
}

// TestGraphBoundedRead refuses an answer larger than any user.
func TestGraphBoundedRead(t *testing.T) {
	f := graphtest.New(t)
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"` + aliceOID + `","displayName":"` + strings.Repeat("x", 1<<20) + `"}`))
	}))
	t.Cleanup(big.Close)
	g, err := directory.NewGraph(directory.GraphConfig{TenantID: f.TenantID, ClientID: f.ClientID, ClientSecret: f.ClientSecret,
		TokenURL: f.TokenURL, BaseURL: big.URL}, parser(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Lookup(context.Background(), directory.Query{OID: aliceOID}); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized answer: %v", err)
	}
}

func TestGraphConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  directory.GraphConfig
		want string
	}{
		{"no secret", directory.GraphConfig{TenantID: "contoso.example", ClientID: "x"}, "graph.client_secret"},
		{"no client", directory.GraphConfig{TenantID: "contoso.example", ClientSecret: "s"}, "graph.client_id"},
		{"no tenant", directory.GraphConfig{ClientID: "x", ClientSecret: "s"}, "graph.tenant_id"},
		{"plain http elsewhere", directory.GraphConfig{TenantID: "t", ClientID: "x", ClientSecret: "s", BaseURL: "http://graph.example"}, "graph.base_url"},
		{"token url", directory.GraphConfig{TenantID: "t", ClientID: "x", ClientSecret: "s", TokenURL: "login"}, "graph.token_url"},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate("graph"); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	ok := directory.GraphConfig{TenantID: "t", ClientID: "x", ClientSecret: "s", BaseURL: "http://127.0.0.1:8080/v1.0"}
	if err := ok.Validate("graph"); err != nil {
		t.Errorf("loopback http: %v", err)
	}
}
