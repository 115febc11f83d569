package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/verigate/verigate/internal/entratest"
)

// The ids of deploy/examples/entra.yaml and deploy/examples/entra-people.csv,
// so that the fake and the example walk the flow without flags.
const (
	exampleTenantID = "0b0b0b0b-0000-4000-8000-000000000002"
	exampleClientID = "0a0a0a0a-0000-4000-8000-000000000001"
	exampleObjectID = "0c0c0c0c-0000-4000-8000-000000000003"
)

// runEntraFake is `verigate entra-fake`: a fake Microsoft Entra ID on
// loopback, so a person can walk the external authentication method flow by
// hand against `serve --dev`. Its start page posts a fresh authorize
// request to the gateway; each answer the gateway posts back is checked as
// Entra checks it, and the outcome printed.
func runEntraFake(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("entra-fake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address (loopback: the fake trusts every caller)")
	authorizeURL := fs.String("authorize-url", "http://127.0.0.1:8080/entra/authorize", "the gateway's authorization_endpoint, where the start page posts")
	discoveryURL := fs.String("discovery-url", "", "the gateway's discovery document (default: beside --authorize-url, .../.well-known/openid-configuration)")
	// The defaults are those of deploy/examples/entra.yaml and its people.
	tenant := fs.String("tenant", exampleTenantID, "the Entra tenant id (tid) of the person")
	clientID := fs.String("client-id", exampleClientID, "the app registration's client id the gateway must accept")
	upn := fs.String("upn", "alice@contoso.example", "the person's preferred_username")
	oid := fs.String("oid", exampleObjectID, "the person's object id (oid), the key into the gateway's directory")
	name := fs.String("name", "Alice Example", "the person's name")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: verigate entra-fake [--addr 127.0.0.1:8090] [--authorize-url URL] [--tenant TID --client-id ID --upn UPN --oid OID]")
		fs.PrintDefaults()
	}
	positional, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(positional) != 0 {
		fs.Usage()
		return fmt.Errorf("entra-fake: unexpected argument %q", positional[0])
	}
	if *discoveryURL == "" {
		base, ok := strings.CutSuffix(*authorizeURL, "/authorize")
		if !ok {
			return errors.New("entra-fake: --authorize-url does not end in /authorize: give --discovery-url")
		}
		*discoveryURL = base + "/.well-known/openid-configuration"
	}
	// One person for every start page: the same oid, hence the same
	// pairwise sub, each time, as Entra sends for one user and app.
	person := entratest.HintOptions{PreferredUsername: *upn, ObjectID: *oid, Name: *name}
	if person.ObjectID == "" {
		person.ObjectID = entratest.NewGUID()
	}
	f, err := entratest.Start(entratest.Options{
		Addr:                 *addr,
		TenantID:             *tenant,
		ClientID:             *clientID,
		ProviderDiscoveryURL: *discoveryURL,
		AuthorizeURL:         *authorizeURL,
		Person:               person,
	})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.Close(sctx)
	}()
	fmt.Fprintf(stdout, "fake Entra ID at %s\n", f.URL)
	fmt.Fprintf(stdout, "  authority     %s   (entra.authority)\n", f.URL)
	fmt.Fprintf(stdout, "  tenant id     %s\n", f.TenantID)
	fmt.Fprintf(stdout, "  client id     %s   (entra.apps[].client_id)\n", f.ClientID)
	fmt.Fprintf(stdout, "  redirect_uri  %s   (entra.redirect_uris)\n", f.RedirectURI)
	fmt.Fprintf(stdout, "  person        %s oid %s\n", person.PreferredUsername, person.ObjectID)
	fmt.Fprintf(stdout, "  gateway       %s (discovery %s)\n", *authorizeURL, *discoveryURL)
	fmt.Fprintf(stdout, "open %s/ and press the button; outcomes follow\n", f.URL)
	for {
		r, err := f.Wait(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: the normal end
			}
			return err
		}
		fmt.Fprintln(stdout, describeOutcome(r))
	}
}

// describeOutcome is one line per answer; never the token itself.
func describeOutcome(r entratest.Result) string {
	if r.Accepted {
		return fmt.Sprintf("outcome: accepted: amr %s, sub %v", r.Method, r.IDToken["sub"])
	}
	s := "outcome: refused: " + r.Reason
	if r.Error != "" && r.ErrorDescription != "" {
		s += " (" + r.ErrorDescription + ")"
	}
	return s
}
