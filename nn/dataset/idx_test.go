package dataset

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// tinyImages is a hand-written idx3 file: 2 images of 2×3 pixels.
var tinyImages = []byte{
	0x00, 0x00, 0x08, 0x03, // magic
	0x00, 0x00, 0x00, 0x02, // N = 2
	0x00, 0x00, 0x00, 0x02, // rows = 2
	0x00, 0x00, 0x00, 0x03, // cols = 3
	0, 1, 2, 3, 4, 5, // image 0
	255, 128, 64, 32, 16, 8, // image 1
}

// tinyLabels is a hand-written idx1 file: labels 7, 3.
var tinyLabels = []byte{0x00, 0x00, 0x08, 0x01, 0x00, 0x00, 0x00, 0x02, 7, 3}

func gz(t interface{ Fatal(...any) }, b []byte) []byte {
	var buf bytes.Buffer
	z := gzip.NewWriter(&buf)
	if _, err := z.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t testing.TB, dir, name string, b []byte) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadIDXTiny(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name       string
		imgs, labs []byte
	}{
		{"plain", tinyImages, tinyLabels},
		{"gzip", gz(t, tinyImages), gz(t, tinyLabels)},
	} {
		im, err := ReadIDXImages(writeFile(t, dir, tc.name+"-images", tc.imgs))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if im.N != 2 || im.Rows != 2 || im.Cols != 3 {
			t.Errorf("%s: dims [%d %d %d], want [2 2 3]", tc.name, im.N, im.Rows, im.Cols)
		}
		if want := []byte{0, 1, 2, 3, 4, 5, 255, 128, 64, 32, 16, 8}; !bytes.Equal(im.Pixels, want) {
			t.Errorf("%s: pixels %v, want %v", tc.name, im.Pixels, want)
		}
		lab, err := ReadIDXLabels(writeFile(t, dir, tc.name+"-labels", tc.labs))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !bytes.Equal(lab, []byte{7, 3}) {
			t.Errorf("%s: labels %v, want [7 3]", tc.name, lab)
		}
	}
}

// TestReadIDXErrors feeds broken files and checks the error's kind and that it names the file.
func TestReadIDXErrors(t *testing.T) {
	dir := t.TempDir()
	badCRC := gz(t, tinyImages)
	badCRC[len(badCRC)-8] ^= 0xff // CRC-32 in the gzip trailer
	zeroRows := append([]byte(nil), tinyImages[:16]...)
	zeroRows[11] = 0
	zeroN := append([]byte(nil), tinyImages[:16]...)
	zeroN[7] = 0
	huge := []byte{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	for _, tc := range []struct {
		name   string
		labels bool
		data   []byte
		want   error
		msg    string
	}{
		{"empty", false, nil, ErrEmpty, "0 bytes"},
		{"empty.gz", false, gz(t, nil), ErrEmpty, "no idx header"},
		{"short-magic", false, tinyImages[:3], ErrTruncated, "3 of the 4 magic bytes"},
		{"label-as-image", false, tinyLabels, ErrBadMagic, "0x00000801, want 0x00000803"},
		{"image-as-label", true, tinyImages, ErrBadMagic, "idx3 image file"},
		{"text", false, []byte("hello, world"), ErrBadMagic, "0x68656c6c"},
		{"short-header", false, tinyImages[:10], ErrTruncated, "6 of 12 dimension bytes"},
		{"short-data", false, tinyImages[:len(tinyImages)-1], ErrTruncated, "declare 12 data bytes, the file holds 11 (1 whole images)"},
		{"short-data.gz", false, gz(t, tinyImages[:len(tinyImages)-7]), ErrTruncated, "the file holds 5 (0 whole images)"},
		{"short-labels", true, tinyLabels[:9], ErrTruncated, "declare 2 data bytes, the file holds 1"},
		{"cut-gzip", false, gz(t, tinyImages)[:20], ErrTruncated, ""},
		{"trailing", false, append(append([]byte(nil), tinyImages...), 9, 9, 9), ErrTrailingData, "3 bytes follow"},
		{"trailing.gz", true, gz(t, append(append([]byte(nil), tinyLabels...), 1)), ErrTrailingData, "1 bytes follow"},
		{"bad-crc.gz", false, badCRC, ErrCorrupt, "checksum"},
		{"zero-rows", false, zeroRows, ErrBadHeader, "dimension 1 of [2 0 3] is 0"},
		{"zero-n", false, zeroN, ErrEmpty, "declares 0 images"},
		{"huge", false, huge, ErrBadHeader, "more than"},
	} {
		p := writeFile(t, dir, tc.name, tc.data)
		var err error
		if tc.labels {
			_, err = ReadIDXLabels(p)
		} else {
			_, err = ReadIDXImages(p)
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %q does not name %s and say %q", tc.name, err, p, tc.msg)
		}
	}
	p := filepath.Join(dir, "missing-idx3-ubyte.gz")
	if _, err := ReadIDXImages(p); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), p) {
		t.Errorf("missing file: error %v, want fs.ErrNotExist naming %s", err, p)
	}
}

// TestIDXRoundTrip: decoding what WriteIDXImages/WriteIDXLabels wrote, plain or
// gzipped, gives back the same images and labels, and the plain encoding has
// the size 16 + N·rows·cols (8 + N for labels).
func TestIDXRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 20).Draw(t, "n")
		rows := rapid.IntRange(1, 9).Draw(t, "rows")
		cols := rapid.IntRange(1, 9).Draw(t, "cols")
		pix := rapid.SliceOfN(rapid.Byte(), n*rows*cols, n*rows*cols).Draw(t, "pixels")
		labels := rapid.SliceOfN(rapid.Byte(), n, n).Draw(t, "labels")
		in := &IDXImages{N: n, Rows: rows, Cols: cols, Pixels: pix}
		var bi, bl bytes.Buffer
		if err := WriteIDXImages(&bi, in); err != nil {
			t.Fatal(err)
		}
		if err := WriteIDXLabels(&bl, labels); err != nil {
			t.Fatal(err)
		}
		if bi.Len() != 16+n*rows*cols || bl.Len() != 8+n {
			t.Fatalf("encoded sizes %d, %d", bi.Len(), bl.Len())
		}
		zip := rapid.Bool().Draw(t, "gzip")
		ib, lb := bi.Bytes(), bl.Bytes()
		if zip {
			ib, lb = gz(t, ib), gz(t, lb)
		}
		out, err := DecodeIDXImages(bytes.NewReader(ib), "images")
		if err != nil {
			t.Fatal(err)
		}
		if out.N != n || out.Rows != rows || out.Cols != cols || !bytes.Equal(out.Pixels, pix) {
			t.Fatalf("images changed: got [%d %d %d]", out.N, out.Rows, out.Cols)
		}
		got, err := DecodeIDXLabels(bytes.NewReader(lb), "labels")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, labels) {
			t.Fatalf("labels %v, want %v", got, labels)
		}
	})
}

func TestWriteIDXImagesRejectsBadSize(t *testing.T) {
	if err := WriteIDXImages(&bytes.Buffer{}, &IDXImages{N: 2, Rows: 2, Cols: 2, Pixels: make([]byte, 7)}); err == nil {
		t.Error("7 pixels for [2 2 2]: no error")
	}
	if err := WriteIDXImages(&bytes.Buffer{}, &IDXImages{N: -1, Rows: 2, Cols: 2}); err == nil {
		t.Error("negative N: no error")
	}
}

// FuzzDecodeIDX: the idx parsers never panic, and a plain file they accept is
// exactly what the writers produce from the parsed content.
func FuzzDecodeIDX(f *testing.F) {
	f.Add(tinyImages)
	f.Add(tinyLabels)
	f.Add(gz(f, tinyImages))
	f.Add(gz(f, tinyLabels))
	f.Add(tinyImages[:10])
	f.Add([]byte{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 1})
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		gzipped := len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
		im, err := DecodeIDXImages(bytes.NewReader(data), "fuzz")
		if err == nil {
			if im.N <= 0 || im.Rows <= 0 || im.Cols <= 0 || len(im.Pixels) != im.N*im.Rows*im.Cols {
				t.Fatalf("accepted inconsistent images [%d %d %d] with %d pixels", im.N, im.Rows, im.Cols, len(im.Pixels))
			}
			var b bytes.Buffer
			if err := WriteIDXImages(&b, im); err != nil {
				t.Fatal(err)
			}
			if !gzipped && !bytes.Equal(b.Bytes(), data) {
				t.Fatal("re-encoded images differ from the input")
			}
		} else if !strings.HasPrefix(err.Error(), "fuzz: ") {
			t.Fatalf("error %q does not name the file", err)
		}
		lab, err := DecodeIDXLabels(bytes.NewReader(data), "fuzz")
		if err == nil {
			var b bytes.Buffer
			if err := WriteIDXLabels(&b, lab); err != nil {
				t.Fatal(err)
			}
			if len(lab) == 0 || !gzipped && !bytes.Equal(b.Bytes(), data) {
				t.Fatal("re-encoded labels differ from the input")
			}
		} else if !strings.HasPrefix(err.Error(), "fuzz: ") {
			t.Fatalf("error %q does not name the file", err)
		}
	})
}
