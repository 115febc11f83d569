package radius

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/verigate/verigate/directory"
)

// ErrWrongPassword is the primary check's "no": the login is rejected
// without a call.
var ErrWrongPassword = errors.New("radius: wrong user name or password")

// PasswordChecker is the primary authentication. It returns nil for a
// right password, an error wrapping ErrWrongPassword for a wrong one, and
// any other error when it could not tell (the directory or upstream is
// down): the login is rejected then too, but logged as a failure.
type PasswordChecker interface {
	CheckPassword(ctx context.Context, user, password string) error
}

// newPasswordChecker builds the checker cfg.Mode names.
func newPasswordChecker(cfg Primary) (PasswordChecker, error) {
	switch cfg.Mode {
	case "", "none":
		return noPrimary{}, nil
	case "ldap":
		return newLDAPChecker(cfg.LDAP)
	case "radius":
		return &upstream{cfg: cfg.RADIUS}, nil
	}
	return nil, fmt.Errorf("radius: primary mode %q", cfg.Mode)
}

// noPrimary trusts what is in front (the NAS, or FreeRADIUS proxying
// here) to have checked the password.
type noPrimary struct{}

func (noPrimary) CheckPassword(context.Context, string, string) error { return nil }

// ldapChecker binds as the user.
type ldapChecker struct {
	cfg LDAPAuth
	url *url.URL
	tls *tls.Config
}

func newLDAPChecker(cfg LDAPAuth) (*ldapChecker, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("radius: primary.ldap.url: %w", err)
	}
	tc := &tls.Config{ServerName: cfg.ServerName, MinVersion: tls.VersionTLS12}
	if tc.ServerName == "" {
		tc.ServerName = u.Hostname()
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("radius: primary.ldap.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("radius: primary.ldap.ca_file: %s holds no PEM certificate", cfg.CAFile)
		}
	}
	return &ldapChecker{cfg: cfg, url: u, tls: tc}, nil
}

func (l *ldapChecker) CheckPassword(ctx context.Context, user, password string) error {
	// An empty password would be an unauthenticated bind, which LDAP
	// servers answer with success (RFC 4513 §5.1.2).
	if password == "" || user == "" {
		return ErrWrongPassword
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	c, err := l.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	dn := ""
	if l.cfg.UserDN != "" {
		dn = strings.ReplaceAll(l.cfg.UserDN, "{username}", ldap.EscapeDN(user))
	} else {
		if dn, err = l.find(c, user); err != nil {
			return err
		}
	}
	if err := c.Bind(dn, password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return fmt.Errorf("%w (ldap)", ErrWrongPassword)
		}
		return fmt.Errorf("radius: ldap bind: %w", err)
	}
	return nil
}

// find searches the one entry of user as the service account.
func (l *ldapChecker) find(c *ldap.Conn, user string) (string, error) {
	var err error
	if l.cfg.BindDN != "" {
		err = c.Bind(l.cfg.BindDN, l.cfg.BindPassword)
	} else {
		err = c.UnauthenticatedBind("")
	}
	if err != nil {
		return "", fmt.Errorf("radius: ldap bind as %s: %w", l.cfg.BindDN, err)
	}
	filter := strings.ReplaceAll(l.cfg.Filter, "{username}", ldap.EscapeFilter(user))
	res, err := c.Search(ldap.NewSearchRequest(l.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, int(l.cfg.Timeout/time.Second)+1, false, filter, []string{"1.1"}, nil))
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		return "", fmt.Errorf("radius: ldap search: %w", err)
	}
	switch {
	case res == nil || len(res.Entries) == 0:
		return "", fmt.Errorf("%w (no such user in ldap)", ErrWrongPassword)
	case len(res.Entries) > 1:
		// Two people with the key: binding as either would be a guess.
		return "", fmt.Errorf("radius: ldap: more than one entry for the user")
	}
	return res.Entries[0].DN, nil
}

func (l *ldapChecker) dial(ctx context.Context) (*ldap.Conn, error) {
	c, stage, err := directory.DialLDAP(ctx, l.url, l.tls, l.cfg.Timeout)
	if err != nil {
		return nil, fmt.Errorf("radius: ldap %s: %w", stage, err)
	}
	if l.cfg.StartTLS {
		if err := c.StartTLS(l.tls); err != nil {
			c.Close()
			return nil, fmt.Errorf("radius: ldap starttls: %w", err)
		}
	}
	return c, nil
}

// upstream forwards PAP to another RADIUS server, with a
// Message-Authenticator both ways.
type upstream struct{ cfg UpstreamRAD }

func (u *upstream) CheckPassword(ctx context.Context, user, password string) error {
	if user == "" || password == "" {
		return ErrWrongPassword
	}
	secret := []byte(u.cfg.Secret)
	req := radius.New(radius.CodeAccessRequest, secret)
	if err := rfc2865.UserName_SetString(req, user); err != nil {
		return fmt.Errorf("%w (user name too long)", ErrWrongPassword)
	}
	if err := rfc2865.UserPassword_SetString(req, password); err != nil {
		return fmt.Errorf("%w (password too long)", ErrWrongPassword)
	}
	_ = rfc2865.NASIdentifier_SetString(req, "verigate")
	b, err := encodeSigned(req)
	if err != nil {
		return fmt.Errorf("radius: upstream: %w", err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", u.cfg.Address)
	if err != nil {
		return fmt.Errorf("radius: upstream: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, MaxPacket+1)
	for try := 0; try <= u.cfg.Retries; try++ {
		// A retransmission is the same packet: the upstream's duplicate
		// detection then answers it once.
		if _, err := conn.Write(b); err != nil {
			return fmt.Errorf("radius: upstream: %w", err)
		}
		deadline := time.Now().Add(u.cfg.Timeout)
		for {
			if ctx.Err() != nil {
				return fmt.Errorf("radius: upstream: %w", ctx.Err())
			}
			conn.SetReadDeadline(deadline)
			n, err := conn.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
					break // next try
				}
				return fmt.Errorf("radius: upstream: %w", err)
			}
			if n > MaxPacket || n < 20 || buf[1] != b[1] {
				continue // not the answer to this request
			}
			plen, err := packetLength(buf[:n])
			if err != nil {
				continue
			}
			resp := buf[:plen]
			if err := checkResponseAuth(resp, b, secret); err != nil {
				continue // forged or for another secret: keep waiting
			}
			switch radius.Code(resp[0]) {
			case radius.CodeAccessAccept:
				return nil
			case radius.CodeAccessReject:
				return fmt.Errorf("%w (upstream)", ErrWrongPassword)
			default:
				// A challenge from upstream (its own OTP) is not supported.
				return fmt.Errorf("%w (upstream answered %s)", ErrWrongPassword, radius.Code(resp[0]))
			}
		}
	}
	return fmt.Errorf("radius: upstream %s: no answer after %d tries", u.cfg.Address, u.cfg.Retries+1)
}

// randomBytes fills n bytes from crypto/rand.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (Go 1.24+)
	return b
}
