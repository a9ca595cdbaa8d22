package npz

import (
	"archive/zip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/certify-mli/certify/nn/safetensors"
)

// Sentinel errors wrapped by *Error; test for them with errors.Is.
var (
	// ErrFormat: a member that is not a .npy file (wrong name or magic,
	// unknown version, malformed header).
	ErrFormat = errors.New("invalid .npy member")
	// ErrDType: a descr this package does not read.
	ErrDType = errors.New("unsupported dtype")
	// ErrTruncated: a member whose data are shorter or longer than its
	// shape and dtype require.
	ErrTruncated = errors.New("data size does not match shape")
)

// MaxHeaderSize is the largest .npy header accepted, in bytes.
const MaxHeaderSize = 1 << 20

// Error describes a fault in an .npz file. Its message reads
//
//	npz: FILE: key "KEY": SENTINEL: DETAIL
//
// with the key part omitted when the fault is the archive's.
type Error struct {
	File   string // file name as given to Read
	Key    string // array key (member name without ".npy"), or ""
	Err    error  // ErrFormat, ErrDType, ErrTruncated, a safetensors error, or an archive/zip or I/O error
	Detail string
}

func (e *Error) Error() string {
	s := "npz: " + e.File
	if e.Key != "" {
		s += fmt.Sprintf(": key %q", e.Key)
	}
	s += ": " + e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// Read reads the .npz archive at path and returns its arrays as tensors in
// archive order (numpy.savez writes them in argument order), with Name the
// key, DType the safetensors dtype corresponding to the descr (see the
// package doc), Shape numpy's shape ([] for a 0-d array) and the values in
// C order in Float or Int.
//
// Every error is an *Error naming the file and, where one array is at fault,
// its key; it wraps ErrFormat (not a .npy member, bad magic, version or
// header), ErrDType, ErrTruncated, a safetensors.ErrRange (a U64 above
// math.MaxInt64, a BOOL byte other than 0 or 1), or the archive/zip or I/O
// error (zip.ErrFormat for a file that is not a zip archive,
// zip.ErrChecksum for corrupt data).
func Read(path string) ([]safetensors.Tensor, error) {
	z, err := zip.OpenReader(path)
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	defer z.Close()
	var ts []safetensors.Tensor
	for _, f := range z.File {
		if strings.HasSuffix(f.Name, "/") {
			continue // a directory entry
		}
		key, ok := strings.CutSuffix(f.Name, ".npy")
		if !ok {
			return nil, &Error{File: path, Key: f.Name, Err: ErrFormat, Detail: "member name does not end in .npy"}
		}
		rc, err := f.Open()
		if err != nil {
			return nil, &Error{File: path, Key: key, Err: err}
		}
		t, err := decodeNPY(rc, path, key)
		rc.Close()
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// descrs maps the supported numpy type codes (without byte order) to
// safetensors dtypes.
var descrs = map[string]string{
	"f8": "F64", "f4": "F32", "f2": "F16",
	"i8": "I64", "i4": "I32", "i2": "I16", "i1": "I8",
	"u8": "U64", "u4": "U32", "u2": "U16", "u1": "U8",
	"b1": "BOOL",
}

// decodeNPY reads one .npy stream.
func decodeNPY(r io.Reader, file, key string) (safetensors.Tensor, error) {
	t := safetensors.Tensor{Name: key}
	fail := func(err error, format string, args ...any) (safetensors.Tensor, error) {
		return t, &Error{File: file, Key: key, Err: err, Detail: fmt.Sprintf(format, args...)}
	}
	var pre [10]byte
	if _, err := io.ReadFull(r, pre[:8]); err != nil {
		return fail(ErrFormat, "too short for the .npy magic: %v", err)
	}
	if string(pre[:6]) != "\x93NUMPY" {
		return fail(ErrFormat, "bad magic %q", pre[:6])
	}
	var hlen uint64
	switch pre[6] {
	case 1:
		if _, err := io.ReadFull(r, pre[8:10]); err != nil {
			return fail(ErrFormat, "header length: %v", err)
		}
		hlen = uint64(binary.LittleEndian.Uint16(pre[8:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return fail(ErrFormat, "header length: %v", err)
		}
		hlen = uint64(binary.LittleEndian.Uint32(b[:]))
	default:
		return fail(ErrFormat, "unsupported .npy version %d.%d", pre[6], pre[7])
	}
	if hlen > MaxHeaderSize {
		return fail(ErrFormat, "header length %d exceeds %d", hlen, MaxHeaderSize)
	}
	header := make([]byte, hlen)
	if _, err := io.ReadFull(r, header); err != nil {
		return fail(ErrFormat, "header: %v", err)
	}
	h, err := parseHeader(string(header))
	if err != nil {
		return fail(ErrFormat, "header %q: %v", clip(string(header)), err)
	}
	if len(h.descr) != 3 || !strings.ContainsRune("<>|=", rune(h.descr[0])) || descrs[h.descr[1:]] == "" {
		return fail(ErrDType, "descr %q (supported: <f8 <f4 <f2 <i8 <i4 <i2 |i1 <u8 <u4 <u2 |u1 |b1 and their > forms)", h.descr)
	}
	t.DType = descrs[h.descr[1:]]
	size := safetensors.DTypeSize(t.DType)

	t.Shape = make([]int, len(h.shape))
	for k, d := range h.shape {
		t.Shape[k] = int(d)
	}
	need, ok := safetensors.ByteSize(t.Shape, size)
	if !ok {
		return fail(ErrTruncated, "shape %v of %s has too many elements", t.Shape, h.descr)
	}
	// Read at most need+1 bytes, growing the buffer as data arrive, so that
	// a hostile shape cannot make us allocate more than the member holds.
	data, err := io.ReadAll(io.LimitReader(r, int64(need)+1))
	if err != nil {
		return t, &Error{File: file, Key: key, Err: err}
	}
	if uint64(len(data)) != need {
		more := ""
		if uint64(len(data)) > need {
			more = " or more"
		}
		return fail(ErrTruncated, "shape %v of %s needs %d data bytes, member holds %d%s", t.Shape, h.descr, need, len(data), more)
	}
	if h.descr[0] == '>' && size > 1 {
		for i := 0; i < len(data); i += size {
			e := data[i : i+size]
			for a, b := 0, size-1; a < b; a, b = a+1, b-1 {
				e[a], e[b] = e[b], e[a]
			}
		}
	}
	if h.fortran && len(t.Shape) > 1 && need > 0 {
		data = fortranToC(data, t.Shape, size)
	}
	t.Float, t.Int, err = safetensors.DecodeValues(t.DType, data)
	if err != nil {
		return t, &Error{File: file, Key: key, Err: err}
	}
	return t, nil
}

// fortranToC reorders elements of size bytes stored in Fortran (column-major)
// order for shape into C (row-major) order.
func fortranToC(data []byte, shape []int, size int) []byte {
	n := len(data) / size
	out := make([]byte, len(data))
	idx := make([]int, len(shape)) // C-order multi-index of element c
	stride := make([]int, len(shape))
	s := 1
	for k := range shape {
		stride[k] = s // Fortran stride of axis k, in elements
		s *= shape[k]
	}
	for c := 0; c < n; c++ {
		f := 0
		for k, i := range idx {
			f += i * stride[k]
		}
		copy(out[c*size:(c+1)*size], data[f*size:(f+1)*size])
		for k := len(idx) - 1; k >= 0; k-- { // increment, last axis fastest
			idx[k]++
			if idx[k] < shape[k] {
				break
			}
			idx[k] = 0
		}
	}
	return out
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// ReadNPY reads a single .npy file (numpy.save) as a tensor named key, with
// the same dtypes, checks and errors as Read.
func ReadNPY(path, key string) (safetensors.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return safetensors.Tensor{}, &Error{File: path, Err: err}
	}
	defer f.Close()
	return decodeNPY(f, path, key)
}
