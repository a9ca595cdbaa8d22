package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
)

// torchExpect is testdata/torch_state.json: what torch reports for each
// tensor of testdata/torch_state.safetensors.
type torchExpect struct {
	Order    []string          `json:"order"`
	Metadata map[string]string `json:"metadata"`
	Tensors  map[string]struct {
		DType  string            `json:"dtype"`
		Shape  []int             `json:"shape"`
		Values []json.RawMessage `json:"values"`
	} `json:"tensors"`
}

// value parses a JSON number or one of "inf", "-inf", "nan".
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

// TestReadTorch checks every value decoded from a file built from torch's
// bytes against the float64 (or int64) values torch itself reported.
func TestReadTorch(t *testing.T) {
	raw, err := os.ReadFile("testdata/torch_state.json")
	if err != nil {
		t.Fatal(err)
	}
	var want torchExpect
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	ts, meta, err := Read("testdata/torch_state.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(meta, want.Metadata) {
		t.Errorf("metadata %v, want %v", meta, want.Metadata)
	}
	if len(ts) != len(want.Order) {
		t.Fatalf("%d tensors, want %d", len(ts), len(want.Order))
	}
	for k, got := range ts {
		if got.Name != want.Order[k] {
			t.Errorf("tensor %d is %q, want %q (file order)", k, got.Name, want.Order[k])
		}
		w := want.Tensors[got.Name]
		if got.DType != w.DType || !reflect.DeepEqual(got.Shape, w.Shape) && !(len(got.Shape) == 0 && len(w.Shape) == 0) {
			t.Errorf("%s: %s %v, want %s %v", got.Name, got.DType, got.Shape, w.DType, w.Shape)
		}
		if IsFloat(w.DType) {
			if len(got.Float) != len(w.Values) || got.Int != nil {
				t.Fatalf("%s: %d floats and %d ints, want %d floats", got.Name, len(got.Float), len(got.Int), len(w.Values))
			}
			for i, rv := range w.Values {
				if v := value(t, rv); !sameFloat(got.Float[i], v) {
					t.Errorf("%s[%d] = %v, torch says %v", got.Name, i, got.Float[i], v)
				}
			}
			continue
		}
		if len(got.Int) != len(w.Values) || got.Float != nil {
			t.Fatalf("%s: %d ints and %d floats, want %d ints", got.Name, len(got.Int), len(got.Float), len(w.Values))
		}
		for i, rv := range w.Values {
			var v int64
			if err := json.Unmarshal(rv, &v); err != nil {
				t.Fatal(err)
			}
			if got.Int[i] != v {
				t.Errorf("%s[%d] = %d, torch says %d", got.Name, i, got.Int[i], v)
			}
		}
	}
}

// TestWriteMatchesReference re-encodes a file laid out by the Python
// reference-order writer (testdata/gen_fixtures.py) and expects the same bytes.
func TestWriteMatchesReference(t *testing.T) {
	want, err := os.ReadFile("testdata/torch_f32.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	ts, meta, err := Decode(want, "torch_f32.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	// Reverse the input order: the output must not depend on it.
	for i, j := 0, len(ts)-1; i < j; i, j = i+1, j-1 {
		ts[i], ts[j] = ts[j], ts[i]
	}
	got, err := Encode(ts, "F32", meta)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("re-encoded file differs from the reference:\n got %q\nwant %q", got[:min(len(got), 400)], want[:min(len(want), 400)])
	}
}

// file builds a safetensors file from a header string (written verbatim) and
// a data section.
func file(header string, body []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), body...)
}

func TestDecodeErrors(t *testing.T) {
	const name = "ckpt/bad.safetensors"
	huge := binary.LittleEndian.AppendUint64(nil, 200<<20)
	long := binary.LittleEndian.AppendUint64(nil, 64)
	w := func(dtype, shape, offs string) string {
		return `{"0.weight":{"dtype":"` + dtype + `","shape":` + shape + `,"data_offsets":` + offs + `}}`
	}
	for _, c := range []struct {
		what   string
		data   []byte
		err    error
		tensor string
	}{
		{"shorter than 8 bytes", []byte{1, 0, 0}, ErrTruncated, ""},
		{"header length > file size", append(long, `{"a":1}`...), ErrTruncated, ""},
		{"absurd header length", append(huge, make([]byte, 16)...), ErrHeaderSize, ""},
		{"invalid JSON", file(`{"0.weight":`, nil), ErrHeader, "0.weight"},
		{"not an object", file(`[1,2]`, nil), ErrHeader, ""},
		{"not UTF-8", file("{\"\xff\":1}", nil), ErrHeader, ""},
		{"trailing garbage", file(`{} x`, nil), ErrHeader, ""},
		{"entry not an object", file(`{"0.weight":3}`, nil), ErrHeader, "0.weight"},
		{"missing data_offsets", file(`{"0.weight":{"dtype":"F32","shape":[]}}`, nil), ErrHeader, "0.weight"},
		{"duplicate key", file(w("F32", "[1]", "[0,4]")[:len(w("F32", "[1]", "[0,4]"))-1]+`,"0.weight":{}}`, make([]byte, 4)), ErrHeader, "0.weight"},
		{"negative dimension", file(w("F32", "[-1]", "[0,4]"), make([]byte, 4)), ErrHeader, "0.weight"},
		{"fractional dimension", file(w("F32", "[1.5]", "[0,4]"), make([]byte, 4)), ErrHeader, "0.weight"},
		{"three offsets", file(w("F32", "[1]", "[0,4,4]"), make([]byte, 4)), ErrHeader, "0.weight"},
		{"metadata not strings", file(`{"__metadata__":{"a":1}}`, nil), ErrHeader, "__metadata__"},
		{"unknown dtype", file(w("F8_E4M3", "[2]", "[0,2]"), make([]byte, 2)), ErrDType, "0.weight"},
		{"offsets mismatch shape", file(w("F32", "[2,2]", "[0,12]"), make([]byte, 12)), ErrOffsets, "0.weight"},
		{"offsets decreasing", file(w("F32", "[0]", "[8,4]"), make([]byte, 8)), ErrOffsets, "0.weight"},
		{"negative offset", file(w("F32", "[1]", "[-4,0]"), make([]byte, 8)), ErrOffsets, "0.weight"},
		{"data truncated", file(w("F64", "[2]", "[0,16]"), make([]byte, 12)), ErrTruncated, "0.weight"},
		{"huge shape", file(w("F64", "[4294967296,4294967296,4294967296]", "[0,8]"), make([]byte, 8)), ErrShape, "0.weight"},
		{"huge shape fitting int64", file(w("F64", "[4294967296,4294967296]", "[0,8]"), make([]byte, 8)), ErrShape, "0.weight"},
		{"overlap", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"0.weight":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)), ErrOffsets, "0.weight"},
		{"gap", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"0.weight":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, make([]byte, 12)), ErrOffsets, "0.weight"},
		{"bytes after last tensor", file(w("F32", "[1]", "[0,4]"), make([]byte, 8)), ErrOffsets, ""},
		{"U64 above MaxInt64", file(w("U64", "[1]", "[0,8]"), bytes.Repeat([]byte{0xff}, 8)), ErrRange, "0.weight"},
		{"BOOL byte 2", file(w("BOOL", "[1]", "[0,1]"), []byte{2}), ErrRange, "0.weight"},
	} {
		_, _, err := Decode(c.data, name)
		if !errors.Is(err, c.err) {
			t.Errorf("%s: error %v, want %v", c.what, err, c.err)
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.File != name || e.Tensor != c.tensor {
			t.Errorf("%s: error %#v, want file %q tensor %q", c.what, err, name, c.tensor)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, name) || c.tensor != "" && !strings.Contains(msg, `"`+c.tensor+`"`) {
			t.Errorf("%s: message %q does not name the file and tensor %q", c.what, msg, c.tensor)
		}
	}
}

func TestDecodeEmptyAndPadded(t *testing.T) {
	for _, h := range []string{`{}`, `{}      `, `{"__metadata__":null}`, "\n{ }\t"} {
		ts, meta, err := Decode(file(h, nil), "x")
		if err != nil || len(ts) != 0 || meta != nil {
			t.Errorf("%q: %v %v %v", h, ts, meta, err)
		}
	}
	// Zero-size tensors share offsets with their neighbours.
	ts, _, err := Decode(file(`{"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"I64","shape":[0,5],"data_offsets":[4,4]},"c":{"dtype":"F16","shape":[3,0],"data_offsets":[0,0]}}`,
		[]byte{0, 0, 0x80, 0x3f}), "x")
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 || ts[0].Name != "c" || ts[1].Name != "b" || ts[2].Name != "a" || ts[1].Float[0] != 1 ||
		len(ts[0].Float) != 0 || len(ts[2].Int) != 0 || !reflect.DeepEqual(ts[2].Shape, []int{0, 5}) {
		t.Errorf("got %+v", ts)
	}
}
