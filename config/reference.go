package config

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
)

// WriteReference writes the configuration reference in Markdown: every key
// of the YAML file, the environment variable that sets it, its type, its
// default (Default(), before --dev fills anything in) and whether it is a
// secret. docs/CONFIG.md is this output (`verigate config reference`); a
// test fails when the two drift apart.
func WriteReference(w io.Writer) error {
	var b strings.Builder
	b.WriteString(`# Configuration reference

Generated from the code by ` + "`verigate config reference`" + ` (a test fails when this file and the
code disagree): every key of the YAML file, the environment variable that sets it, its type and
its default. Keys of list entries (` + "`[]`" + `) come from the YAML file; the environment sets a field
of an existing entry by its index (` + "`_0_`" + `, ` + "`_1_`" + ` … in place of ` + "`_N_`" + `). A secret may also be
read from the file named by the variable with ` + "`_FILE`" + ` appended. What each setting means is in
the document of its feature (README, docs/).

| key | environment | type | default | secret |
|---|---|---|---|---|
`)
	writeReference(&b, reflect.ValueOf(Default()), "", envPrefix)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeReference(b *strings.Builder, v reflect.Value, key, env string) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fkey, fenv := name, env+"_"+strings.ToUpper(name)
		if key != "" {
			fkey = key + "." + name
		}
		fv := v.Field(i)
		switch {
		case f.Type.Kind() == reflect.Struct && f.Type != durationType:
			writeReference(b, fv, fkey, fenv)
			continue
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			// The entries' fields, from a zero entry; the default is the
			// list's length.
			writeReference(b, reflect.New(f.Type.Elem()).Elem(), fkey+"[]", fenv+"_N")
			if fv.Len() > 0 {
				fmt.Fprintf(b, "| `%s` | (YAML only) | list | %d entries (see its document) | |\n", fkey, fv.Len())
			}
			continue
		}
		secret := ""
		if f.Tag.Get("secret") == "true" {
			secret = "yes"
		}
		def := ""
		if !strings.HasSuffix(key, "[]") && !strings.Contains(key, "[]") {
			def = defaultText(fv)
		}
		fmt.Fprintf(b, "| `%s` | `%s` | %s | %s | %s |\n", fkey, fenv, typeText(f.Type), def, secret)
	}
}

func typeText(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.Pointer:
		return typeText(t.Elem()) + " (optional)"
	case t.Kind() == reflect.Slice:
		return "list of " + typeText(t.Elem())
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "integer"
	case t.Kind() == reflect.Float64:
		return "number"
	}
	return t.Kind().String()
}

func defaultText(v reflect.Value) string {
	if v.IsZero() {
		return ""
	}
	switch {
	case v.Type() == durationType:
		return "`" + time.Duration(v.Int()).String() + "`"
	case v.Kind() == reflect.Pointer:
		return defaultText(v.Elem())
	case v.Kind() == reflect.Slice:
		parts := make([]string, v.Len())
		for i := range v.Len() {
			parts[i] = fmt.Sprint(v.Index(i).Interface())
		}
		return "`[" + strings.Join(parts, ", ") + "]`"
	}
	return "`" + fmt.Sprint(v.Interface()) + "`"
}
