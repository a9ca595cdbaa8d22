// Package keyed reads and sets the fields of a typed configuration (a
// struct) by their keys: a field's key is its `flag` tag, which is also the
// name of the command-line flag that sets it, so a flag and a sweep grid's
// key are the same setting (rundir.TrainConfig, the analysis's
// configuration in cmd/certify). Struct fields without a tag are descended
// into (an embedded configuration, a nested data set spec).
//
// A field may be a string, bool, int, uint64, float64, []int (a
// comma-separated list, "30,60"), or any type whose pointer has the
// flag.Value methods Set(string) error and String() string. Values are
// parsed and printed as package flag does, so a value a grid gives is
// refused with the flag's own words.
package keyed

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// ErrUnknownKey is wrapped by Set and Value for a key the configuration
// has not.
var ErrUnknownKey = errors.New("unknown key")

// ErrParse and ErrRange are the flag package's texts for a value it cannot
// parse or that is out of range, so a value refused here reads as the flag
// would refuse it.
var (
	ErrParse = errors.New("parse error")
	ErrRange = errors.New("value out of range")
)

// Value is a field type of its own that parses and prints itself (the
// methods of flag.Value on the field's pointer).
type Value interface {
	Set(string) error
	String() string
}

// Kinder is a Value that says which JSON type it takes ("string",
// "number" or "bool"); a Value without it takes any.
type Kinder interface {
	Kind() string
}

// walk visits the fields with a `flag` tag of the struct v, descending
// into untagged struct fields.
func walk(v reflect.Value, visit func(key string, f reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if k := sf.Tag.Get("flag"); k != "" {
			visit(k, v.Field(i))
		} else if sf.Type.Kind() == reflect.Struct {
			walk(v.Field(i), visit)
		}
	}
}

// elem is the struct cfg points to; it panics when cfg is not a pointer to
// a struct (a programming error).
func elem(cfg any) reflect.Value {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("keyed: want a pointer to a struct, found %T", cfg))
	}
	return v.Elem()
}

// Field returns the field of key in the struct cfg points to; the zero
// reflect.Value for an unknown key.
func Field(cfg any, key string) reflect.Value {
	var found reflect.Value
	walk(elem(cfg), func(k string, f reflect.Value) {
		if k == key {
			found = f
		}
	})
	return found
}

// Keys returns the keys of the struct cfg points to, sorted.
func Keys(cfg any) []string {
	var ks []string
	walk(elem(cfg), func(k string, _ reflect.Value) { ks = append(ks, k) })
	sort.Strings(ks)
	return ks
}

// Kind is the JSON type key takes: "string" (a string or a list, given as
// "30,60"), "number", "bool"; "" for an unknown key or a Value that does
// not say (any is accepted).
func Kind(cfg any, key string) string {
	f := Field(cfg, key)
	if !f.IsValid() {
		return ""
	}
	if v, ok := f.Addr().Interface().(Value); ok {
		if k, ok := v.(Kinder); ok {
			return k.Kind()
		}
		return ""
	}
	switch f.Kind() {
	case reflect.String, reflect.Slice:
		return "string"
	case reflect.Bool:
		return "bool"
	}
	return "number"
}

// Set sets key from its text as package flag parses the flag's value
// (strconv.ParseBool, ParseInt/ParseUint with base prefixes, ParseFloat,
// a Value's own Set); a []int field takes a comma-separated list ("" for
// none). An unknown key is an error wrapping ErrUnknownKey and naming it;
// a value that does not parse is ErrParse or ErrRange (or the Value's
// error).
func Set(cfg any, key, text string) error {
	f := Field(cfg, key)
	if !f.IsValid() {
		return fmt.Errorf("%w %q", ErrUnknownKey, key)
	}
	if v, ok := f.Addr().Interface().(Value); ok {
		return v.Set(text)
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(text)
	case reflect.Bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return ErrParse
		}
		f.SetBool(b)
	case reflect.Int:
		n, err := strconv.ParseInt(text, 0, strconv.IntSize)
		if err != nil {
			return numError(err)
		}
		f.SetInt(n)
	case reflect.Uint64:
		n, err := strconv.ParseUint(text, 0, 64)
		if err != nil {
			return numError(err)
		}
		f.SetUint(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return numError(err)
		}
		f.SetFloat(x)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.Int {
			return fmt.Errorf("key %q has a type (%s) Set does not parse", key, f.Type())
		}
		var list []int
		for _, p := range strings.Split(text, ",") {
			if p = strings.TrimSpace(p); p == "" && text == "" {
				break
			}
			n, err := strconv.Atoi(p)
			if err != nil {
				return fmt.Errorf("%q is not a comma-separated list of integers", text)
			}
			list = append(list, n)
		}
		f.Set(reflect.ValueOf(list))
	default:
		return fmt.Errorf("key %q has a type (%s) Set does not parse", key, f.Type())
	}
	return nil
}

func numError(err error) error {
	if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
		return ErrRange
	}
	return ErrParse
}

// Get returns key's value as its flag prints it (flag.Value.String). An
// unknown key is an error wrapping ErrUnknownKey.
func Get(cfg any, key string) (string, error) {
	f := Field(cfg, key)
	if !f.IsValid() {
		return "", fmt.Errorf("%w %q", ErrUnknownKey, key)
	}
	if v, ok := f.Addr().Interface().(Value); ok {
		return v.String(), nil
	}
	switch f.Kind() {
	case reflect.String:
		return f.String(), nil
	case reflect.Bool:
		return strconv.FormatBool(f.Bool()), nil
	case reflect.Int:
		return strconv.FormatInt(f.Int(), 10), nil
	case reflect.Uint64:
		return strconv.FormatUint(f.Uint(), 10), nil
	case reflect.Float64:
		return strconv.FormatFloat(f.Float(), 'g', -1, 64), nil
	case reflect.Slice:
		if list, ok := f.Interface().([]int); ok {
			parts := make([]string, len(list))
			for i, n := range list {
				parts[i] = strconv.Itoa(n)
			}
			return strings.Join(parts, ","), nil
		}
	}
	return "", fmt.Errorf("key %q has a type (%s) Value does not print", key, f.Type())
}

// Values returns every key's value (Get).
func Values(cfg any) map[string]string {
	m := map[string]string{}
	for _, k := range Keys(cfg) {
		m[k], _ = Get(cfg, k)
	}
	return m
}
