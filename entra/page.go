package entra

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
)

type field struct{ Name, Value string }

// postPage posts its fields to Action by itself. The script runs under
// the CSP nonce only; without script the person presses the button.
var postPage = template.Must(template.New("post").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Returning to Microsoft sign-in</title>
</head>
<body>
<form id="entra-post" method="post" action="{{.Action}}">
{{- range .Fields}}
<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{- end}}
<noscript><p>Press the button to return to Microsoft sign-in.</p><button type="submit">Continue</button></noscript>
</form>
<script nonce="{{.Nonce}}">document.getElementById("entra-post").submit();</script>
</body>
</html>
`))

// writePostPage writes the page that posts fields to action (Entra's
// redirect_uri, already checked against the accepted list).
func writePostPage(w http.ResponseWriter, action string, fields []field) error {
	u, err := url.Parse(action)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("entra: redirect_uri %q is not absolute", action)
	}
	var nb [18]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return err
	}
	// base64url: html/template would escape the + of standard base64.
	nonce := base64.RawURLEncoding.EncodeToString(nb[:])
	var buf bytes.Buffer
	if err := postPage.Execute(&buf, struct {
		Action string
		Fields []field
		Nonce  string
	}{action, fields, nonce}); err != nil {
		return fmt.Errorf("entra: post page: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; form-action "+
		u.Scheme+"://"+u.Host+"; base-uri 'none'; frame-ancestors 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(buf.Bytes())
	return err
}
