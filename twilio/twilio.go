// Package twilio is Verigate's Twilio provider: SMS through the Messages
// API and verification calls through the Calls API (both with
// github.com/twilio/twilio-go), and the signed webhooks Twilio calls back:
// the calls' TwiML, rendered from the ivr script, and the status callbacks
// of messages and calls, recorded as verification events.
//
// Twilio's webhooks are stateless and may reach any gateway instance, so
// each call's context (verification, locale, mode and, in code mode, the
// code) travels sealed with AES-256-GCM in its webhook URLs, and the
// script's state travels encoded beside it. See docs/TWILIO.md.
package twilio
