package safetensors

import (
	"errors"
	"fmt"
)

// Sentinel errors wrapped by *Error; test for them with errors.Is.
var (
	// ErrTruncated: the file ends before the 8-byte header length, before the
	// end of the header, or before the end of a tensor's data.
	ErrTruncated = errors.New("truncated file")
	// ErrHeaderSize: the header length exceeds MaxHeaderSize.
	ErrHeaderSize = errors.New("header length out of range")
	// ErrHeader: the header is not UTF-8 JSON of the required structure
	// (an object; entries with dtype, shape, data_offsets; string metadata;
	// no duplicate keys; non-negative shape).
	ErrHeader = errors.New("invalid header")
	// ErrDType: a dtype this package does not read (or, for writing, a
	// floating dtype other than F32 and F64).
	ErrDType = errors.New("unknown dtype")
	// ErrOffsets: data_offsets that disagree with shape×dtype size, overlap
	// another tensor, leave a gap, or leave bytes after the last tensor.
	ErrOffsets = errors.New("invalid data_offsets")
	// ErrShape: a shape whose element count overflows, or (writing) a value
	// slice whose length is not the product of the shape.
	ErrShape = errors.New("shape mismatch")
	// ErrRange: a value the dtype cannot hold (writing an integer outside
	// the dtype's range or a finite float beyond F32's range; reading a U64
	// above math.MaxInt64 or a BOOL byte other than 0 and 1).
	ErrRange = errors.New("value out of range")
	// ErrName: an empty, duplicate, reserved ("__metadata__") or non-UTF-8
	// tensor name or metadata key (writing).
	ErrName = errors.New("invalid name")
)

// Error describes a fault in a safetensors file or in tensors given for
// writing. Its message reads
//
//	safetensors: FILE: tensor "NAME": SENTINEL: DETAIL
//
// with the file part omitted when there is no file (Encode) and the tensor
// part omitted when the fault is not one tensor's.
type Error struct {
	File   string // file name as given to Read, Decode or Write
	Tensor string // tensor name (header key), or "" if no single tensor is at fault
	Err    error  // wraps one of the sentinel errors above
	Detail string // what exactly is wrong
}

func (e *Error) Error() string {
	s := "safetensors"
	if e.File != "" {
		s += ": " + e.File
	}
	if e.Tensor != "" {
		s += fmt.Sprintf(": tensor %q", e.Tensor)
	}
	s += ": " + e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

func newErr(file, tensor string, err error, format string, args ...any) *Error {
	return &Error{File: file, Tensor: tensor, Err: err, Detail: fmt.Sprintf(format, args...)}
}
