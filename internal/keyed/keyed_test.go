package keyed

import (
	"errors"
	"flag"
	"reflect"
	"strconv"
	"testing"

	"pgregory.net/rapid"
)

type inner struct {
	Name string `flag:"name"`
}

type count struct {
	n   int
	set bool
}

func (c *count) Set(s string) error {
	n, err := strconv.Atoi(s)
	c.n, c.set = n, err == nil
	return err
}

func (c *count) String() string {
	if c == nil || !c.set {
		return ""
	}
	return strconv.Itoa(c.n)
}

type cfg struct {
	inner
	I     int     `flag:"i"`
	U     uint64  `flag:"u"`
	F     float64 `flag:"f"`
	B     bool    `flag:"b"`
	L     []int   `flag:"l"`
	C     count   `flag:"c"`
	Plain int     // no tag: not a key
}

// TestParsesAsPackageFlag: for any text, Set on a typed field accepts
// exactly what package flag accepts for a flag of the same type, gives the
// same value, and Get prints it as the flag's String does (the oracle is
// package flag itself).
func TestParsesAsPackageFlag(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		text := rapid.OneOf(
			rapid.Just("0x1f"), rapid.Just("1e400"), rapid.Just("-0"), rapid.Just("T"),
			rapid.Just("99999999999999999999"), rapid.Just("-1"), rapid.Just("1_000"),
			rapid.StringMatching(`-?[0-9]{0,4}(\.[0-9]{0,3})?(e-?[0-9])?`),
			rapid.SampledFrom([]string{"true", "false", "1", "0", "yes", ""}),
		).Draw(t, "text")
		for _, key := range []string{"i", "u", "f", "b", "name"} {
			var c cfg
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.IntVar(new(int), "i", 0, "")
			fs.Uint64Var(new(uint64), "u", 0, "")
			fs.Float64Var(new(float64), "f", 0, "")
			fs.BoolVar(new(bool), "b", false, "")
			fs.StringVar(new(string), "name", "", "")
			ferr := fs.Set(key, text)
			kerr := Set(&c, key, text)
			if (ferr == nil) != (kerr == nil) {
				t.Fatalf("--%s %q: flag says %v, keyed says %v", key, text, ferr, kerr)
			}
			if ferr != nil {
				if ferr.Error() != kerr.Error() {
					t.Fatalf("--%s %q: flag's error %q, keyed's %q", key, text, ferr, kerr)
				}
				continue
			}
			got, err := Get(&c, key)
			if want := fs.Lookup(key).Value.String(); err != nil || got != want {
				t.Fatalf("--%s %q: Get = %q (%v), flag prints %q", key, text, got, err, want)
			}
		}
	})
}

func TestKeysKindsUnknown(t *testing.T) {
	var c cfg
	if got, want := Keys(&c), []string{"b", "c", "f", "i", "l", "name", "u"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Keys = %v, want %v", got, want)
	}
	for k, want := range map[string]string{"i": "number", "u": "number", "f": "number", "b": "bool", "name": "string", "l": "string", "c": "", "nope": ""} {
		if got := Kind(&c, k); got != want {
			t.Errorf("Kind(%s) = %q, want %q", k, got, want)
		}
	}
	if err := Set(&c, "Plain", "1"); !errors.Is(err, ErrUnknownKey) || err.Error() != `unknown key "Plain"` {
		t.Errorf("untagged field: %v", err)
	}
	if _, err := Get(&c, "nope"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Get unknown: %v", err)
	}
	// A Value field parses and prints itself; unset prints "".
	if v, _ := Get(&c, "c"); v != "" {
		t.Errorf("unset count prints %q", v)
	}
	if err := Set(&c, "c", "7"); err != nil || c.C.n != 7 || !c.C.set {
		t.Errorf("c=7: %+v (%v)", c.C, err)
	}
	if err := Set(&c, "name", "x"); err != nil || c.Name != "x" {
		t.Errorf("nested name: %q (%v)", c.Name, err)
	}
	if Values(&c)["c"] != "7" || Values(&c)["name"] != "x" {
		t.Errorf("Values = %v", Values(&c))
	}
}

// TestSetIntList: a []int field (the kind a MultiStepLR's milestones
// take) is set from "30,60" and printed back the same; "" is the empty list
// and a non-integer is refused.
func TestSetIntList(t *testing.T) {
	var c cfg
	for _, in := range []string{"30,60", "5", ""} {
		if err := Set(&c, "l", in); err != nil {
			t.Fatalf("Set %q: %v", in, err)
		}
		if got, err := Get(&c, "l"); err != nil || got != in {
			t.Errorf("Set %q then Get = %q (%v)", in, got, err)
		}
	}
	if c.L != nil {
		t.Errorf("after \"\": %v", c.L)
	}
	Set(&c, "l", "30, 60")
	if !reflect.DeepEqual(c.L, []int{30, 60}) {
		t.Errorf("30, 60 gave %v", c.L)
	}
	for _, bad := range []string{"30,x", "30,"} {
		if err := Set(&c, "l", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
