package npz

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/certify-mli/certify/nn/safetensors"
)

// expected is testdata/expected.json, written by numpy (gen_fixtures.py).
type array struct {
	Descr  string            `json:"descr"`
	Shape  []int             `json:"shape"`
	Values []json.RawMessage `json:"values"`
}
type expected struct {
	Arrays   map[string]array `json:"arrays"`
	Order    []string         `json:"order"`
	Versions map[string]array `json:"versions"`
}

func load(t *testing.T) expected {
	t.Helper()
	var e expected
	b, err := os.ReadFile("testdata/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func value(t *testing.T, raw json.RawMessage) float64 {
	switch string(raw) {
	case `"inf"`:
		return math.Inf(1)
	case `"-inf"`:
		return math.Inf(-1)
	case `"nan"`:
		return math.NaN()
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("bad value %s", raw)
	}
	return v
}

var wantDType = map[string]string{
	"<f8": "F64", ">f8": "F64", "<f4": "F32", "<f2": "F16", "<i8": "I64", "<i4": "I32",
	"<i2": "I16", "|u1": "U8", "|b1": "BOOL",
}

// check compares a tensor with what numpy reported, bit for bit (signed
// zeros and NaN included).
func check(t *testing.T, got safetensors.Tensor, want array) {
	t.Helper()
	if got.DType != wantDType[want.Descr] || len(got.Shape) != len(want.Shape) || len(got.Shape) > 0 && !reflect.DeepEqual(got.Shape, want.Shape) {
		t.Errorf("%s: %s %v, numpy has %s %v", got.Name, got.DType, got.Shape, want.Descr, want.Shape)
	}
	if safetensors.IsFloat(got.DType) {
		if len(got.Float) != len(want.Values) || len(got.Int) != 0 {
			t.Fatalf("%s: %d floats, %d ints; want %d floats", got.Name, len(got.Float), len(got.Int), len(want.Values))
		}
		for i, raw := range want.Values {
			v := value(t, raw)
			g := got.Float[i]
			if math.IsNaN(v) != math.IsNaN(g) || !math.IsNaN(v) && (g != v || math.Signbit(g) != math.Signbit(v)) {
				t.Errorf("%s[%d] = %v, numpy says %v", got.Name, i, g, v)
			}
		}
		return
	}
	if len(got.Int) != len(want.Values) || len(got.Float) != 0 {
		t.Fatalf("%s: %d ints, %d floats; want %d ints", got.Name, len(got.Int), len(got.Float), len(want.Values))
	}
	for i, raw := range want.Values {
		var v int64
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		if got.Int[i] != v {
			t.Errorf("%s[%d] = %d, numpy says %d", got.Name, i, got.Int[i], v)
		}
	}
}

// TestReadNumpy reads numpy.savez (stored) and numpy.savez_compressed
// (deflated) archives, including Fortran-ordered and big-endian arrays, a
// 0-d array and a zero-size array, and compares with numpy's own values.
func TestReadNumpy(t *testing.T) {
	e := load(t)
	for _, f := range []string{"testdata/plain.npz", "testdata/compressed.npz"} {
		ts, err := Read(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != len(e.Order) {
			t.Fatalf("%s: %d arrays, want %d", f, len(ts), len(e.Order))
		}
		for k, got := range ts {
			if got.Name != e.Order[k] {
				t.Errorf("%s: array %d is %q, want %q", f, k, got.Name, e.Order[k])
			}
			check(t, got, e.Arrays[got.Name])
		}
	}
}

func TestReadVersions(t *testing.T) {
	e := load(t)
	ts, err := Read("testdata/versions.npz")
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 {
		t.Fatalf("%d arrays", len(ts))
	}
	for _, got := range ts {
		check(t, got, e.Versions[got.Name])
	}
}

func TestReadErrors(t *testing.T) {
	for _, c := range []struct {
		file, key string
		err       error
	}{
		{"bad_complex.npz", "z", ErrDType},
		{"bad_structured.npz", "rec", ErrDType},
		{"bad_truncated.npz", "w", ErrTruncated},
		{"bad_extra.npz", "w", ErrTruncated},
		{"bad_magic.npz", "w", ErrFormat},
		{"bad_member.npz", "notes.txt", ErrFormat},
		{"bad_notzip.npz", "", zip.ErrFormat},
	} {
		path := "testdata/" + c.file
		_, err := Read(path)
		var e *Error
		if !errors.Is(err, c.err) || !errors.As(err, &e) || e.File != path || e.Key != c.key {
			t.Errorf("%s: error %v, want %v naming key %q", c.file, err, c.err, c.key)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, path) || c.key != "" && !strings.Contains(msg, `key "`+c.key+`"`) {
			t.Errorf("%s: message %q does not name file and key", c.file, msg)
		}
	}
}

// npy builds a version-1 .npy member with the given header dict and data.
func npy(header string, data []byte) []byte {
	h := header + strings.Repeat(" ", (64-(10+len(header)+1)%64)%64) + "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
	return append(append(b, h...), data...)
}

func TestDecodeNPYHeaders(t *testing.T) {
	one := []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f} // 1.0 as <f8
	for _, c := range []struct {
		header string
		data   []byte
		err    error
		shape  []int
	}{
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (), }", one, nil, []int{}},
		{`{"descr": "<f8", "fortran_order": True, "shape": (1,)}`, one, nil, []int{1}},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (1L, 1L), }", one, nil, []int{1, 1}},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (0, 9223372036854775807), }", nil, nil, []int{0, math.MaxInt64}},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", one, ErrTruncated, nil},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }", one, ErrFormat, nil},
		{"{'descr': '<f8', 'fortran_order': False}", one, ErrFormat, nil},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}", one, ErrFormat, nil},
		{"{'descr': '<f8', 'descr': '<f8', 'shape': (1,)}", one, ErrFormat, nil},
		{"{'descr': '<f8', 'fortran_order': 0, 'shape': (1,)}", one, ErrFormat, nil},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (1,)} junk", one, ErrFormat, nil},
		{"{'descr': '|O', 'fortran_order': False, 'shape': (1,)}", one, ErrDType, nil},
		{"{'descr': '<U5', 'fortran_order': False, 'shape': (1,)}", one, ErrDType, nil},
		{"{'descr': " + strings.Repeat("(", 100) + ", 'fortran_order': False, 'shape': (1,)}", one, ErrFormat, nil},
	} {
		got, err := decodeNPY(bytes.NewReader(npy(c.header, c.data)), "f.npz", "k")
		if !errors.Is(err, c.err) || err != nil && !strings.Contains(err.Error(), `f.npz: key "k"`) {
			t.Errorf("%s: error %v, want %v", c.header, err, c.err)
			continue
		}
		if err == nil && !reflect.DeepEqual(got.Shape, c.shape) {
			t.Errorf("%s: shape %v, want %v", c.header, got.Shape, c.shape)
		}
	}
}

// TestFortranToC checks the transposition against the closed form: element
// (i, j, k) of a Fortran-ordered [2, 3, 4] array is stored at i + 2j + 6k.
func TestFortranToC(t *testing.T) {
	data := make([]byte, 24)
	for f := range data {
		data[f] = byte(f)
	}
	out := fortranToC(data, []int{2, 3, 4}, 1)
	c := 0
	for i := 0; i < 2; i++ {
		for j := 0; j < 3; j++ {
			for k := 0; k < 4; k++ {
				if out[c] != byte(i+2*j+6*k) {
					t.Fatalf("C element (%d,%d,%d) = %d, want %d", i, j, k, out[c], i+2*j+6*k)
				}
				c++
			}
		}
	}
}

// FuzzDecodeNPY: hostile .npy members never panic and never yield more
// elements than bytes.
func FuzzDecodeNPY(f *testing.F) {
	f.Add(npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", make([]byte, 16)))
	f.Add(npy("{'descr': '>i8', 'fortran_order': False, 'shape': (), }", make([]byte, 8)))
	f.Add(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeNPY(bytes.NewReader(b), "f", "k")
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		if len(got.Float)+len(got.Int) > len(b) {
			t.Fatalf("%d elements from %d bytes", len(got.Float)+len(got.Int), len(b))
		}
	})
}
