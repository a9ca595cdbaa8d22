package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
)

// dtypeSize holds the element size in bytes of every dtype this package reads.
var dtypeSize = map[string]int{
	"F64": 8, "F32": 4, "F16": 2, "BF16": 2,
	"I64": 8, "I32": 4, "I16": 2, "I8": 1,
	"U64": 8, "U32": 4, "U16": 2, "U8": 1,
	"BOOL": 1,
}

// DTypeSize returns the size in bytes of one element of dtype ("F64", "F32",
// "F16", "BF16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8",
// "BOOL"), or 0 if this package does not know dtype.
func DTypeSize(dtype string) int { return dtypeSize[dtype] }

// IsFloat reports whether dtype is a floating dtype (F64, F32, F16, BF16),
// whose values a Tensor holds in Float.
func IsFloat(dtype string) bool {
	switch dtype {
	case "F64", "F32", "F16", "BF16":
		return true
	}
	return false
}

// IsInt reports whether dtype is an integer dtype (I64, I32, I16, I8, U64,
// U32, U16, U8, BOOL), whose values a Tensor holds exactly in Int.
func IsInt(dtype string) bool { return dtypeSize[dtype] != 0 && !IsFloat(dtype) }

// F16ToFloat64 returns the value of the IEEE 754 binary16 number with bit
// pattern h (1 sign bit, 5 exponent bits with bias 15, 10 fraction bits),
// exactly: subnormals h&0x7fff < 0x0400 are (h&0x3ff)·2⁻²⁴, exponent 31 is
// ±Inf (fraction 0) or NaN. For example 0x3C00 is 1, 0x7BFF is 65504,
// 0x0001 is 2⁻²⁴ and 0xFC00 is −Inf.
func F16ToFloat64(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	frac := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(frac, -24)
	case 0x1f:
		if frac != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * math.Ldexp(1024+frac, exp-25)
}

// BF16ToFloat64 returns the value of the bfloat16 number with bit pattern b,
// the upper half of an IEEE 754 binary32 (1 sign bit, 8 exponent bits, 7
// fraction bits), exactly. For example 0x3F80 is 1 and 0x0001 is 2⁻¹³³.
func BF16ToFloat64(b uint16) float64 {
	return float64(math.Float32frombits(uint32(b) << 16))
}

// DecodeValues converts the raw little-endian elements in data, of the given
// dtype, to float64 (floating dtypes, returned in f) or exactly to int64
// (integer dtypes, returned in i); the other slice is nil. len(data) must be
// a multiple of DTypeSize(dtype). It returns an error wrapping ErrDType for
// an unknown dtype, ErrShape for a ragged length, and ErrRange for a U64
// value above math.MaxInt64 or a BOOL byte other than 0 and 1. It is shared
// with package npz.
func DecodeValues(dtype string, data []byte) (f []float64, i []int64, err error) {
	size := dtypeSize[dtype]
	if size == 0 {
		return nil, nil, fmt.Errorf("%w %q", ErrDType, dtype)
	}
	if len(data)%size != 0 {
		return nil, nil, fmt.Errorf("%w: %d bytes is not a whole number of %s elements", ErrShape, len(data), dtype)
	}
	n := len(data) / size
	le := binary.LittleEndian
	if IsFloat(dtype) {
		f = make([]float64, n)
		for k := range f {
			switch dtype {
			case "F64":
				f[k] = math.Float64frombits(le.Uint64(data[8*k:]))
			case "F32":
				f[k] = float64(math.Float32frombits(le.Uint32(data[4*k:])))
			case "F16":
				f[k] = F16ToFloat64(le.Uint16(data[2*k:]))
			case "BF16":
				f[k] = BF16ToFloat64(le.Uint16(data[2*k:]))
			}
		}
		return f, nil, nil
	}
	i = make([]int64, n)
	for k := range i {
		switch dtype {
		case "I64":
			i[k] = int64(le.Uint64(data[8*k:]))
		case "U64":
			u := le.Uint64(data[8*k:])
			if u > math.MaxInt64 {
				return nil, nil, fmt.Errorf("%w: element %d of U64 is %d > %d", ErrRange, k, u, int64(math.MaxInt64))
			}
			i[k] = int64(u)
		case "I32":
			i[k] = int64(int32(le.Uint32(data[4*k:])))
		case "U32":
			i[k] = int64(le.Uint32(data[4*k:]))
		case "I16":
			i[k] = int64(int16(le.Uint16(data[2*k:])))
		case "U16":
			i[k] = int64(le.Uint16(data[2*k:]))
		case "I8":
			i[k] = int64(int8(data[k]))
		case "U8":
			i[k] = int64(data[k])
		case "BOOL":
			if data[k] > 1 {
				return nil, nil, fmt.Errorf("%w: element %d of BOOL is byte 0x%02x, not 0 or 1", ErrRange, k, data[k])
			}
			i[k] = int64(data[k])
		}
	}
	return nil, i, nil
}

// intRange returns the closed range of values an integer dtype holds.
func intRange(dtype string) (lo, hi int64) {
	switch dtype {
	case "I64", "U64":
		if dtype == "U64" {
			return 0, math.MaxInt64
		}
		return math.MinInt64, math.MaxInt64
	case "I32":
		return math.MinInt32, math.MaxInt32
	case "U32":
		return 0, math.MaxUint32
	case "I16":
		return math.MinInt16, math.MaxInt16
	case "U16":
		return 0, math.MaxUint16
	case "I8":
		return math.MinInt8, math.MaxInt8
	case "U8":
		return 0, math.MaxUint8
	case "BOOL":
		return 0, 1
	}
	return 0, -1
}

// appendInt appends v in dtype's little-endian encoding; v is in range.
func appendInt(b []byte, dtype string, v int64) []byte {
	le := binary.LittleEndian
	switch dtypeSize[dtype] {
	case 8:
		return le.AppendUint64(b, uint64(v))
	case 4:
		return le.AppendUint32(b, uint32(v))
	case 2:
		return le.AppendUint16(b, uint16(v))
	}
	return append(b, byte(v))
}
