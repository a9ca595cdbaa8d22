package functionspace

import "fmt"

// Precision is the floating-point format of a path's layer passes
// (Options.Precision, Path.Precision; the report's precision): Float64 or
// Float32. Its value is the report's string, which String, MarshalText and
// UnmarshalText use, so JSON holds the same strings as before the type
// existed; it is a string type so that an untyped constant such as
// "float32" is still a Precision. The empty Precision in Options means
// Float64.
type Precision string

// String returns the report's name of p ("float64", "float32").
func (p Precision) String() string { return string(p) }

// ParsePrecision returns the precision named s ("float64" or "float32"),
// or an error naming s.
func ParsePrecision(s string) (Precision, error) {
	switch p := Precision(s); p {
	case Float64, Float32:
		return p, nil
	}
	return "", fmt.Errorf("functionspace: precision %q: want %q or %q", s, Float64, Float32)
}

// MarshalText implements encoding.TextMarshaler (an unknown precision is an
// error naming it).
func (p Precision) MarshalText() ([]byte, error) {
	if _, err := ParsePrecision(string(p)); err != nil {
		return nil, err
	}
	return []byte(p), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParsePrecision.
func (p *Precision) UnmarshalText(b []byte) error {
	v, err := ParsePrecision(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// BNPolicy is how BatchNorm layers are evaluated along the line (THEORY.md
// §2; Options.BNPolicy, Path.BNPolicy, the report's bn_policy):
// BNInterpolate, BNRecompute, or BNNone for a model without BatchNorm. Like
// Precision it is a string type whose value is the report's string. The
// empty BNPolicy in Options means BNInterpolate.
type BNPolicy string

// String returns the report's name of b ("interpolate", "recompute",
// "none").
func (b BNPolicy) String() string { return string(b) }

// ParseBNPolicy returns the policy named s ("interpolate", "recompute" or
// "none"), or an error naming s.
func ParseBNPolicy(s string) (BNPolicy, error) {
	switch b := BNPolicy(s); b {
	case BNInterpolate, BNRecompute, BNNone:
		return b, nil
	}
	return "", fmt.Errorf("functionspace: BatchNorm policy %q: want %q, %q or %q", s, BNInterpolate, BNRecompute, BNNone)
}

// MarshalText implements encoding.TextMarshaler (an unknown policy is an
// error naming it).
func (b BNPolicy) MarshalText() ([]byte, error) {
	if _, err := ParseBNPolicy(string(b)); err != nil {
		return nil, err
	}
	return []byte(b), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseBNPolicy.
func (b *BNPolicy) UnmarshalText(t []byte) error {
	v, err := ParseBNPolicy(string(t))
	if err != nil {
		return err
	}
	*b = v
	return nil
}
