package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/verify"
)

// Routes of the message relay: the native one, and the request shapes of
// the IdPs that make their own codes and want a message delivered
// (docs/INTEGRATION.md).
const (
	RouteMessages   = "/v1/messages"
	RouteMessageGet = "/v1/messages/:id"
	RouteRelay      = "/v1/relay/:idp"
)

// Relayers are the IdP request shapes RouteRelay accepts, by the path's
// last element.
var Relayers = map[string]func(body []byte, contentType string) (relayBody, error){
	"authentik": authentikBody,
	"zitadel":   zitadelBody,
	"kratos":    genericBody,
	"keycloak":  genericBody,
}

// messageRequest is the body of POST /v1/messages.
type messageRequest struct {
	To          string         `json:"to"`
	Body        string         `json:"body"`
	Channel     verify.Channel `json:"channel,omitempty"`
	Locale      string         `json:"locale,omitempty"`
	UserID      string         `json:"user_id,omitempty"`
	ClientIP    string         `json:"client_ip,omitempty"`
	Roaming     *bool          `json:"roaming,omitempty"`
	CallbackURL string         `json:"callback_url,omitempty"`
}

// messageView is a relayed message as the API shows it: the number masked,
// never the body.
type messageView struct {
	ID        string         `json:"id"`
	Status    verify.Status  `json:"status"`
	Reason    string         `json:"reason,omitempty"`
	Channel   verify.Channel `json:"channel"`
	Locale    string         `json:"locale,omitempty"`
	To        string         `json:"to"`
	Route     routeView      `json:"route"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
	ExpiresAt time.Time      `json:"expires_at"`
	Events    []eventView    `json:"events"`
}

type routeView struct {
	Channel  verify.Channel `json:"channel"`
	Provider string         `json:"provider,omitempty"`
	Trunk    string         `json:"trunk,omitempty"`
	Reasons  []string       `json:"reasons,omitempty"`
}

type eventView struct {
	Type      verify.EventType `json:"type"`
	At        time.Time        `json:"at"`
	Channel   verify.Channel   `json:"channel,omitempty"`
	Provider  string           `json:"provider,omitempty"`
	ErrorCode string           `json:"error_code,omitempty"`
	Detail    string           `json:"detail,omitempty"`
	Attempt   int              `json:"attempt,omitempty"`
}

// MessageView returns v, a relayed message, as GET /v1/messages/{id}
// shows it (the Twilio-compatible Messages API builds its answer on it).
func MessageView(v *verify.Verification) ([]byte, error) {
	mv := messageView{
		ID: v.ID, Status: v.Status, Reason: v.Reason, Channel: v.Channel, Locale: v.Locale,
		To:        verify.MaskNumber(v.To),
		Route:     routeView{Channel: v.Route.Channel, Provider: v.Route.Provider, Trunk: v.Route.Trunk, Reasons: v.Route.Reasons},
		CreatedAt: v.CreatedAt.UTC(), UpdatedAt: v.UpdatedAt.UTC(), ExpiresAt: v.ExpiresAt.UTC(),
		Events: make([]eventView, 0, len(v.Events)),
	}
	for _, e := range v.Events {
		mv.Events = append(mv.Events, eventView{Type: e.Type, At: e.At.UTC(), Channel: e.Channel, Provider: e.Provider,
			ErrorCode: e.ErrorCode, Detail: e.Detail, Attempt: e.Attempt})
	}
	return json.Marshal(mv)
}

// validate checks the free-form fields, as startRequest.validate does.
func (r *messageRequest) validate() error {
	s := startRequest{Locale: r.Locale, UserID: r.UserID, ClientIP: r.ClientIP, CallbackURL: r.CallbackURL}
	return s.validate()
}

func (h *handler) relayMessage(c echo.Context, tenant string) error {
	key, err := idemKey(c)
	if err != nil {
		return err
	}
	var req messageRequest
	if err := h.decode(c, &req); err != nil {
		return err
	}
	return h.relay(c, tenant, key, req)
}

// relay relays req for tenant, at most once per Idempotency-Key, and
// answers 201 with the message.
func (h *handler) relay(c echo.Context, tenant, key string, req messageRequest) error {
	if err := req.validate(); err != nil {
		return err
	}
	do := func() (int, []byte, error) {
		v, err := h.svc.Relay(c.Request().Context(), verify.MessageRequest{
			Tenant: tenant, To: req.To, Body: req.Body, Channel: req.Channel, Locale: req.Locale,
			UserID: req.UserID, ClientIP: req.ClientIP, Roaming: req.Roaming, CallbackURL: req.CallbackURL,
		})
		if err != nil {
			h.metrics.relayed.WithLabelValues("none", verify.ErrorCode(err)).Inc()
			return 0, nil, err
		}
		h.metrics.relayed.WithLabelValues(string(v.Channel), "created").Inc()
		b, err := MessageView(v)
		return http.StatusCreated, b, err
	}
	if key != "" {
		return h.idempotent(c, tenant, key, &req, do)
	}
	status, body, err := do()
	if err != nil {
		return err
	}
	return c.JSONBlob(status, body)
}

func (h *handler) getMessage(c echo.Context, tenant string) error {
	v, err := h.svc.Get(c.Request().Context(), tenant, c.Param("id"))
	if err != nil {
		return err
	}
	if v.Kind != verify.KindMessage {
		return verify.ErrNotFound // a verification is read at /v1/verifications
	}
	b, err := MessageView(v)
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, b)
}

// relayBody is what an IdP's request asks: the number and the text, and
// the channel and locale when its shape can carry them.
type relayBody struct {
	To, Body, Channel, Locale string
}

// relayIdP relays the request of an IdP in its own shape (RouteRelay).
// The query may add channel (sms, call, auto) and locale, which most IdPs
// cannot put in their bodies.
func (h *handler) relayIdP(c echo.Context) error {
	parse, ok := Relayers[c.Param("idp")]
	if !ok {
		return &Error{Status: http.StatusNotFound, Code: verify.CodeNotFound,
			Message: fmt.Sprintf("no relay for %q: the relays are /v1/relay/{%s}", c.Param("idp"), strings.Join(slices.Sorted(maps.Keys(Relayers)), ","))}
	}
	tenant, err := h.relayTenant(c)
	if err != nil {
		return err
	}
	r := c.Request()
	if r.ContentLength > h.limit {
		return h.tooLarge()
	}
	raw, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, h.limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return h.tooLarge()
		}
		return invalidRequest("request body could not be read")
	}
	rb, err := parse(raw, r.Header.Get(echo.HeaderContentType))
	if err != nil {
		return err
	}
	q := c.QueryParams()
	req := messageRequest{To: rb.To, Body: rb.Body, Channel: verify.Channel(firstNonEmpty(q.Get("channel"), rb.Channel)),
		Locale: firstNonEmpty(q.Get("locale"), rb.Locale)}
	key, err := idemKey(c)
	if err != nil {
		return err
	}
	return h.relay(c, tenant, key, req)
}

// relayTenant authenticates an IdP's relay request with a tenant's API
// key in whichever form the IdP can send it: Authorization: Bearer <key>
// (Authentik's bearer, Kratos's api_key, the Keycloak plugin's token in a
// header), HTTP Basic with the key as the password and any user name
// (Authentik's and Kratos's basic auth; Zitadel through a URL's user
// information), or an X-API-Key header (Kratos's api_key with that name).
func (h *handler) relayTenant(c echo.Context) (string, error) {
	r := c.Request()
	var key string
	if _, pass, ok := r.BasicAuth(); ok {
		key = pass
	} else if scheme, k, ok := strings.Cut(r.Header.Get(echo.HeaderAuthorization), " "); ok && strings.EqualFold(scheme, "Bearer") {
		key = strings.TrimSpace(k)
	} else if k := r.Header.Get("X-API-Key"); k != "" {
		key = strings.TrimSpace(k)
	}
	if key == "" {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Basic realm="verigate"`)
		return "", &Error{Status: http.StatusUnauthorized, Code: codeUnauthorized,
			Message: "missing API key: send Authorization: Bearer <key>, HTTP Basic auth with the key as the password, or X-API-Key: <key>"}
	}
	tenant := h.keys.tenant(key)
	if tenant == "" {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Basic realm="verigate"`)
		return "", &Error{Status: http.StatusUnauthorized, Code: codeUnauthorized, Message: "invalid API key"}
	}
	return tenant, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// authentikBody reads Authentik's generic SMS provider: JSON {"From",
// "To", "Body": the code alone, "Message": "Use this code to authenticate
// in authentik: <code>"}. The message is what the person gets.
func authentikBody(raw []byte, _ string) (relayBody, error) {
	var b struct {
		To      string `json:"To"`
		Body    string `json:"Body"`
		Message string `json:"Message"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return relayBody{}, invalidRequest("the body is not Authentik's JSON {From, To, Body, Message}: %v", err)
	}
	text := firstNonEmpty(b.Message, b.Body)
	if b.To == "" || text == "" {
		return relayBody{}, invalidRequest("Authentik's request needs To and Message (or Body)")
	}
	return relayBody{To: b.To, Body: text}, nil
}

// zitadelBody reads Zitadel's HTTP SMS provider: JSON {"contextInfo":
// {"recipientPhoneNumber"}, "templateData": {"text"}, "args": {"code"}}.
func zitadelBody(raw []byte, _ string) (relayBody, error) {
	var b struct {
		ContextInfo struct {
			RecipientPhoneNumber string `json:"recipientPhoneNumber"`
		} `json:"contextInfo"`
		TemplateData struct {
			Text string `json:"text"`
		} `json:"templateData"`
		Args struct {
			Code string `json:"code"`
		} `json:"args"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return relayBody{}, invalidRequest("the body is not Zitadel's JSON {contextInfo, templateData, args}: %v", err)
	}
	text := b.TemplateData.Text
	if text == "" && b.Args.Code != "" {
		text = b.Args.Code
	}
	if b.ContextInfo.RecipientPhoneNumber == "" || text == "" {
		return relayBody{}, invalidRequest("Zitadel's request needs contextInfo.recipientPhoneNumber and templateData.text")
	}
	return relayBody{To: b.ContextInfo.RecipientPhoneNumber, Body: text}, nil
}

// genericBody reads the shapes an operator writes into the IdP: a flat
// JSON object or a form with the number in to (or To, recipient, phone)
// and the text in body (or Body, message, text), and optionally channel
// and locale. Kratos's courier http channel sends what its Jsonnet body
// makes, as JSON or as a form; the Keycloak SMS authenticator
// (netzbegruenung/keycloak-mfa-plugins) sends its configured receiver,
// message and sender attributes, as JSON or as a form.
func genericBody(raw []byte, contentType string) (relayBody, error) {
	fields := map[string]string{}
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/x-www-form-urlencoded" {
		vals, err := url.ParseQuery(string(raw))
		if err != nil {
			return relayBody{}, invalidRequest("the form body does not parse: %v", err)
		}
		for k, v := range vals {
			if len(v) > 0 {
				fields[strings.ToLower(k)] = v[0]
			}
		}
	} else {
		var obj map[string]any
		if err := json.Unmarshal(raw, &obj); err != nil {
			return relayBody{}, invalidRequest("the body is neither a JSON object nor a form (Content-Type application/x-www-form-urlencoded): %v", err)
		}
		for k, v := range obj {
			switch v := v.(type) {
			case string:
				fields[strings.ToLower(k)] = v
			case []any: // a receiver template such as ["%s"]
				if len(v) == 1 {
					if s, ok := v[0].(string); ok {
						fields[strings.ToLower(k)] = s
					}
				}
			}
		}
	}
	pick := func(names ...string) string {
		for _, n := range names {
			if v := fields[n]; v != "" {
				return v
			}
		}
		return ""
	}
	rb := relayBody{
		To:   pick("to", "recipient", "phone", "phone_number", "phonenumber"),
		Body: pick("body", "message", "text"), Channel: pick("channel"), Locale: pick("locale"),
	}
	if rb.To == "" || rb.Body == "" {
		return relayBody{}, invalidRequest("the request needs the number in to and the text in body (see docs/INTEGRATION.md)")
	}
	return rb, nil
}
