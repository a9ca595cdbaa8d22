package safetensors

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

var intDTypes = []string{"I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL"}

// genTensors draws a set of uniquely named tensors: shapes of rank 0..3 with
// dimensions 0..4 (so scalars and zero-size tensors occur), float values of
// arbitrary bit patterns (NaN, ±Inf, ±0, subnormals) and integers spanning
// their dtype's range.
func genTensors(t *rapid.T, f32 bool) []Tensor {
	n := rapid.IntRange(0, 6).Draw(t, "n")
	names := rapid.SliceOfNDistinct(rapid.StringMatching(`[0-9a-z._<>&"\\]{1,8}`), n, n, rapid.ID[string]).Draw(t, "names")
	ts := make([]Tensor, n)
	for k := range ts {
		shape := rapid.SliceOfN(rapid.IntRange(0, 4), 0, 3).Draw(t, "shape")
		numel := 1
		for _, d := range shape {
			numel *= d
		}
		ts[k] = Tensor{Name: names[k], Shape: shape}
		if rapid.Bool().Draw(t, "int") {
			dt := rapid.SampledFrom(intDTypes).Draw(t, "dtype")
			lo, hi := intRange(dt)
			ts[k].DType = dt
			ts[k].Int = rapid.SliceOfN(rapid.Int64Range(lo, hi), numel, numel).Draw(t, "ints")
			continue
		}
		ts[k].DType = rapid.SampledFrom([]string{"F64", "F32", "F16", "BF16", ""}).Draw(t, "fdtype")
		ts[k].Float = make([]float64, numel)
		for i := range ts[k].Float {
			if f32 {
				ts[k].Float[i] = float64(math.Float32frombits(rapid.Uint32().Draw(t, "f32")))
			} else {
				ts[k].Float[i] = math.Float64frombits(rapid.Uint64().Draw(t, "f64"))
			}
		}
	}
	return ts
}

// equalTensors compares values bit for bit (NaN payloads included).
func equalTensors(a, b Tensor, fdtype string) bool {
	wantD := a.DType
	if !IsInt(wantD) {
		wantD = fdtype
	}
	if a.Name != b.Name || b.DType != wantD || len(a.Shape) != len(b.Shape) || len(a.Float) != len(b.Float) || len(a.Int) != len(b.Int) {
		return false
	}
	for i := range a.Shape {
		if a.Shape[i] != b.Shape[i] {
			return false
		}
	}
	for i := range a.Float {
		x, y := a.Float[i], b.Float[i]
		if fdtype == "F32" {
			if math.Float32bits(float32(x)) != math.Float32bits(float32(y)) {
				return false
			}
		} else if math.Float64bits(x) != math.Float64bits(y) {
			return false
		}
	}
	for i := range a.Int {
		if a.Int[i] != b.Int[i] {
			return false
		}
	}
	return true
}

// Decode(Encode(ts)) returns ts, in the documented layout order, with values
// bit-identical (F64) or as float32 (F32); re-encoding gives identical bytes.
func TestRoundTrip(t *testing.T) {
	for _, fdtype := range []string{"F64", "F32"} {
		rapid.Check(t, func(t *rapid.T) {
			ts := genTensors(t, fdtype == "F32")
			meta := rapid.MapOf(rapid.StringMatching(`[a-z<&]{1,5}`), rapid.String()).Draw(t, "meta")
			b, err := Encode(ts, fdtype, meta)
			if err != nil {
				t.Fatal(err)
			}
			if hl := int(b[0]) | int(b[1])<<8 | int(b[2])<<16; hl%8 != 0 {
				t.Fatalf("header length %d is not a multiple of 8", hl)
			}
			got, gotMeta, err := Decode(b, "rt")
			if err != nil {
				t.Fatal(err)
			}
			if len(meta) == 0 && gotMeta != nil || len(meta) > 0 && !reflect.DeepEqual(meta, gotMeta) {
				t.Fatalf("metadata %v, want %v", gotMeta, meta)
			}
			// Layout order is checked by TestReadTorch and TestWriteMatchesReference;
			// zero-size tensors share offsets, so compare here by name.
			want := append([]Tensor(nil), ts...)
			byName := func(s []Tensor) func(i, j int) bool {
				return func(i, j int) bool { return s[i].Name < s[j].Name }
			}
			sort.Slice(want, byName(want))
			sorted := append([]Tensor(nil), got...)
			sort.Slice(sorted, byName(sorted))
			if len(got) != len(want) {
				t.Fatalf("%d tensors, want %d", len(got), len(want))
			}
			for k := range want {
				if !equalTensors(want[k], sorted[k], fdtype) {
					t.Fatalf("tensor %d:\n got %+v\nwant %+v", k, sorted[k], want[k])
				}
			}
			// Shuffled input, and the decoded tensors, both re-encode to b.
			perm := rapid.Permutation(ts).Draw(t, "perm")
			for _, in := range [][]Tensor{perm, got} {
				b2, err := Encode(in, fdtype, gotMeta)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b, b2) {
					t.Fatalf("re-encoding differs:\n%q\n%q", b, b2)
				}
			}
		})
	}
}

func TestEncodeScalarAndEmpty(t *testing.T) {
	b, err := Encode([]Tensor{
		{Name: "s", Float: []float64{2.5}},
		{Name: "z", Shape: []int{0, 3}},
		{Name: "n", Int: []int64{7}},
	}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"n":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"s":{"dtype":"F32","shape":[],"data_offsets":[8,12]},"z":{"dtype":"F32","shape":[0,3],"data_offsets":[12,12]}}`
	want += strings.Repeat(" ", -len(want)&7)
	if got := string(b[8 : 8+len(want)]); got != want {
		t.Errorf("header\n%s\nwant\n%s", got, want)
	}
	if data := b[8+len(want):]; !bytes.Equal(data, []byte{7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x40}) {
		t.Errorf("data % x", data)
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, c := range []struct {
		what   string
		ts     []Tensor
		dtype  string
		err    error
		tensor string
	}{
		{"F16 output", []Tensor{{Name: "a", Float: []float64{1}}}, "F16", ErrDType, ""},
		{"unknown tensor dtype", []Tensor{{Name: "a", DType: "Q4", Float: []float64{1}}}, "", ErrDType, "a"},
		{"empty name", []Tensor{{Float: []float64{1}}}, "", ErrName, ""},
		{"reserved name", []Tensor{{Name: "__metadata__", Float: []float64{1}}}, "", ErrName, "__metadata__"},
		{"duplicate", []Tensor{{Name: "a", Float: []float64{1}}, {Name: "a", Int: []int64{1}}}, "", ErrName, "a"},
		{"negative dim", []Tensor{{Name: "a", Shape: []int{-1}}}, "", ErrShape, "a"},
		{"too few values", []Tensor{{Name: "0.weight", Shape: []int{2, 3}, Float: make([]float64, 5)}}, "", ErrShape, "0.weight"},
		{"both slices", []Tensor{{Name: "a", DType: "F32", Float: []float64{1}, Int: []int64{1}}}, "", ErrShape, "a"},
		{"int out of range", []Tensor{{Name: "y", DType: "I32", Int: []int64{1 << 40}}}, "", ErrRange, "y"},
		{"negative U8", []Tensor{{Name: "y", DType: "U8", Int: []int64{-1}}}, "", ErrRange, "y"},
		{"F32 overflow", []Tensor{{Name: "a", Float: []float64{1e300}}}, "F32", ErrRange, "a"},
		{"huge shape", []Tensor{{Name: "a", Shape: []int{1 << 40, 1 << 40}}}, "", ErrShape, "a"},
	} {
		_, err := Encode(c.ts, c.dtype, nil)
		var e *Error
		if !errors.Is(err, c.err) || !errors.As(err, &e) || e.Tensor != c.tensor {
			t.Errorf("%s: error %v, want %v for tensor %q", c.what, err, c.err, c.tensor)
		}
	}
	// Inf and NaN are values, not errors; F64 holds 1e300.
	if _, err := Encode([]Tensor{{Name: "a", Float: []float64{math.Inf(1), math.NaN()}, Shape: []int{2}}}, "F32", nil); err != nil {
		t.Error(err)
	}
	if _, err := Encode([]Tensor{{Name: "a", Float: []float64{1e300}}}, "F64", nil); err != nil {
		t.Error(err)
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "final.safetensors")
	ts := []Tensor{{Name: "0.weight", Shape: []int{2}, Float: []float64{1, -2}}, {Name: "1.num_batches_tracked", DType: "I64", Int: []int64{3}}}
	if err := Write(path, ts, "F64", map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	got, meta, err := Read(path)
	if err != nil || len(got) != 2 || got[0].Name != "0.weight" || got[0].DType != "F64" || got[0].Float[1] != -2 || got[1].Int[0] != 3 || meta["format"] != "pt" {
		t.Fatalf("Read: %+v %v %v", got, meta, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v %v", fi.Mode(), err)
	}
	// A failing write leaves the previous file untouched and no temporary file.
	err = Write(path, []Tensor{{Name: "x", DType: "I8", Int: []int64{300}}}, "", nil)
	if !errors.Is(err, ErrRange) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("error %v", err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, first) {
		t.Error("failed Write changed the file")
	}
	// Rewriting the decoded tensors is byte-identical.
	if err := Write(path, got, "F64", meta); err != nil {
		t.Fatal(err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, first) {
		t.Error("rewrite is not byte-identical")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %v", entries)
	}
	if err := Write(filepath.Join(dir, "missing", "x.safetensors"), ts, "", nil); err == nil {
		t.Error("Write into a missing directory succeeded")
	}
	if _, _, err := Read(filepath.Join(dir, "none.safetensors")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Read of a missing file: %v", err)
	}
}
