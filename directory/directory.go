// Package directory answers "who is this person, and which phones do they
// have?" for the front ends that must call someone they did not get a
// number for: the Entra ID external authentication method (issue 17) and
// RADIUS (issue 18). A person never types the number to be called at
// sign-in: an attacker holding the password would enrol their own phone.
//
// Three sources sit behind one interface, Directory:
//   - Static: a YAML or CSV file (Entra object id, UPN or user name →
//     numbers), read and validated whole at start, Reload to re-read it;
//   - LDAP: an Active Directory or OpenLDAP server searched by
//     userPrincipalName (or a user name attribute) through a bound service
//     account, over ldaps:// or StartTLS;
//   - Graph: Microsoft Graph's /users/{id | userPrincipalName} with an
//     app-only token (client credentials), cached until it expires.
//
// Chain asks several in order and takes the first that knows the person;
// New builds one from Config.
//
// Numbers come back in E.164, normalised by the same verify.NumberParser
// (route.Classifier) that the REST API uses: directories hold what people
// typed into them ("+49 (0)151 2345 6789", "030 1234567"), and a front end
// must be able to compare, mask and route a number without parsing it
// again. A number the parser refuses is a configuration error in a static
// file (refused at load, with its line) and is dropped, with a warning
// naming the user and the masked number, when it comes from LDAP or Graph.
//
// `serve` opens it for the RADIUS front end (package radius); the Entra
// front end is still to be built. `verigate directory lookup` lets an
// administrator try a configuration.
package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/verigate/verigate/verify"
)

// Directory finds a person and their phone numbers.
type Directory interface {
	// Lookup returns the person q names. It returns an error wrapping
	// ErrNotFound when the source does not know them (or cannot look up
	// any of the keys q gives), one wrapping ErrUnavailable (an
	// *UnavailableError, with a Retry-After when the source sent one) when
	// the source could not be asked just now, and any other error for a
	// source that refuses Verigate (a wrong bind password, a revoked
	// secret) or answers nonsense.
	Lookup(ctx context.Context, q Query) (User, error)
}

// Query names a person by one or more keys. A source tries the keys it
// can look up in the order OID, UPN, Username and answers with the first
// that matches.
type Query struct {
	// OID is the Entra ID object id (a GUID), the id_token_hint's oid.
	OID string
	// UPN is the userPrincipalName (alice@contoso.com), the hint's
	// preferred_username.
	UPN string
	// Username is a login name without a domain, as a VPN sends it in
	// RADIUS's User-Name (sAMAccountName or uid).
	Username string
}

// IsZero reports whether q names nobody.
func (q Query) IsZero() bool { return q.OID == "" && q.UPN == "" && q.Username == "" }

// Kind is the kind of a phone number, from the attribute it was found in.
type Kind string

// The kinds of number.
const (
	KindMobile Kind = "mobile" // mobile, mobilePhone
	KindOffice Kind = "office" // telephoneNumber, businessPhones
)

// Number is one of a person's phone numbers.
type Number struct {
	E164 string // normalised by the NumberParser
	Kind Kind
}

// User is a person as a source knows them.
type User struct {
	// ID is the source's stable name for the person: the Entra object id
	// from Graph, the LDAP id attribute (userPrincipalName by default,
	// else the DN), the static entry's oid, upn or username.
	ID string
	// DisplayName is the person's name, empty when the source has none.
	DisplayName string
	// Numbers are mobiles first, then office numbers, each once, in the
	// source's order. A person can have none: the front end decides what
	// to say then.
	Numbers []Number
	// Source names the source that answered ("static", "ldap", "graph").
	Source string
}

// Mobile returns the first mobile number, if any.
func (u User) Mobile() (Number, bool) {
	for _, n := range u.Numbers {
		if n.Kind == KindMobile {
			return n, true
		}
	}
	return Number{}, false
}

// ErrNotFound means the source does not know the person.
var ErrNotFound = errors.New("directory: user not found")

// ErrUnavailable means the source could not be asked; trying again later
// may work. Errors wrapping it are *UnavailableError.
var ErrUnavailable = errors.New("directory: source unavailable")

// UnavailableError is a failure worth retrying: a timeout, a refused
// connection, Graph's 429 or 5xx.
type UnavailableError struct {
	Source string
	// RetryAfter is how long the source asked to be left alone; 0 when it
	// did not say.
	RetryAfter time.Duration
	Err        error
}

func (e *UnavailableError) Error() string {
	s := "directory: " + e.Source + " unavailable"
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnavailable) hold.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// MaxNumbers bounds the numbers kept per person: a directory entry with
// hundreds of values is an error, not a person.
const MaxNumbers = 10

// normaliser turns a source's raw numbers into a User's Numbers.
type normaliser struct {
	parser verify.NumberParser
	log    *slog.Logger
	source string
}

// numbers parses raw values of kind k into out, skipping duplicates; a
// value the parser refuses is logged (masked) and dropped.
func (n normaliser) add(out []Number, userID string, k Kind, raws ...string) []Number {
	for _, raw := range raws {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		if len(out) >= MaxNumbers {
			n.log.Warn("directory: too many numbers, rest ignored", "source", n.source, "user", userID, "max", MaxNumbers)
			return out
		}
		num, err := n.parser.ParseNumber(raw)
		if err != nil {
			n.log.Warn("directory: number dropped: not a phone number", "source", n.source, "user", userID,
				"kind", k, "number", verify.MaskNumber(raw))
			continue
		}
		if !hasNumber(out, num.E164) {
			out = append(out, Number{E164: num.E164, Kind: k})
		}
	}
	return out
}

func hasNumber(ns []Number, e164 string) bool {
	for _, n := range ns {
		if n.E164 == e164 {
			return true
		}
	}
	return false
}

// maskedNumbers renders numbers for a log line.
func maskedNumbers(ns []Number) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = string(n.Kind) + ":" + verify.MaskNumber(n.E164)
	}
	return out
}

func discardIfNil(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
