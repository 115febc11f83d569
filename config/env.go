package config

import (
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

const envPrefix = "VERIGATE"

// applyEnv overlays environment variables on cfg. Each scalar field is
// VERIGATE_<PATH>; a field tagged secret:"true" may instead be read from
// the file named by VERIGATE_<PATH>_FILE (trailing newline trimmed).
// Lists of structures (policies, trunks, rules) come from YAML; the
// environment can set fields of their entries by index.
func applyEnv(cfg *Config, lookup func(string) (string, bool)) error {
	return walkEnv(reflect.ValueOf(cfg).Elem(), envPrefix, "", lookup)
}

var durationType = reflect.TypeOf(time.Duration(0))

func walkEnv(v reflect.Value, env, key string, lookup func(string) (string, bool)) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fenv := env + "_" + strings.ToUpper(name)
		fkey := name
		if key != "" {
			fkey = key + "." + name
		}
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			if err := walkEnv(fv, fenv, fkey, lookup); err != nil {
				return err
			}
			continue
		}
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			// Entries come from YAML; the environment may set fields of
			// the ones there, by index: VERIGATE_SIP_TRUNKS_0_PASSWORD.
			for j := range fv.Len() {
				if err := walkEnv(fv.Index(j), fmt.Sprintf("%s_%d", fenv, j), fmt.Sprintf("%s[%d]", fkey, j), lookup); err != nil {
					return err
				}
			}
			continue
		}
		raw, ok := lookup(fenv)
		if !ok && f.Tag.Get("secret") == "true" {
			if path, fok := lookup(fenv + "_FILE"); fok {
				data, err := os.ReadFile(path)
				if err != nil {
					return fmt.Errorf("config: %s_FILE: %w", fenv, err)
				}
				raw, ok = strings.TrimRight(string(data), "\r\n"), true
			}
		}
		if !ok {
			continue
		}
		if err := setScalar(fv, raw); err != nil {
			return fmt.Errorf("config: %s (%s): %w", fkey, fenv, err)
		}
	}
	return nil
}

func setScalar(v reflect.Value, raw string) error {
	raw = strings.TrimSpace(raw)
	if v.Kind() == reflect.Pointer {
		// An optional setting (nil: not set, so a default such as --dev's
		// may apply): the variable sets it.
		p := reflect.New(v.Type().Elem())
		if err := setScalar(p.Elem(), raw); err != nil {
			return err
		}
		v.Set(p)
		return nil
	}
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("not a duration such as 10m or 30s: %q", raw)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(raw)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("not true or false: %q", raw)
		}
		v.SetBool(b)
	case v.Kind() >= reflect.Int && v.Kind() <= reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("not a whole number: %q", raw)
		}
		v.SetInt(n)
	case v.Kind() == reflect.Float64:
		x, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", raw)
		}
		v.SetFloat(x)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var items []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("cannot be set from the environment; use the YAML file")
	}
	return nil
}
