package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/certify-mli/certify/internal/atomicfile"
)

// Encode returns the safetensors encoding of ts and the metadata meta (may be
// nil; written as "__metadata__" only when non-empty).
//
// Floating tensors (DType "F64", "F32", "F16", "BF16", or DType "" with Int
// empty) are written as dtype, which must be "F32" (the default, used when
// dtype is "") or "F64"; F32 rounds to nearest even. Integer tensors (an
// integer DType, or DType "" with Int set and Float empty, taken as I64) are
// written in their own dtype. NaN and ±Inf are written unchanged.
//
// The data are laid out, and the header lists the tensors, by decreasing
// element size and then by name (the reference writer's order, which keeps
// every tensor aligned to its element size); the header keys inside each
// record are dtype, shape, data_offsets; metadata keys are sorted; the
// header is padded with spaces to a multiple of 8 bytes. The same tensors and
// metadata, in any order, therefore always give the same bytes.
//
// Errors are *Error values wrapping ErrName (empty, duplicate, reserved or
// non-UTF-8 names or metadata keys/values), ErrShape (negative dimension,
// len(Float) or len(Int) not the product of Shape, or both set), ErrDType
// (unknown DType or a dtype other than F32/F64) or ErrRange (an integer
// outside its dtype's range, a finite value beyond F32's range).
func Encode(ts []Tensor, dtype string, meta map[string]string) ([]byte, error) {
	return encode("", ts, dtype, meta)
}

// Write writes ts and meta to path as Encode does, atomically: the bytes go to
// a temporary file in path's directory, which is synced and then renamed over
// path, so path never holds a partial file. The file's mode is 0644.
func Write(path string, ts []Tensor, dtype string, meta map[string]string) error {
	b, err := encode(path, ts, dtype, meta)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b)
}

// planned is one tensor ready to be written.
type planned struct {
	t     *Tensor
	dtype string // dtype written
	numel int
}

func encode(file string, ts []Tensor, dtype string, meta map[string]string) ([]byte, error) {
	if dtype == "" {
		dtype = "F32"
	}
	if dtype != "F32" && dtype != "F64" {
		return nil, newErr(file, "", ErrDType, "floating tensors are written as F32 or F64, not %q", dtype)
	}
	for k, v := range meta {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, newErr(file, metadataKey, ErrName, "metadata key %q or its value is not valid UTF-8", k)
		}
	}
	plan := make([]planned, len(ts))
	seen := make(map[string]bool, len(ts))
	for k := range ts {
		t := &ts[k]
		p, err := check(file, t, dtype)
		if err != nil {
			return nil, err
		}
		if seen[t.Name] {
			return nil, newErr(file, t.Name, ErrName, "duplicate tensor name")
		}
		seen[t.Name] = true
		plan[k] = p
	}
	sort.Slice(plan, func(a, b int) bool {
		sa, sb := DTypeSize(plan[a].dtype), DTypeSize(plan[b].dtype)
		if sa != sb {
			return sa > sb
		}
		return plan[a].t.Name < plan[b].t.Name
	})

	var h bytes.Buffer
	h.WriteByte('{')
	if len(meta) > 0 {
		keys := make([]string, 0, len(meta))
		for k := range meta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		writeString(&h, metadataKey)
		h.WriteString(":{")
		for i, k := range keys {
			if i > 0 {
				h.WriteByte(',')
			}
			writeString(&h, k)
			h.WriteByte(':')
			writeString(&h, meta[k])
		}
		h.WriteByte('}')
	}
	off := 0
	for i, p := range plan {
		if i > 0 || len(meta) > 0 {
			h.WriteByte(',')
		}
		writeString(&h, p.t.Name)
		h.WriteString(`:{"dtype":`)
		writeString(&h, p.dtype)
		h.WriteString(`,"shape":[`)
		for j, d := range p.t.Shape {
			if j > 0 {
				h.WriteByte(',')
			}
			h.WriteString(strconv.Itoa(d))
		}
		end := off + p.numel*DTypeSize(p.dtype)
		h.WriteString(`],"data_offsets":[` + strconv.Itoa(off) + "," + strconv.Itoa(end) + "]}")
		off = end
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}

	out := make([]byte, 0, 8+h.Len()+off)
	out = binary.LittleEndian.AppendUint64(out, uint64(h.Len()))
	out = append(out, h.Bytes()...)
	le := binary.LittleEndian
	for _, p := range plan {
		switch {
		case p.dtype == "F64":
			for _, v := range p.t.Float {
				out = le.AppendUint64(out, math.Float64bits(v))
			}
		case p.dtype == "F32":
			for _, v := range p.t.Float {
				out = le.AppendUint32(out, math.Float32bits(float32(v)))
			}
		default:
			for _, v := range p.t.Int {
				out = appendInt(out, p.dtype, v)
			}
		}
	}
	return out, nil
}

// check validates one tensor for writing with floating dtype dtype.
func check(file string, t *Tensor, dtype string) (planned, error) {
	p := planned{t: t}
	if t.Name == "" || t.Name == metadataKey || !utf8.ValidString(t.Name) {
		return p, newErr(file, t.Name, ErrName, "tensor names must be non-empty UTF-8 other than %q", metadataKey)
	}
	isInt := IsInt(t.DType) || (t.DType == "" && len(t.Int) > 0 && len(t.Float) == 0)
	switch {
	case t.DType != "" && DTypeSize(t.DType) == 0:
		return p, newErr(file, t.Name, ErrDType, "%q", t.DType)
	case isInt && t.DType == "":
		p.dtype = "I64"
	case isInt:
		p.dtype = t.DType
	default:
		p.dtype = dtype
	}
	numel := 1
	for _, d := range t.Shape {
		if d < 0 {
			return p, newErr(file, t.Name, ErrShape, "negative dimension in shape %v", t.Shape)
		}
		if d != 0 && numel > math.MaxInt/8/d {
			return p, newErr(file, t.Name, ErrShape, "shape %v has too many elements", t.Shape)
		}
		numel *= d
	}
	p.numel = numel
	nf, ni := len(t.Float), len(t.Int)
	if isInt && (ni != numel || nf != 0) || !isInt && (nf != numel || ni != 0) {
		return p, newErr(file, t.Name, ErrShape, "shape %v needs %d %s values; have %d in Float and %d in Int", t.Shape, numel, p.dtype, nf, ni)
	}
	if isInt {
		lo, hi := intRange(p.dtype)
		for k, v := range t.Int {
			if v < lo || v > hi {
				return p, newErr(file, t.Name, ErrRange, "element %d is %d, outside %s's range [%d, %d]", k, v, p.dtype, lo, hi)
			}
		}
	} else if p.dtype == "F32" {
		for k, v := range t.Float {
			if !math.IsInf(v, 0) && math.IsInf(float64(float32(v)), 0) {
				return p, newErr(file, t.Name, ErrRange, "element %d is %g, beyond F32's range", k, v)
			}
		}
	}
	return p, nil
}

// writeString writes s as a JSON string without HTML escaping.
func writeString(b *bytes.Buffer, s string) {
	var tmp bytes.Buffer
	enc := json.NewEncoder(&tmp)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // cannot fail for a string
	b.Write(bytes.TrimSuffix(tmp.Bytes(), []byte("\n")))
}
