package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"math/bits"
	"os"
	"sort"
	"unicode/utf8"
)

// MaxHeaderSize is the largest header length N accepted, in bytes (100 MB,
// the reference implementation's limit).
const MaxHeaderSize = 100 << 20

// metadataKey is the reserved header key holding the string→string metadata.
const metadataKey = "__metadata__"

// Tensor is one named array read from or written to a safetensors file.
// Floating dtypes are held as float64 in Float, integer dtypes exactly as
// int64 in Int; the other slice is empty. Both are row-major (C order) with
// len = product of Shape (1 for the scalar shape []).
type Tensor struct {
	Name  string    // header key, e.g. PyTorch's "0.weight"
	DType string    // "F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL"
	Shape []int     // e.g. [out, in] for a dense weight; [] for a scalar
	Float []float64 // values of a floating tensor, row-major
	Int   []int64   // values of an integer tensor, row-major
}

// Read reads the safetensors file at path; see Decode for the result and
// errors. Errors opening or reading the file are returned as from os.ReadFile
// (a *fs.PathError naming the file).
func Read(path string) ([]Tensor, map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return Decode(data, path)
}

// entry is one tensor's header record, validated.
type entry struct {
	name       string
	dtype      string
	shape      []int
	begin, end int
}

// Decode decodes the safetensors file contents data; name is the file name
// used in error messages. It returns the tensors in the order of their data
// in the file (by increasing data_offsets begin, then end, then name: a
// zero-size tensor comes before the tensor starting at the same offset) and the "__metadata__" map (nil if absent).
//
// Every error is an *Error naming the file and, where one is at fault, the
// tensor, wrapping ErrTruncated, ErrHeaderSize, ErrHeader, ErrDType,
// ErrOffsets, ErrShape or ErrRange (see their docs). Decode allocates at most
// a small multiple of len(data), whatever the header claims, and never
// panics.
func Decode(data []byte, name string) ([]Tensor, map[string]string, error) {
	if len(data) < 8 {
		return nil, nil, newErr(name, "", ErrTruncated, "file is %d bytes, shorter than the 8-byte header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxHeaderSize {
		return nil, nil, newErr(name, "", ErrHeaderSize, "header length %d exceeds the limit %d", n, MaxHeaderSize)
	}
	if n > uint64(len(data)-8) {
		return nil, nil, newErr(name, "", ErrTruncated, "header length %d exceeds the %d bytes after it", n, len(data)-8)
	}
	header, body := data[8:8+n], data[8+n:]
	entries, meta, err := parseHeader(header, name, len(body))
	if err != nil {
		return nil, nil, err
	}

	sort.Slice(entries, func(a, b int) bool {
		ea, eb := entries[a], entries[b]
		if ea.begin != eb.begin {
			return ea.begin < eb.begin
		}
		if ea.end != eb.end {
			return ea.end < eb.end
		}
		return ea.name < eb.name
	})
	pos, prev := 0, ""
	for _, e := range entries {
		switch {
		case e.begin < pos:
			return nil, nil, newErr(name, e.name, ErrOffsets, "data_offsets [%d, %d] overlap tensor %q, which ends at %d", e.begin, e.end, prev, pos)
		case e.begin > pos:
			return nil, nil, newErr(name, e.name, ErrOffsets, "data_offsets [%d, %d] leave a gap of %d bytes after byte %d", e.begin, e.end, e.begin-pos, pos)
		}
		pos, prev = e.end, e.name
	}
	if pos != len(body) {
		return nil, nil, newErr(name, "", ErrOffsets, "%d bytes of data after the last tensor (data section is %d bytes, tensors cover %d)", len(body)-pos, len(body), pos)
	}

	ts := make([]Tensor, len(entries))
	for k, e := range entries {
		f, i, err := DecodeValues(e.dtype, body[e.begin:e.end])
		if err != nil {
			return nil, nil, &Error{File: name, Tensor: e.name, Err: err}
		}
		ts[k] = Tensor{Name: e.name, DType: e.dtype, Shape: e.shape, Float: f, Int: i}
	}
	return ts, meta, nil
}

// parseHeader parses and checks the JSON header; bodyLen is the size of the
// data section.
func parseHeader(header []byte, file string, bodyLen int) ([]entry, map[string]string, error) {
	bad := func(tensor, format string, args ...any) error {
		return newErr(file, tensor, ErrHeader, format, args...)
	}
	if !utf8.Valid(header) {
		return nil, nil, bad("", "header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, bad("", "header is not a JSON object")
	}
	var (
		entries []entry
		meta    map[string]string
		seen    = map[string]bool{}
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, bad("", "%v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, nil, bad("", "expected a key, found %v", tok)
		}
		if seen[key] {
			return nil, nil, bad(key, "duplicate key")
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil, nil, bad(key, "JSON ends before the value")
			}
			return nil, nil, bad(key, "%v", err)
		}
		if key == metadataKey {
			if err := json.Unmarshal(raw, &meta); err != nil {
				return nil, nil, bad(key, "metadata must map strings to strings: %v", err)
			}
			continue
		}
		e, err := parseEntry(key, raw, file, bodyLen)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, e)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, nil, bad("", "%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, bad("", "data after the JSON object")
	}
	return entries, meta, nil
}

// parseEntry parses one tensor's header record and checks its shape, dtype
// and offsets against each other and against the data section's length.
func parseEntry(key string, raw json.RawMessage, file string, bodyLen int) (entry, error) {
	e := entry{name: key}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return e, newErr(file, key, ErrHeader, "entry is not a JSON object")
	}
	for _, f := range []string{"dtype", "shape", "data_offsets"} {
		if _, ok := fields[f]; !ok {
			return e, newErr(file, key, ErrHeader, "missing %q", f)
		}
	}
	if err := json.Unmarshal(fields["dtype"], &e.dtype); err != nil {
		return e, newErr(file, key, ErrHeader, "dtype is not a string")
	}
	var shape []int64
	if err := json.Unmarshal(fields["shape"], &shape); err != nil || shape == nil {
		return e, newErr(file, key, ErrHeader, "shape is not an array of integers: %s", clip(fields["shape"]))
	}
	var offs []int64
	if err := json.Unmarshal(fields["data_offsets"], &offs); err != nil || len(offs) != 2 {
		return e, newErr(file, key, ErrHeader, "data_offsets is not an array of two integers: %s", clip(fields["data_offsets"]))
	}
	size := DTypeSize(e.dtype)
	if size == 0 {
		return e, newErr(file, key, ErrDType, "%q", e.dtype)
	}

	e.shape = make([]int, len(shape))
	for k, d := range shape {
		if d < 0 || int64(int(d)) != d {
			return e, newErr(file, key, ErrHeader, "shape %v has an invalid dimension %d", shape, d)
		}
		e.shape[k] = int(d)
	}
	need, ok := ByteSize(e.shape, size)
	if !ok {
		return e, newErr(file, key, ErrShape, "shape %v of %s has too many elements", shape, e.dtype)
	}

	b, end := offs[0], offs[1]
	if b < 0 || end < b {
		return e, newErr(file, key, ErrOffsets, "data_offsets [%d, %d] are not an increasing pair of non-negative offsets", b, end)
	}
	if end > int64(bodyLen) {
		return e, newErr(file, key, ErrTruncated, "data_offsets [%d, %d] run past the end of the %d-byte data section", b, end, bodyLen)
	}
	if uint64(end-b) != need {
		return e, newErr(file, key, ErrOffsets, "data_offsets [%d, %d] hold %d bytes but shape %v of %s needs %d", b, end, end-b, shape, e.dtype, need)
	}
	e.begin, e.end = int(b), int(end)
	return e, nil
}

// clip shortens raw JSON for an error message.
func clip(raw []byte) string {
	if len(raw) > 64 {
		return string(raw[:61]) + "..."
	}
	return string(raw)
}

// ByteSize returns the number of bytes of a tensor of the given shape whose
// elements take size bytes each, and false when it exceeds MaxInt64. The
// element count saturates instead of overflowing, so hostile shapes from a
// file header (safetensors or .npy) cannot wrap around to a small size.
func ByteSize(shape []int, size int) (uint64, bool) {
	numel, zero := uint64(1), false
	for _, d := range shape {
		zero = zero || d == 0
		hi, lo := bits.Mul64(numel, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			numel = math.MaxInt64
		} else {
			numel = lo
		}
	}
	if zero {
		return 0, true
	}
	hi, need := bits.Mul64(numel, uint64(size))
	return need, hi == 0 && need <= math.MaxInt64
}
