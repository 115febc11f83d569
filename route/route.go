// Package route classifies phone numbers (github.com/nyaruka/phonenumbers)
// and decides, for every verification, which channel and provider carry
// it: built-in safe defaults, operator rules in YAML (first match wins),
// roaming signals (the client's hint, GeoIP, number lookups, delivery
// history), and the fallback from SMS to call and back.
package route
