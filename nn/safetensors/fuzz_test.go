package safetensors

import (
	"errors"
	"math"
	"os"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode. It must not panic; it must
// fail with an *Error naming the file, or return tensors whose values fit in
// the input (so that no header can make it allocate more than a small
// multiple of the input) and that survive an F64 round trip unchanged.
func FuzzDecode(f *testing.F) {
	for _, p := range []string{"testdata/torch_state.safetensors", "testdata/torch_f32.safetensors"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(file(`{"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"__metadata__":{"k":"v"}}`, []byte{0x80, 0x3f, 0x80, 0x7f}))
	f.Add(file(`{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(file(`{"a":{"dtype":"I8","shape":[0,9223372036854775807],"data_offsets":[0,0]}}`, nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'})
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, meta, err := Decode(data, "fuzz")
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.File != "fuzz" {
				t.Fatalf("error %v is not an *Error naming the file", err)
			}
			return
		}
		elems := 0
		for _, x := range ts {
			elems += len(x.Float) + len(x.Int)
		}
		if elems > len(data) {
			t.Fatalf("%d elements from %d bytes", elems, len(data))
		}
		b, err := Encode(ts, "F64", meta)
		if err != nil {
			t.Fatalf("re-encoding decoded tensors: %v", err)
		}
		back, _, err := Decode(b, "re-encoded")
		if err != nil {
			t.Fatalf("decoding re-encoded tensors: %v", err)
		}
		byName := map[string]Tensor{}
		for _, x := range back {
			byName[x.Name] = x
		}
		for _, x := range ts {
			y, ok := byName[x.Name]
			if !ok || len(y.Float) != len(x.Float) || len(y.Int) != len(x.Int) || len(y.Shape) != len(x.Shape) {
				t.Fatalf("tensor %q lost in round trip", x.Name)
			}
			for i := range x.Float {
				if math.Float64bits(x.Float[i]) != math.Float64bits(y.Float[i]) {
					t.Fatalf("%q[%d]: %v became %v", x.Name, i, x.Float[i], y.Float[i])
				}
			}
			for i := range x.Int {
				if x.Int[i] != y.Int[i] {
					t.Fatalf("%q[%d]: %v became %v", x.Name, i, x.Int[i], y.Int[i])
				}
			}
		}
	})
}
