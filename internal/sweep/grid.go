package sweep

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/certify-mli/certify/internal/keyed"
)

// Setting is one key of a grid point: the key (a flag's name, without
// dashes) and its value's text, as a Config's Set takes it.
type Setting struct {
	Flag  string `json:"flag"`
	Value string `json:"value"`
}

// Axis is one crossed flag with its values, in file order.
type Axis struct {
	Flag   string
	Values []string
}

// Grid is a parsed grid file.
type Grid struct {
	// File is the grid file's path as given (errors name it).
	File string
	// SHA256 is the hex SHA-256 of the file's bytes: a SLURM task refuses to
	// run a grid that changed after its script was written.
	SHA256 string
	// Base holds the train flags every point sets, in file order.
	Base []Setting
	// Axes are the crossed train flags, in file order (the first varies slowest).
	Axes []Axis
	// Analysis holds the analysis flags of every point, in file order.
	Analysis []Setting
	// Description is the grid's free-text "description".
	Description string
	// Spawn are the axes of the optional "spawn" section, at-step then
	// seed (spawn.go): every point of the product of Axes is then a parent,
	// and its spawned children are further points. Nil without a section.
	Spawn []Axis

	points []Point
}

// Point is one grid point.
type Point struct {
	// Index is the point's position in the grid's enumeration, 0 ≤ Index < Len().
	Index int `json:"index"`
	// Name is the point's run directory name (see the package documentation).
	Name string `json:"name"`
	// Train is what the point sets on a fresh training configuration, in
	// order: Base then one value of every axis.
	Train []Setting `json:"train"`
	// Vary are the settings of the axes with more than one value (those in Name).
	Vary []Setting `json:"vary"`
	// Parent is the index of the point a spawned child continues (its
	// Train is then the spawn's at-step and seed; spawn.go), nil for a
	// point trained from scratch.
	Parent *int `json:"parent,omitempty"`
}

// Config is a typed configuration a grid section sets (the training run's,
// the analysis's): its keys, the JSON type each takes and how a value's
// text is set, checked and parsed.
type Config interface {
	// Name names the configuration in errors (e.g. "certify train").
	Name() string
	// Keys lists the keys, sorted.
	Keys() []string
	// Kind is the JSON type key takes: "string", "number" or "bool"; ""
	// when any is accepted.
	Kind(key string) string
	// Set sets key from its text, refusing a value it cannot take.
	Set(key, text string) error
}

// Schema tells Parse which keys a grid may set.
type Schema struct {
	// Train and Analysis return fresh configurations with their defaults;
	// Parse checks names against Keys and values with Set on them.
	Train, Analysis func() Config
	// Reserved names the keys the sweep sets itself (e.g. "out", "run"),
	// which a grid may not set.
	Reserved []string
}

// Struct is the Config of a typed configuration: the struct cfg points
// to, whose keys are its fields' `flag` tags (internal/keyed), named name
// in errors (e.g. "certify"). A grid's values are parsed into its fields
// as package flag would parse the flags of the same names.
func Struct(name string, cfg any) Config { return structConfig{name, cfg} }

type structConfig struct {
	name string
	cfg  any
}

func (c structConfig) Name() string               { return c.name }
func (c structConfig) Keys() []string             { return keyed.Keys(c.cfg) }
func (c structConfig) Kind(key string) string     { return keyed.Kind(c.cfg, key) }
func (c structConfig) Set(key, text string) error { return keyed.Set(c.cfg, key, text) }

// Error is a grid file error; it names the file and the field.
type Error struct {
	File  string // the grid file
	Field string // e.g. "axes.lr[2]"; empty for a whole-file error
	Err   error
}

func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("grid %s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("grid %s: %s: %v", e.File, e.Field, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Load reads and parses the grid file at path (see Parse).
func Load(path string, s Schema) (*Grid, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	return Parse(path, b, s)
}

// Parse parses a grid file's bytes; file names it in errors. It returns an
// *Error naming the file and the field for malformed JSON, an unknown or
// misspelt key, an unknown or reserved flag, a flag both in "base" and
// "axes", an empty axis, a value of the wrong JSON type or one the flag
// refuses, a repeated value, and two points with the same name.
func Parse(file string, data []byte, s Schema) (*Grid, error) {
	sum := sha256.Sum256(data)
	g := &Grid{File: file, SHA256: hex.EncodeToString(sum[:])}
	fail := func(field string, format string, args ...any) error {
		return &Error{File: file, Field: field, Err: fmt.Errorf(format, args...)}
	}
	top, err := object(file, data, "")
	if err != nil {
		return nil, err
	}
	reserved := map[string]bool{}
	for _, r := range s.Reserved {
		reserved[r] = true
	}
	trainFS, anaFS := s.Train(), s.Analysis()
	var haveAxes bool
	inBase := map[string]bool{}
	for _, f := range top {
		switch f.key {
		case "description":
			if err := json.Unmarshal(f.raw, &g.Description); err != nil {
				return nil, fail("description", "want a string, found %s", kind(f.raw))
			}
		case "base", "analysis":
			fs := trainFS
			if f.key == "analysis" {
				fs = anaFS
			}
			fields, err := object(file, f.raw, f.key)
			if err != nil {
				return nil, err
			}
			for _, kv := range fields {
				field := f.key + "." + kv.key
				if err := checkName(fs, kv.key, reserved); err != nil {
					return nil, &Error{File: file, Field: field, Err: err}
				}
				v, err := value(s, f.key == "analysis", kv.key, kv.raw)
				if err != nil {
					return nil, &Error{File: file, Field: field, Err: err}
				}
				st := Setting{kv.key, v}
				if f.key == "analysis" {
					g.Analysis = append(g.Analysis, st)
				} else {
					g.Base = append(g.Base, st)
					inBase[kv.key] = true
				}
			}
		case "axes":
			haveAxes = true
			fields, err := object(file, f.raw, "axes")
			if err != nil {
				return nil, err
			}
			for _, kv := range fields {
				field := "axes." + kv.key
				if err := checkName(trainFS, kv.key, reserved); err != nil {
					return nil, &Error{File: file, Field: field, Err: err}
				}
				var list []json.RawMessage
				if bytes.TrimSpace(kv.raw)[0] != '[' || json.Unmarshal(kv.raw, &list) != nil {
					return nil, fail(field, "want a list of values, found %s", kind(kv.raw))
				}
				if len(list) == 0 {
					return nil, fail(field, "empty axis: give at least one value")
				}
				ax := Axis{Flag: kv.key}
				seen := map[string]int{}
				for i, raw := range list {
					ef := fmt.Sprintf("%s[%d]", field, i)
					v, err := value(s, false, kv.key, raw)
					if err != nil {
						return nil, &Error{File: file, Field: ef, Err: err}
					}
					// the same number spelled differently (0.1, 1e-1) is
					// the same setting: refused like an identical value
					if j, dup := seen[sameValue(v)]; dup {
						return nil, fail(ef, "duplicate value %s (also %s[%d]): two points would have the same setting", string(bytes.TrimSpace(raw)), field, j)
					}
					seen[sameValue(v)] = i
					ax.Values = append(ax.Values, v)
				}
				g.Axes = append(g.Axes, ax)
			}
		case "spawn":
			if g.Spawn, err = parseSpawn(file, f.raw); err != nil {
				return nil, err
			}
		default:
			return nil, fail(f.key, "unknown key (want description, base, axes, analysis, spawn)")
		}
	}
	if !haveAxes {
		return nil, &Error{File: file, Err: errors.New(`no "axes": name at least one flag to cross, e.g. "axes": {"lr": [0.01, 0.1]}`)}
	}
	for _, ax := range g.Axes {
		if inBase[ax.Flag] {
			return nil, fail("axes."+ax.Flag, "also set in base: keep it in one place")
		}
	}
	g.points = g.enumerate()
	g.points = append(g.points, spawnPoints(g.points, g.Spawn)...)
	byName := map[string]int{}
	for _, p := range g.points {
		if j, dup := byName[p.Name]; dup {
			return nil, fail("axes", "points %d and %d both have the name %q (values that differ only in characters outside [A-Za-z0-9._+=-])", j, p.Index, p.Name)
		}
		byName[p.Name] = p.Index
	}
	return g, nil
}

// Len is the number of grid points: the product of the axes' lengths, times
// 1 + (at-step values × seeds) with a "spawn" section.
func (g *Grid) Len() int { return len(g.points) }

// Points returns the grid points in index order (the caller may not modify them).
func (g *Grid) Points() []Point { return g.points }

// Point returns point i; it panics if i is out of range.
func (g *Grid) Point(i int) Point { return g.points[i] }

func (g *Grid) enumerate() []Point {
	n := 1
	for _, ax := range g.Axes {
		n *= len(ax.Values)
	}
	pts := make([]Point, n)
	for i := range pts {
		p := Point{Index: i, Train: append([]Setting(nil), g.Base...)}
		// Mixed radix, last axis fastest.
		rem := i
		vals := make([]string, len(g.Axes))
		for a := len(g.Axes) - 1; a >= 0; a-- {
			k := len(g.Axes[a].Values)
			vals[a] = g.Axes[a].Values[rem%k]
			rem /= k
		}
		for a, ax := range g.Axes {
			st := Setting{ax.Flag, vals[a]}
			p.Train = append(p.Train, st)
			if len(ax.Values) > 1 {
				p.Vary = append(p.Vary, st)
			}
		}
		p.Name = Name(p.Vary)
		pts[i] = p
	}
	return pts
}

// Name is the run name of a point whose varying settings are vary: their
// flag=value joined by "_" in order, each character outside [A-Za-z0-9._+=-]
// replaced by "-"; "base" when nothing varies. Names longer than 200 bytes
// are cut and end in 12 hex digits of their SHA-256, so they stay valid file
// names and distinct.
func Name(vary []Setting) string {
	if len(vary) == 0 {
		return "base"
	}
	parts := make([]string, len(vary))
	for i, s := range vary {
		parts[i] = s.Flag + "=" + s.Value
	}
	n := Sanitize(strings.Join(parts, "_"))
	if len(n) > 200 {
		sum := sha256.Sum256([]byte(n))
		n = n[:187] + "-" + hex.EncodeToString(sum[:])[:12]
	}
	return n
}

// Sanitize replaces every byte outside [A-Za-z0-9._+=-] by "-", and a
// leading "." by "-" (no hidden directories).
func Sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._+=-", c) >= 0
		if !ok || i == 0 && c == '.' {
			b[i] = '-'
		}
	}
	return string(b)
}

func checkName(c Config, name string, reserved map[string]bool) error {
	if reserved[name] {
		return fmt.Errorf("--%s is set by the sweep itself and may not be in a grid", name)
	}
	keys := c.Keys()
	if !slices.Contains(keys, name) {
		var names []string
		for _, k := range keys {
			if !reserved[k] {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		return fmt.Errorf("unknown flag %q (%s has: %s)", name, c.Name(), strings.Join(names, ", "))
	}
	return nil
}

// value checks one JSON scalar against the flag's type and returns the
// text to Set: a JSON number keeps its literal, a string its contents, a
// bool "true" or "false".
func value(s Schema, analysis bool, name string, raw json.RawMessage) (string, error) {
	c := s.Train()
	if analysis {
		c = s.Analysis()
	}
	raw = bytes.TrimSpace(raw)
	want := c.Kind(name) // JSON type the key takes, "" when any

	var text, got string
	switch {
	case len(raw) > 0 && raw[0] == '"':
		got = "string"
		if err := json.Unmarshal(raw, &text); err != nil {
			return "", err
		}
	case string(raw) == "true" || string(raw) == "false":
		got, text = "bool", string(raw)
	case len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9'):
		got, text = "number", string(raw)
	default:
		return "", fmt.Errorf("want a %s value, found %s", orAny(want), kind(raw))
	}
	if want != "" && got != want {
		return "", fmt.Errorf("--%s takes a %s, found the %s %s", name, want, got, string(raw))
	}
	if err := c.Set(name, text); err != nil {
		return "", fmt.Errorf("--%s %s: %v", name, string(raw), err)
	}
	return text, nil
}

func orAny(want string) string {
	if want == "" {
		return "string, number or bool"
	}
	return want
}

func kind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 'n':
		return "null"
	case 't', 'f':
		return "a bool"
	}
	return "a number"
}

type field struct {
	key string
	raw json.RawMessage
}

// sameValue is the key under which two axis values are the same setting:
// a number's float64 value (so 0.1, 1e-1 and 0.10 are one value), else
// the value as written.
func sameValue(v string) string {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return "number " + strconv.FormatFloat(f, 'g', -1, 64)
	}
	return v
}

// object decodes a JSON object keeping its keys' order, refusing duplicate
// keys and trailing data. path names the object in errors ("" for the top).
func object(file string, data []byte, path string) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	syntax := func(err error) error {
		var se *json.SyntaxError
		if path == "" {
			// Unmarshal reports offsets from the file's start (the
			// decoder's may be relative to a nested value).
			var v any
			if e2 := json.Unmarshal(data, &v); e2 != nil {
				err = e2
			}
		}
		if errors.As(err, &se) && path == "" {
			line, col := position(data, se.Offset)
			return &Error{File: file, Err: fmt.Errorf("malformed JSON at line %d, column %d: %v", line, col, err)}
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return &Error{File: file, Field: path, Err: errors.New("malformed JSON: unexpected end of file")}
		}
		return &Error{File: file, Field: path, Err: fmt.Errorf("malformed JSON: %v", err)}
	}
	t, err := dec.Token()
	if err != nil {
		return nil, syntax(err)
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		what := "the file"
		if path != "" {
			what = path
		}
		return nil, &Error{File: file, Field: path, Err: fmt.Errorf("%s must be a JSON object {...}, found %s", what, kind(data))}
	}
	var out []field
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, syntax(err)
		}
		key := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntax(err)
		}
		fp := key
		if path != "" {
			fp = path + "." + key
		}
		if seen[key] {
			return nil, &Error{File: file, Field: fp, Err: errors.New("duplicate key")}
		}
		seen[key] = true
		out = append(out, field{key, raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntax(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &Error{File: file, Field: path, Err: errors.New("malformed JSON: data after the closing }")}
	}
	return out, nil
}

func position(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	pre := data[:off]
	line = bytes.Count(pre, []byte("\n")) + 1
	col = int(off) - 1 - bytes.LastIndexByte(pre, '\n')
	return line, col
}
