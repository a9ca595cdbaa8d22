package dataset

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
)

// WriteSubset writes the first ntrain training and the first ntest test
// examples of the idx files in srcDir (names as in Load) to outDir as the
// gzipped idx files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
// t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz. The bytes depend
// only on the input and the Go version's compress/flate: the gzip header has
// no name and modification time 0. This is how testdata/mnist (mnist-small)
// was made; an error names the file read or written.
func WriteSubset(srcDir, outDir string, ntrain, ntest int) error {
	src := dirSource(srcDir)
	for _, s := range []struct {
		prefix string
		n      int
	}{{"train", ntrain}, {"t10k", ntest}} {
		im, imName, err := readFrom(src, s.prefix+"-images", "idx3-ubyte", DecodeIDXImages)
		if err != nil {
			return err
		}
		lab, labName, err := readFrom(src, s.prefix+"-labels", "idx1-ubyte", DecodeIDXLabels)
		if err != nil {
			return err
		}
		if s.n <= 0 || s.n > im.N || s.n > len(lab) {
			return fmt.Errorf("dataset: WriteSubset: %d examples asked, %s holds %d and %s %d", s.n, imName, im.N, labName, len(lab))
		}
		d := im.Rows * im.Cols
		sub := &IDXImages{N: s.n, Rows: im.Rows, Cols: im.Cols, Pixels: im.Pixels[:s.n*d]}
		if err := writeGzip(filepath.Join(outDir, s.prefix+"-images-idx3-ubyte.gz"), func(b *bytes.Buffer) error { return WriteIDXImages(b, sub) }); err != nil {
			return err
		}
		if err := writeGzip(filepath.Join(outDir, s.prefix+"-labels-idx1-ubyte.gz"), func(b *bytes.Buffer) error { return WriteIDXLabels(b, lab[:s.n]) }); err != nil {
			return err
		}
	}
	return nil
}

// writeGzip writes the bytes that fill produces, gzipped with a zero header, to path.
func writeGzip(path string, fill func(*bytes.Buffer) error) error {
	var raw, gz bytes.Buffer
	if err := fill(&raw); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	z, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return err
	}
	// z.Header is zero: no name, no comment, ModTime 0 (written as MTIME 0).
	if _, err := z.Write(raw.Bytes()); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := z.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.WriteFile(path, gz.Bytes(), 0o644); err != nil {
		return err
	}
	return nil
}
