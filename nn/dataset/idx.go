package dataset

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
)

// Magic numbers of the idx files (doc.go): byte type 0x08 (unsigned byte)
// with 3 dimensions for images and 1 for labels.
const (
	IDXImagesMagic = 0x00000803
	IDXLabelsMagic = 0x00000801
)

// maxIDXBytes bounds the data size an idx header may declare (1 TiB), so that
// a corrupt header is reported as such instead of overflowing.
const maxIDXBytes = 1 << 40

// Errors wrapped (with %w) by the idx readers and Load; test with errors.Is.
// The wrapping error names the file.
var (
	// ErrEmpty: the file has no bytes, or declares zero examples.
	ErrEmpty = errors.New("empty")
	// ErrBadMagic: the first 4 bytes are not the expected magic number.
	ErrBadMagic = errors.New("bad magic number")
	// ErrTruncated: the file ends before the header or the data it declares.
	ErrTruncated = errors.New("truncated")
	// ErrTrailingData: bytes follow the data the header declares.
	ErrTrailingData = errors.New("trailing data")
	// ErrBadHeader: a declared dimension is zero or the total size is absurd.
	ErrBadHeader = errors.New("bad header")
	// ErrCorrupt: the gzip stream is invalid (bad header, checksum, ...).
	ErrCorrupt = errors.New("corrupt gzip stream")
	// ErrCountMismatch: an image file and its label file hold different numbers of examples.
	ErrCountMismatch = errors.New("image and label counts differ")
	// ErrLabelRange: a label is not below the data set's class count.
	ErrLabelRange = errors.New("label out of range")
)

// IDXImages is the content of an idx3-ubyte image file: N images of Rows×Cols
// bytes (0 = background, 255 = full ink). Pixels is [N, Rows*Cols] row-major,
// each image stored row by row, exactly as in the file.
type IDXImages struct {
	N, Rows, Cols int
	Pixels        []byte
}

// ReadIDXImages reads the idx3-ubyte image file at path, plain or gzipped
// (detected by the gzip magic bytes 0x1f 0x8b). Errors name path and wrap
// ErrEmpty, ErrBadMagic, ErrBadHeader, ErrTruncated, ErrTrailingData or
// ErrCorrupt; a missing file gives the *fs.PathError of os.Open.
func ReadIDXImages(path string) (*IDXImages, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return DecodeIDXImages(f, path)
}

// ReadIDXLabels reads the idx1-ubyte label file at path, plain or gzipped, and
// returns its N labels as bytes. Errors are those of ReadIDXImages.
func ReadIDXLabels(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return DecodeIDXLabels(f, path)
}

// DecodeIDXImages is ReadIDXImages on a reader; name is used in errors only.
// It reads r to its end: the file must hold exactly the declared data.
func DecodeIDXImages(r io.Reader, name string) (*IDXImages, error) {
	dims, data, err := decodeIDX(r, name, IDXImagesMagic, "images")
	if err != nil {
		return nil, err
	}
	return &IDXImages{N: dims[0], Rows: dims[1], Cols: dims[2], Pixels: data}, nil
}

// DecodeIDXLabels is ReadIDXLabels on a reader; name is used in errors only.
func DecodeIDXLabels(r io.Reader, name string) ([]byte, error) {
	_, data, err := decodeIDX(r, name, IDXLabelsMagic, "labels")
	return data, err
}

// decodeIDX reads an idx file of unsigned bytes with the given magic (whose
// low byte is the number of dimensions) and returns its dimensions and data.
func decodeIDX(r io.Reader, name string, magic uint32, what string) ([]int, []byte, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(2)
	if len(head) == 0 {
		if err == nil || err == io.EOF {
			return nil, nil, fmt.Errorf("%s: %w file (0 bytes)", name, ErrEmpty)
		}
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	var in io.Reader = br
	gz := len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b
	if gz {
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w: %v", name, gzErr(err), err)
		}
		defer z.Close()
		in = z
	}
	wrap := func(err error) error {
		if gz {
			return fmt.Errorf("%w: %v", gzErr(err), err)
		}
		return err
	}

	var m [4]byte
	if n, err := io.ReadFull(in, m[:]); err != nil {
		if n == 0 && err == io.EOF {
			return nil, nil, fmt.Errorf("%s: %w file (no idx header)", name, ErrEmpty)
		}
		return nil, nil, fmt.Errorf("%s: %w: %d of the 4 magic bytes (%v)", name, ErrTruncated, n, wrap(err))
	}
	if got := binary.BigEndian.Uint32(m[:]); got != magic {
		hint := ""
		switch got {
		case IDXImagesMagic:
			hint = " (this is an idx3 image file)"
		case IDXLabelsMagic:
			hint = " (this is an idx1 label file)"
		}
		return nil, nil, fmt.Errorf("%s: %w 0x%08x, want 0x%08x for idx %s%s", name, ErrBadMagic, got, magic, what, hint)
	}

	nd := int(magic & 0xff)
	hb := make([]byte, 4*nd)
	if n, err := io.ReadFull(in, hb); err != nil {
		return nil, nil, fmt.Errorf("%s: %w header: %d of %d dimension bytes (%v)", name, ErrTruncated, n, len(hb), wrap(err))
	}
	dims := make([]int, nd)
	size := uint64(1)
	for i := range dims {
		d := binary.BigEndian.Uint32(hb[4*i:])
		dims[i] = int(d)
		hi, lo := bits.Mul64(size, uint64(d))
		if hi != 0 || lo > maxIDXBytes {
			return nil, nil, fmt.Errorf("%s: %w: dimensions %v declare more than %d bytes", name, ErrBadHeader, dimsOf(hb), uint64(maxIDXBytes))
		}
		size = lo
	}
	if dims[0] == 0 {
		return nil, nil, fmt.Errorf("%s: %w: the header declares 0 %s", name, ErrEmpty, what)
	}
	for i := 1; i < nd; i++ {
		if dims[i] == 0 {
			return nil, nil, fmt.Errorf("%s: %w: dimension %d of %v is 0", name, ErrBadHeader, i, dims)
		}
	}

	var buf bytes.Buffer
	buf.Grow(int(min(size, 1<<20))) // grows as data arrives, so a lying header costs little
	n, err := io.CopyN(&buf, in, int64(size))
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			per := size / uint64(dims[0])
			return nil, nil, fmt.Errorf("%s: %w: dimensions %v declare %d data bytes, the file holds %d (%d whole %s)",
				name, ErrTruncated, dims, size, n, uint64(n)/per, what)
		}
		return nil, nil, fmt.Errorf("%s: reading %d data bytes: %w", name, size, wrap(err))
	}
	// The data must end the file; for gzip this also verifies the CRC-32 and length.
	var one [1]byte
	k, err := io.ReadFull(in, one[:])
	if k > 0 {
		extra, _ := io.Copy(io.Discard, in)
		return nil, nil, fmt.Errorf("%s: %w: %d bytes follow the %d data bytes that dimensions %v declare",
			name, ErrTrailingData, extra+int64(k), size, dims)
	}
	if err != io.EOF {
		return nil, nil, fmt.Errorf("%s: after the data: %w", name, wrap(err))
	}
	return dims, buf.Bytes(), nil
}

// gzErr classifies an error from compress/gzip.
func gzErr(err error) error {
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return ErrTruncated
	}
	return ErrCorrupt
}

func dimsOf(hb []byte) []uint32 {
	d := make([]uint32, len(hb)/4)
	for i := range d {
		d[i] = binary.BigEndian.Uint32(hb[4*i:])
	}
	return d
}

// WriteIDXImages writes im as a plain (uncompressed) idx3-ubyte file. It
// returns an error if len(im.Pixels) != im.N*im.Rows*im.Cols or a dimension is
// negative or exceeds 2³²−1. Wrap w in a gzip.Writer for a .gz file.
func WriteIDXImages(w io.Writer, im *IDXImages) error {
	if im.N < 0 || im.Rows < 0 || im.Cols < 0 || uint64(im.N) > 1<<32-1 || uint64(im.Rows) > 1<<32-1 || uint64(im.Cols) > 1<<32-1 {
		return fmt.Errorf("dataset: WriteIDXImages: dimensions [%d %d %d] out of range", im.N, im.Rows, im.Cols)
	}
	if len(im.Pixels) != im.N*im.Rows*im.Cols {
		return fmt.Errorf("dataset: WriteIDXImages: %d pixels for dimensions [%d %d %d]", len(im.Pixels), im.N, im.Rows, im.Cols)
	}
	return writeIDX(w, IDXImagesMagic, []int{im.N, im.Rows, im.Cols}, im.Pixels)
}

// WriteIDXLabels writes labels as a plain (uncompressed) idx1-ubyte file.
func WriteIDXLabels(w io.Writer, labels []byte) error {
	if uint64(len(labels)) > 1<<32-1 {
		return fmt.Errorf("dataset: WriteIDXLabels: %d labels exceed 2³²−1", len(labels))
	}
	return writeIDX(w, IDXLabelsMagic, []int{len(labels)}, labels)
}

func writeIDX(w io.Writer, magic uint32, dims []int, data []byte) error {
	h := binary.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		h = binary.BigEndian.AppendUint32(h, uint32(d))
	}
	if _, err := w.Write(h); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}
