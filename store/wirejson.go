package store

import (
	"github.com/verigate/verigate/internal/flatjson"
	"github.com/verigate/verigate/verify"
)

// The wire setters. A check decodes a verification's wire fields (wireFixed, the route and
// every event) on each request. The store writes them in flatjson's narrow
// form, so flatjson.Unmarshal reads them without reflection; anything else
// (escapes, non-ASCII text) goes to encoding/json. wirejson_test.go holds
// the two to the same results.
//
// SetMember implements flatjson.Setter.
func (w *wireEvent) SetMember(m flatjson.Member) bool {
	if m.Kind == flatjson.Int {
		switch m.Key {
		case "at":
			w.At = m.Int
		case "a":
			w.Attempt = m.Int
		default:
			return false
		}
		return true
	}
	if m.Kind != flatjson.String {
		return false
	}
	switch m.Key {
	case "t":
		w.Type = verify.EventType(m.Str)
	case "c":
		w.Channel = verify.Channel(m.Str)
	case "p":
		w.Provider = m.Str
	case "r":
		w.ProviderRef = m.Str
	case "e":
		w.ErrorCode = m.Str
	case "d":
		w.Detail = m.Str
	default:
		return false
	}
	return true
}

// SetMember implements flatjson.Setter.
func (f *wireFixed) SetMember(m flatjson.Member) bool {
	if m.Kind == flatjson.Int {
		if m.Key != "created" {
			return false
		}
		f.Created = m.Int
		return true
	}
	if m.Kind != flatjson.String {
		return false
	}
	switch m.Key {
	case "id":
		f.ID = m.Str
	case "to":
		f.To = m.Str
	case "country":
		f.Country = m.Str
	case "user_id":
		f.UserID = m.Str
	case "client_ip":
		f.ClientIP = m.Str
	case "callback_url":
		f.CallbackURL = m.Str
	default:
		return false
	}
	return true
}

// wireRoute is verify.Route as stored (its own JSON form).
type wireRoute verify.Route

// SetMember implements flatjson.Setter.
func (r *wireRoute) SetMember(m flatjson.Member) bool {
	if m.Kind == flatjson.Strings {
		if m.Key != "reasons" {
			return false
		}
		r.Reasons = m.List
		return true
	}
	if m.Kind != flatjson.String {
		return false
	}
	switch m.Key {
	case "channel":
		r.Channel = verify.Channel(m.Str)
	case "provider":
		r.Provider = m.Str
	case "trunk":
		r.Trunk = m.Str
	case "sender_id":
		r.SenderID = m.Str
	case "fallback":
		r.Fallback = verify.Channel(m.Str)
	default:
		return false
	}
	return true
}
