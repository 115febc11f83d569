package twiliocompat

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// authed wraps a handler of a service's endpoint: it checks HTTP Basic
// credentials (the username an account SID or tenant name, the password
// one of that tenant's API keys) and that the service in the path is the
// tenant's. Wrong credentials answer 401 with Twilio's 20003; a service
// that is not the tenant's answers 20404, as an unknown one does.
func (a *API) authed(fn func(c echo.Context, s *service) error) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, pass, ok := c.Request().BasicAuth()
		// The key is looked up whatever the username, so the time taken
		// does not tell a known username from an unknown one.
		keyTenant := a.keys.Tenant(pass)
		t := a.tenants[user]
		if !ok || t == nil || keyTenant == "" || keyTenant != t.name {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Basic realm="Verigate"`)
			return &Error{Status: http.StatusUnauthorized, Code: CodeAuthenticate, Message: "Authenticate"}
		}
		s := a.services[c.Param("service")]
		if s == nil || s.tenant != t {
			return notFound(c)
		}
		return fn(c, s)
	}
}
