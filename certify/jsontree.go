package certify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// jsonField is one key of a jsonObject.
type jsonField struct {
	key string
	val any
}

// jsonObject is a JSON object whose keys keep their order (a struct's
// field order), unlike a map.
type jsonObject []jsonField

// MarshalJSON writes the object's keys in order.
func (o jsonObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.key)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(f.val)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.key, err)
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

var marshalerType = reflect.TypeOf((*json.Marshaler)(nil)).Elem()

// jsonTree converts v to a tree of jsonObject, []any and JSON scalars as
// encoding/json would encode it (field names and omitempty from the json
// tags, "-" skipped), except that a non-finite float becomes nil (null) and
// adds a note "PATH: VALUE (not finite), written as null" to notes. Paths
// are dotted keys with [i] for list elements; a top-level key in skip is
// known not computed and gets no note of its own. A value with its own
// MarshalJSON is converted through it when that succeeds, else walked.
func jsonTree(v reflect.Value, path string, skip map[string]bool, notes *[]string) any {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		if v.Kind() == reflect.Pointer && v.Type().Implements(marshalerType) {
			if b, err := v.Interface().(json.Marshaler).MarshalJSON(); err == nil {
				return json.RawMessage(b)
			}
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			if !skip[path] {
				*notes = append(*notes, fmt.Sprintf("%s: %v (not finite), written as null", path, f))
			}
			return nil
		}
		return f
	case reflect.Struct:
		t := v.Type()
		var obj jsonObject
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if name == "" {
				name = sf.Name
			}
			fv := v.Field(i)
			if strings.Contains(","+opts+",", ",omitempty,") && isEmptyJSON(fv) {
				continue
			}
			obj = append(obj, jsonField{name, jsonTree(fv, join(path, name), skip, notes)})
		}
		if obj == nil {
			obj = jsonObject{}
		}
		return obj
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		keys := v.MapKeys()
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = fmt.Sprint(k.Interface())
		}
		order := make([]int, len(keys))
		for i := range order {
			order[i] = i
		}
		sortByName(order, names)
		obj := jsonObject{}
		for _, i := range order {
			obj = append(obj, jsonField{names[i], jsonTree(v.MapIndex(keys[i]), join(path, names[i]), skip, notes)})
		}
		return obj
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = jsonTree(v.Index(i), path+"["+strconv.Itoa(i)+"]", skip, notes)
		}
		return out
	}
	return v.Interface()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortByName(order []int, names []string) {
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && names[order[j]] < names[order[j-1]]; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
}

// isEmptyJSON is encoding/json's omitempty test.
func isEmptyJSON(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	case reflect.Interface, reflect.Pointer:
		return v.IsNil()
	}
	return false
}
