package client

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/verigate/verigate/api"
)

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatalf("api/openapi.json does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("api/openapi.json is not valid: %v", err)
	}
	return doc
}

// TestClientOperationsInOpenAPI: every operation the client calls is in
// api/openapi.json with its method, path and query parameters, every
// field of its request body is in the request schema with the same JSON
// type (and every required one is sent), and every field it reads from a
// 2xx answer is in that answer's schema with the same type (and every
// required one is read).
func TestClientOperationsInOpenAPI(t *testing.T) {
	doc := loadSpec(t)
	for _, op := range operations {
		t.Run(op.method+" "+op.path, func(t *testing.T) {
			item := doc.Paths.Value(op.path)
			if item == nil {
				t.Fatalf("path %s is not in the document", op.path)
			}
			o := item.GetOperation(op.method)
			if o == nil {
				t.Fatalf("%s %s is not in the document", op.method, op.path)
			}
			for _, q := range op.query {
				if o.Parameters.GetByInAndName("query", q) == nil {
					t.Errorf("query parameter %q is not in the document", q)
				}
			}
			if strings.Contains(op.path, "{id}") && o.Parameters.GetByInAndName("path", "id") == nil && item.Parameters.GetByInAndName("path", "id") == nil {
				t.Errorf("path parameter id is not in the document")
			}
			if op.request == nil {
				if o.RequestBody != nil && o.RequestBody.Value.Required {
					t.Errorf("the document requires a body the client does not send")
				}
			} else {
				if o.RequestBody == nil {
					t.Fatal("the client sends a body the document has none for")
				}
				mt := o.RequestBody.Value.Content.Get("application/json")
				if mt == nil {
					t.Fatal("the request body is not application/json in the document")
				}
				compare(t, "request", reflect.TypeOf(op.request), mt.Schema.Value, true)
			}
			var ok2xx int
			for code, r := range o.Responses.Map() {
				if !strings.HasPrefix(code, "2") || r.Value.Content == nil {
					continue
				}
				mt := r.Value.Content.Get("application/json")
				if mt == nil {
					t.Errorf("answer %s is not application/json", code)
					continue
				}
				ok2xx++
				compare(t, "answer "+code, reflect.TypeOf(op.response), mt.Schema.Value, true)
			}
			if ok2xx == 0 {
				t.Error("the document has no JSON 2xx answer")
			}
		})
	}
}

var timeType = reflect.TypeFor[time.Time]()

// fields returns the JSON fields of struct type typ, embedded ones
// flattened, by JSON name.
func fields(typ reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			for k, v := range fields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// compare checks Go type typ against schema s; where both are objects,
// field by field (required: every required property must be a field).
func compare(t *testing.T, at string, typ reflect.Type, s *openapi3.Schema, required bool) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	want := ""
	switch {
	case typ == timeType:
		want = "string"
		if s.Format != "date-time" {
			t.Errorf("%s: a time, but the document's format is %q", at, s.Format)
		}
	case typ.Kind() == reflect.String:
		want = "string"
	case typ.Kind() == reflect.Bool:
		want = "boolean"
	case typ.Kind() >= reflect.Int && typ.Kind() <= reflect.Uint64:
		want = "integer"
	case typ.Kind() == reflect.Slice:
		want = "array"
	case typ.Kind() == reflect.Struct:
		want = "object"
	default:
		t.Fatalf("%s: no JSON type for %v", at, typ)
	}
	if s.Type == nil || !s.Type.Is(want) {
		t.Errorf("%s: the client has %s (%v), the document %v", at, want, typ, s.Type)
		return
	}
	switch want {
	case "array":
		compare(t, at+"[]", typ.Elem(), s.Items.Value, required)
	case "object":
		if typ == timeType {
			return
		}
		fs := fields(typ)
		for name, ft := range fs {
			p := s.Properties[name]
			if p == nil {
				t.Errorf("%s: field %q is not in the document", at, name)
				continue
			}
			compare(t, at+"."+name, ft, p.Value, required)
		}
		for _, r := range s.Required {
			if _, ok := fs[r]; !ok && required {
				t.Errorf("%s: the document's required field %q is not in the client's %v", at, r, typ)
			}
		}
	}
}

// enum returns the enum of the schema at name (a component) and, for
// a property, .prop.
func enum(t *testing.T, doc *openapi3.T, name, prop string) []string {
	t.Helper()
	ref := doc.Components.Schemas[name]
	if ref == nil {
		t.Fatalf("no schema %s", name)
	}
	s := ref.Value
	if prop != "" {
		if s.Properties[prop] == nil {
			t.Fatalf("no property %s.%s", name, prop)
		}
		s = s.Properties[prop].Value
	}
	var out []string
	for _, v := range s.Enum {
		out = append(out, v.(string))
	}
	return out
}

// TestClientConstantsInOpenAPI: the client's statuses, channels, call
// modes and error codes are the document's.
func TestClientConstantsInOpenAPI(t *testing.T) {
	doc := loadSpec(t)
	tests := []struct {
		schema, prop string
		client       []string
		exactly      bool
	}{
		{"Status", "", []string{string(StatusPending), string(StatusApproved), string(StatusDenied), string(StatusCanceled), string(StatusExpired), string(StatusMaxAttemptsReached), string(StatusFailed)}, true},
		{"StartRequest", "channel", []string{string(ChannelSMS), string(ChannelCall), string(ChannelAuto)}, true},
		{"StartRequest", "call_mode", []string{string(CallModeApprove), string(CallModeCode)}, true},
		{"MessageStatus", "", []string{string(MessagePending), string(MessageDelivered), string(MessageUndelivered), string(MessageFailed), string(MessageExpired), string(MessageCanceled)}, true},
		{"MessageRequest", "channel", []string{string(ChannelSMS), string(ChannelCall), string(ChannelAuto)}, true},
		{"ErrorCode", "", []string{CodeInvalidRequest, CodeInvalidNumber, CodeUnsupportedNumber, CodeCountryNotAllowed, CodeRateLimited, CodeNotFound, CodeNotPending, CodeUnauthorized, CodeUnavailable}, true},
	}
	for _, tt := range tests {
		got := enum(t, doc, tt.schema, tt.prop)
		for _, c := range tt.client {
			if !slices.Contains(got, c) {
				t.Errorf("%s %s: the client's %q is not in the document's %v", tt.schema, tt.prop, c, got)
			}
		}
		if tt.exactly && len(got) != len(tt.client) {
			t.Errorf("%s %s: the document has %v, the client %v", tt.schema, tt.prop, got, tt.client)
		}
	}
}
