// Package route classifies phone numbers (github.com/nyaruka/phonenumbers)
// and decides, for every verification, which channel and provider carry
// it: built-in safe defaults, operator rules in YAML (first match wins),
// roaming signals (the client's hint, GeoIP, number lookups, delivery
// history), and the fallback from SMS to call and back.
//
// Twilio Lookup (TwilioLookup) is called by hand, one GET with Basic auth,
// and not through twilio-go's Lookups v2 client (rest/lookups/v2), because
// that client cannot be pointed elsewhere: both its constructors
// (NewApiService, NewApiServiceWithClient, twilio-go v1.31.0) fix its base
// URL to https://lookups.twilio.com with no option to change it, while
// route.lookup.url lets the operator send Lookup through a proxy or a
// Twilio-compatible provider, and the tests send it to their fake. Reaching
// another host would take an http.RoundTripper rewriting the scheme, host
// and path prefix of every request behind the library's back, which is
// more code than the call it replaces and hides where requests go. The
// call by hand also shares doJSON with the generic HTTP lookup: one bound
// on the answer's size (maxLookupBody) and one error (ErrLookup) for both.
package route
