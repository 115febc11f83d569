package route

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/verigate/verigate/internal/httpclient"
)

// DefaultTwilioLookupURL is Twilio Lookup's base URL.
const DefaultTwilioLookupURL = "https://lookups.twilio.com"

// TwilioLookup asks Twilio Lookup v2 for line type intelligence:
// GET {base}/v2/PhoneNumbers/{number}?Fields=line_type_intelligence with
// Basic auth. It tells the line type (settling fixed_line_or_mobile for
// US and CA numbers) and the carrier; it says nothing about roaming.
type TwilioLookup struct {
	base       string
	user, pass string
	client     *http.Client
}

var _ NumberLookup = (*TwilioLookup)(nil)

// NewTwilioLookup returns a Twilio Lookup client: cfg.URL is the base URL
// (DefaultTwilioLookupURL if empty), cfg.Username and cfg.Password the
// Account SID (or API key) and its secret. client is one of its own if nil
// (httpclient.NewClient).
func NewTwilioLookup(cfg LookupConfig, client *http.Client) (*TwilioLookup, error) {
	if cfg.Username == "" || cfg.Password == "" {
		return nil, errors.New("twilio lookup: username and password are required")
	}
	base := strings.TrimRight(cfg.URL, "/")
	if base == "" {
		base = DefaultTwilioLookupURL
	}
	if client == nil {
		client = httpclient.NewClient(httpclient.Options{})
	}
	return &TwilioLookup{base: base, user: cfg.Username, pass: cfg.Password, client: client}, nil
}

// twilioPhoneNumber is the part of Lookup v2's answer read here.
type twilioPhoneNumber struct {
	PhoneNumber          string `json:"phone_number"`
	CountryCode          string `json:"country_code"`
	Valid                *bool  `json:"valid"`
	LineTypeIntelligence *struct {
		CarrierName       *string `json:"carrier_name"`
		ErrorCode         *int    `json:"error_code"`
		MobileCountryCode *string `json:"mobile_country_code"`
		MobileNetworkCode *string `json:"mobile_network_code"`
		Type              *string `json:"type"`
	} `json:"line_type_intelligence"`
}

// Lookup implements NumberLookup.
func (t *TwilioLookup) Lookup(ctx context.Context, e164 string) (LookupResult, error) {
	u := t.base + "/v2/PhoneNumbers/" + url.PathEscape(e164) + "?Fields=line_type_intelligence"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return LookupResult{}, fmt.Errorf("%w: %w", ErrLookup, err)
	}
	req.SetBasicAuth(t.user, t.pass)
	req.Header.Set("Accept", "application/json")
	var pn twilioPhoneNumber
	if err := doJSON(t.client, req, &pn); err != nil {
		return LookupResult{}, err
	}
	res := LookupResult{Source: "twilio"}
	lti := pn.LineTypeIntelligence
	if lti == nil {
		return res, nil
	}
	if lti.ErrorCode != nil && *lti.ErrorCode != 0 {
		return res, fmt.Errorf("%w: twilio line type intelligence error %d", ErrLookup, *lti.ErrorCode)
	}
	if lti.Type != nil {
		res.LineType = normalizeLineType(*lti.Type)
	}
	if lti.CarrierName != nil {
		res.Network = *lti.CarrierName
	}
	return res, nil
}
