// Package e2e holds the end-to-end tests of the Entra ID external
// authentication method: headless Chromium walks from the fake Entra ID
// (internal/entratest) through Verigate's provider (package entra) and
// hosted page (package entra/hosted) and back, and the fake Entra judges
// the id_token as Microsoft's reference says Entra does. It has no code of
// its own.
package e2e
