// Package prompts holds every user-facing text of Verigate, localised, and
// the embedded G.711 audio of every spoken line, with the tooling that
// generates it (see prompts/README.md).
//
// A Catalogue is built once at start-up by Load, which validates the
// embedded texts and audio together with the operator's overrides, so that
// nothing about a prompt can fail in the middle of a call. Locales are
// negotiated (pt-BR → pt → the default locale) by every lookup, so callers
// pass the verification's locale as the client gave it.
package prompts
