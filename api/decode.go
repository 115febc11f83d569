package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/internal/flatjson"
)

// tooLarge is the error for a body over the limit.
var tooLarge = &Error{Status: http.StatusRequestEntityTooLarge, Code: "invalid_request", Message: "request body too large"}

// decode reads the request body as exactly one JSON object into dst:
// unknown fields, wrong types, trailing data and bodies over the limit are
// errors whose message names what is wrong.
func (h *handler) decode(c echo.Context, dst any) error {
	r := c.Request()
	if r.ContentLength > h.limit {
		return h.tooLarge()
	}
	return h.decodeFrom(http.MaxBytesReader(c.Response(), r.Body, h.limit), dst)
}

// decodeFrom reads body whole and decodes it. When reading fails (over
// the limit, a broken connection) it decodes what arrived and then the
// error, exactly as a decoder streaming from body would have met them, so
// the answer names the first thing wrong in the order the client sent it.
func (h *handler) decodeFrom(body io.Reader, dst any) error {
	b, err := io.ReadAll(body)
	if err != nil {
		return h.decodeJSON(io.MultiReader(bytes.NewReader(b), failingReader{err}), dst)
	}
	return h.decodeBody(string(b), dst)
}

// failingReader fails every read with err.
type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

// decodeBody decodes a whole body. Request types that are flatjson.Setters
// take the usual bodies without reflection; every other body, and every
// mistake in one, goes through encoding/json, which also words the errors.
func (h *handler) decodeBody(body string, dst any) error {
	if s, ok := dst.(flatjson.Setter); ok {
		if flatjson.Scan(body, s) {
			return nil
		}
		reflect.ValueOf(dst).Elem().SetZero()
	}
	return h.decodeJSON(strings.NewReader(body), dst)
}

// decodeJSON decodes the body r into dst with encoding/json.
func (h *handler) decodeJSON(r io.Reader, dst any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return h.decodeError(err, dst)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return h.tooLarge()
		}
		return invalidRequest("request body has data after the JSON object: send exactly one object")
	}
	return nil
}

func (h *handler) tooLarge() error {
	return &Error{Status: tooLarge.Status, Code: tooLarge.Code, Message: fmt.Sprintf("request body too large: at most %d bytes", h.limit)}
}

func (h *handler) decodeError(err error, dst any) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return h.tooLarge()
	case errors.Is(err, io.EOF):
		return invalidRequest("request body is empty: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalidRequest("request body ends in the middle of the JSON object")
	case errors.As(err, &se):
		return invalidRequest("request body is not valid JSON (at byte %d): %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	case errors.As(err, &ute):
		if ute.Field == "" {
			return invalidRequest("request body must be a JSON object, not %s", jsonKind(ute.Value))
		}
		return invalidRequest("field %q must be %s, not %s", ute.Field, jsonTypeName(ute.Type), jsonKind(ute.Value))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return invalidRequest("unknown field %s: the fields are %s", name, fieldList(dst))
	}
	return invalidRequest("request body is not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(v string) string {
	v, _, _ = strings.Cut(v, " ") // "number 1.5" → "number"
	switch v {
	case "object", "array":
		return "an " + v
	case "bool":
		return "true or false"
	case "":
		return "this value"
	}
	return "a " + v
}

func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice:
		return "an array"
	}
	return "of another type"
}

// fieldList names dst's JSON fields for the unknown-field message.
func fieldList(dst any) string {
	t := reflect.TypeOf(dst)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var names []string
	for i := range t.NumField() {
		if n, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); n != "" && n != "-" {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}
