package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
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
// Every variable at fault is reported, not only the first.
func applyEnv(cfg *Config, lookup func(string) (string, bool)) error {
	var errs []error
	walkEnv(reflect.ValueOf(cfg).Elem(), envPrefix, "", lookup, &errs)
	return errors.Join(errs...)
}

var durationType = reflect.TypeOf(time.Duration(0))

func walkEnv(v reflect.Value, env, key string, lookup func(string) (string, bool), errs *[]error) {
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
			walkEnv(fv, fenv, fkey, lookup, errs)
			continue
		}
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			// Entries come from YAML; the environment may set fields of
			// the ones there, by index: VERIGATE_SIP_TRUNKS_0_PASSWORD.
			for j := range fv.Len() {
				walkEnv(fv.Index(j), fmt.Sprintf("%s_%d", fenv, j), fmt.Sprintf("%s[%d]", fkey, j), lookup, errs)
			}
			continue
		}
		raw, ok := lookup(fenv)
		if !ok && f.Tag.Get("secret") == "true" {
			if path, fok := lookup(fenv + "_FILE"); fok {
				data, err := os.ReadFile(path)
				if err != nil {
					*errs = append(*errs, fmt.Errorf("config: %s_FILE: %w", fenv, err))
					continue
				}
				raw, ok = strings.TrimRight(string(data), "\r\n"), true
			}
		}
		if !ok {
			continue
		}
		if err := setScalar(fv, raw); err != nil {
			*errs = append(*errs, fmt.Errorf("config: %s (%s): %w", fkey, fenv, err))
		}
	}
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

// otherEnv are VERIGATE_ variables read outside the configuration: the
// client subcommands' key (the tests' and tools' come by prefix).
var otherEnv = map[string]bool{"VERIGATE_API_KEY": true}

// otherEnvPrefixes mark the variables of the tests, benchmarks and soak
// runs, never the gateway's.
var otherEnvPrefixes = []string{"VERIGATE_TEST_", "VERIGATE_BENCH_", "VERIGATE_E2E_", "VERIGATE_SOAK_"}

// listIndex is the index of a list's entry in a variable's name
// (VERIGATE_SIP_TRUNKS_0_PASSWORD).
var listIndex = regexp.MustCompile(`_\d+_`)

// KnownEnv returns every variable the configuration reads, an entry of a
// list written with _N_ for its index (VERIGATE_SIP_TRUNKS_N_PASSWORD),
// sorted.
func KnownEnv() []string {
	set := map[string]bool{}
	knownEnv(reflect.TypeOf(Config{}), envPrefix, set)
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func knownEnv(t reflect.Type, env string, set map[string]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fenv := env + "_" + strings.ToUpper(name)
		switch {
		case f.Type.Kind() == reflect.Struct && f.Type != durationType:
			knownEnv(f.Type, fenv, set)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			knownEnv(f.Type.Elem(), fenv+"_N", set)
		default:
			set[fenv] = true
			if f.Tag.Get("secret") == "true" {
				set[fenv+"_FILE"] = true
			}
		}
	}
}

// UnknownEnv returns the VERIGATE_ variables of environ (os.Environ's
// KEY=value form) that nothing reads: a misspelt name would otherwise
// leave its setting at the default without a word. serve warns of each.
func UnknownEnv(environ []string) []string {
	known := map[string]bool{}
	for _, n := range KnownEnv() {
		known[n] = true
	}
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix+"_") || otherEnv[name] ||
			slices.ContainsFunc(otherEnvPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		if !known[listIndex.ReplaceAllString(name, "_N_")] {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	return unknown
}

// SuggestEnv returns the known variable closest to name (fewest edits),
// or "" when none is close (more than a third of the name differs).
func SuggestEnv(name string) string {
	pattern := listIndex.ReplaceAllString(name, "_N_")
	best, bestD := "", len(pattern)/3+1
	for _, k := range KnownEnv() {
		if d := editDistance(pattern, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (bytes: the names
// are ASCII).
func editDistance(a, b string) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
