package safetensors

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"testing"
)

// Known bit patterns from IEEE 754-2008 binary16 and the bfloat16 definition
// (upper 16 bits of binary32).
func TestF16KnownBits(t *testing.T) {
	for _, c := range []struct {
		bits uint16
		want float64
	}{
		{0x3C00, 1},
		{0x7BFF, 65504},
		{0x0001, 0x1p-24}, // smallest subnormal
		{0x03FF, 1023 * 0x1p-24},
		{0x0400, 0x1p-14}, // smallest normal
		{0x3BFF, 1 - 0x1p-11},
		{0x3C01, 1 + 0x1p-10},
		{0x3555, 0.333251953125},
		{0xC000, -2},
		{0x0000, 0},
		{0x8000, math.Copysign(0, -1)},
		{0x7C00, math.Inf(1)},
		{0xFC00, math.Inf(-1)},
		{0x7E00, math.NaN()},
		{0xFC01, math.NaN()},
	} {
		got := F16ToFloat64(c.bits)
		if !sameFloat(got, c.want) {
			t.Errorf("F16ToFloat64(%#04x) = %v, want %v", c.bits, got, c.want)
		}
	}
}

func TestBF16KnownBits(t *testing.T) {
	for _, c := range []struct {
		bits uint16
		want float64
	}{
		{0x3F80, 1},
		{0xC0F0, -7.5},
		{0x3DCD, 0.10009765625},
		{0x0001, 0x1p-133}, // smallest subnormal
		{0x0080, 0x1p-126}, // smallest normal
		{0x7F7F, 0x1.FEp127},
		{0x8000, math.Copysign(0, -1)},
		{0x7F80, math.Inf(1)},
		{0xFF80, math.Inf(-1)},
		{0x7FC0, math.NaN()},
	} {
		got := BF16ToFloat64(c.bits)
		if !sameFloat(got, c.want) {
			t.Errorf("BF16ToFloat64(%#04x) = %v, want %v", c.bits, got, c.want)
		}
	}
}

// TestExhaustiveAgainstTorch compares the decoders on all 65536 bit patterns
// with torch's own conversion (x.view(float16).to(float64)), recorded by
// testdata/gen_fixtures.py as a SHA-256 of the float64 bits.
func TestExhaustiveAgainstTorch(t *testing.T) {
	raw, err := os.ReadFile("testdata/torch_exhaustive.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]string
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		conv func(uint16) float64
	}{{"F16", F16ToFloat64}, {"BF16", BF16ToFloat64}} {
		b := make([]byte, 0, 8*65536)
		for h := 0; h < 65536; h++ {
			v := c.conv(uint16(h))
			bits := math.Float64bits(v)
			if math.IsNaN(v) {
				bits = 0x7FF8000000000000
			}
			b = binary.LittleEndian.AppendUint64(b, bits)
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != want[c.name] {
			t.Errorf("%s: digest of all 65536 conversions %s, torch's %s", c.name, got, want[c.name])
		}
	}
}

// TestF16Monotone checks, independently of torch, that the positive finite
// F16 values are strictly increasing in their bit patterns with the spacing
// 2^(e-25) of IEEE binary16 (2^-24 for subnormals).
func TestF16Monotone(t *testing.T) {
	for h := uint16(1); h < 0x7C00; h++ {
		prev, cur := F16ToFloat64(h-1), F16ToFloat64(h)
		e := int(h-1) >> 10
		if e == 0 {
			e = 1
		}
		if cur-prev != math.Ldexp(1, e-25) {
			t.Fatalf("F16 %#04x - %#04x = %v, want 2^%d", h, h-1, cur-prev, e-25)
		}
		if n := F16ToFloat64(h | 0x8000); n != -cur {
			t.Fatalf("F16 %#04x = %v, want %v", h|0x8000, n, -cur)
		}
	}
}

func TestDecodeValuesIntegers(t *testing.T) {
	for _, c := range []struct {
		dtype string
		data  []byte
		want  []int64
	}{
		{"I8", []byte{0x80, 0xff, 0x7f}, []int64{-128, -1, 127}},
		{"U8", []byte{0x80, 0xff}, []int64{128, 255}},
		{"I16", []byte{0x00, 0x80, 0xff, 0x7f}, []int64{-32768, 32767}},
		{"U16", []byte{0xff, 0xff}, []int64{65535}},
		{"I32", []byte{0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x80}, []int64{-1, math.MinInt32}},
		{"U32", []byte{0xff, 0xff, 0xff, 0xff}, []int64{math.MaxUint32}},
		{"I64", []byte{0, 0, 0, 0, 0, 0, 0, 0x80}, []int64{math.MinInt64}},
		{"U64", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, []int64{math.MaxInt64}},
		{"BOOL", []byte{1, 0}, []int64{1, 0}},
	} {
		f, i, err := DecodeValues(c.dtype, c.data)
		if err != nil || f != nil {
			t.Errorf("%s: err %v, float %v", c.dtype, err, f)
			continue
		}
		if len(i) != len(c.want) {
			t.Errorf("%s: got %v, want %v", c.dtype, i, c.want)
			continue
		}
		for k := range i {
			if i[k] != c.want[k] {
				t.Errorf("%s: got %v, want %v", c.dtype, i, c.want)
				break
			}
		}
	}
}

func sameFloat(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return a == b && math.Signbit(a) == math.Signbit(b)
}
