package entra

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"testing"
)

func FuzzParseClaims(f *testing.F) {
	f.Add(`{"id_token":{"acr":{"essential":true,"values":["possessionorinherence"]},"amr":{"essential":true,"values":["sms","tel"]}}}`)
	f.Add(`{"id_token":{"acr":{"value":"possession"}}}`)
	f.Add(`{"id_token":null}`)
	f.Fuzz(func(t *testing.T, s string) {
		acr, amr, err := parseClaims(s)
		if err == nil && (len(acr) > maxClaimValues+1 || len(amr) > maxClaimValues+1) {
			t.Errorf("%d acr and %d amr values kept", len(acr), len(amr))
		}
	})
}

// FuzzAuthorize: no body makes Authorize panic or yield a request without
// a validated hint. The authority is a closed loopback port: a body that
// gets that far cannot be signed by Entra.
func FuzzAuthorize(f *testing.F) {
	const client = "600b719b-3766-4dc5-95a6-3c4a8dc31885"
	p, err := New(context.Background(), Config{
		Apps:      []App{{ClientID: client, Tenants: []string{"14c2f153-90a7-4689-9db7-9543bf084dad"}}},
		Authority: "http://127.0.0.1:1",
	}, "https://gw.example", Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	good := url.Values{
		"client_id": {client}, "redirect_uri": {EntraRedirectURIs[0]}, "scope": {"openid"},
		"response_type": {"id_token"}, "response_mode": {"form_post"}, "state": {"s"}, "nonce": {"n"},
		"claims":        {`{"id_token":{"acr":{"values":["possession"]}}}`},
		"id_token_hint": {"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJ0aWQiOiIxNGMyZjE1My05MGE3LTQ2ODktOWRiNy05NTQzYmYwODRkYWQifQ.c2ln"},
	}
	f.Add(good.Encode())
	f.Add("client_id=" + client + "&client_id=x")
	f.Add("%zz=1")
	f.Fuzz(func(t *testing.T, body string) {
		req, err := p.Authorize(context.Background(), postRequest(body))
		if err == nil || req != nil {
			t.Fatalf("accepted without Entra: %+v", req)
		}
	})
}
