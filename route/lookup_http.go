package route

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/verigate/verigate/internal/httpclient"
)

// ErrLookup wraps every failed number lookup: the provider could not be
// reached, refused, or answered something unreadable.
var ErrLookup = errors.New("number lookup failed")

// maxLookupBody bounds what is read of a provider's answer.
const maxLookupBody = 1 << 20

// HTTPLookup is a generic HTTP HLR / number-lookup provider: GET on a URL
// template, JSON answer, fields picked by dot paths (LookupConfig).
type HTTPLookup struct {
	cfg    LookupConfig
	client *http.Client
}

var _ NumberLookup = (*HTTPLookup)(nil)

// NewHTTPLookup returns the provider cfg describes; client is one of its
// own if nil (httpclient.NewClient: connections kept for reuse under load) (the Engine bounds each lookup with
// LookupConfig.Timeout through the context).
func NewHTTPLookup(cfg LookupConfig, client *http.Client) (*HTTPLookup, error) {
	if !strings.Contains(cfg.URL, "{number}") {
		return nil, errors.New("http lookup: url needs {number}")
	}
	if client == nil {
		client = httpclient.NewClient(httpclient.Options{})
	}
	return &HTTPLookup{cfg: cfg, client: client}, nil
}

// Lookup implements NumberLookup.
func (h *HTTPLookup) Lookup(ctx context.Context, e164 string) (LookupResult, error) {
	u := strings.ReplaceAll(h.cfg.URL, "{number}", url.QueryEscape(e164))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return LookupResult{}, fmt.Errorf("%w: %w", ErrLookup, err)
	}
	req.Header.Set("Accept", "application/json")
	if h.cfg.Username != "" {
		req.SetBasicAuth(h.cfg.Username, h.cfg.Password)
	}
	if h.cfg.Header != "" {
		req.Header.Set(h.cfg.Header, h.cfg.Token)
	}
	var doc any
	if err := doJSON(h.client, req, &doc); err != nil {
		return LookupResult{}, err
	}
	res := LookupResult{Source: "hlr"}
	if v, ok := pick(doc, h.cfg.RoamingField); ok {
		res.Roaming = asBool(v)
	}
	if v, ok := pick(doc, h.cfg.PortedField); ok {
		res.Ported = asBool(v)
	}
	if v, ok := pick(doc, h.cfg.NetworkField); ok {
		res.Network = asString(v)
	}
	if v, ok := pick(doc, h.cfg.CountryField); ok {
		if c := strings.ToUpper(asString(v)); isCountry(c) {
			res.Country = c
		}
	}
	if v, ok := pick(doc, h.cfg.LineTypeField); ok {
		res.LineType = normalizeLineType(asString(v))
	}
	return res, nil
}

// doJSON runs req and decodes a 2xx JSON answer into v.
func doJSON(client *http.Client, req *http.Request, v any) error {
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrLookup, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxLookupBody))
	if err != nil {
		return fmt.Errorf("%w: read answer: %w", ErrLookup, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w: %s answered %d: %s", ErrLookup, req.URL.Host, resp.StatusCode, snippet(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: answer is not JSON: %w", ErrLookup, err)
	}
	return nil
}

func snippet(b []byte) string {
	const max = 200
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// pick follows a dot path ("result.roaming", "items.0.network") into a
// decoded JSON document.
func pick(doc any, path string) (any, bool) {
	if path == "" {
		return nil, false
	}
	cur := doc
	for _, part := range strings.Split(path, ".") {
		switch node := cur.(type) {
		case map[string]any:
			v, ok := node[part]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(node) {
				return nil, false
			}
			cur = node[i]
		default:
			return nil, false
		}
	}
	return cur, cur != nil
}

// asBool reads the forms HLR APIs use for yes and no.
func asBool(v any) *bool {
	var b bool
	switch x := v.(type) {
	case bool:
		b = x
	case float64:
		b = x != 0
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "yes", "y", "1", "roaming", "ported":
			b = true
		case "false", "no", "n", "0", "home", "not_ported":
		default:
			return nil
		}
	default:
		return nil
	}
	return &b
}

func asString(v any) string {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// normalizeLineType maps provider line type names (Twilio's camelCase,
// libphonenumber's upper case, common HLR words) onto the Line* constants;
// "" when unknown.
func normalizeLineType(s string) string {
	switch strings.ToLower(strings.NewReplacer("_", "", "-", "", " ", "").Replace(s)) {
	case "mobile", "cellular", "wireless", "gsm":
		return LineMobile
	case "landline", "fixed", "fixedline":
		return LineFixed
	case "fixedlineormobile":
		return LineFixedOrMobile
	case "fixedvoip", "nonfixedvoip", "voip":
		return LineVoIP
	case "tollfree":
		return LineTollFree
	case "premium", "premiumrate":
		return LinePremiumRate
	case "sharedcost":
		return LineSharedCost
	case "personal", "personalnumber":
		return LinePersonal
	case "pager":
		return LinePager
	case "uan":
		return LineUAN
	case "voicemail":
		return LineVoicemail
	}
	return ""
}
