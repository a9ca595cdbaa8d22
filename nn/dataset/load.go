package dataset

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/certify-mli/certify/testdata"
)

// Sizes of the committed MNIST subset ("mnist-small"): the first
// MNISTSmallTrain training and the first MNISTSmallTest test examples of MNIST.
const (
	MNISTSmallTrain = 5000
	MNISTSmallTest  = 1000
)

// Set is a labelled data set of N examples (THEORY.md §1: inputs x_i, labels y_i).
type Set struct {
	// Name is the canonical data set name ("mnist", "fashion-mnist",
	// "mnist-small" or "idx") and Split is "train" or "test".
	Name, Split string
	// Source says where the examples were read from: a directory, or
	// "embedded testdata/mnist" for mnist-small.
	Source string
	// X is [N, D] row-major: the pixels of example i, scaled to [0, 1] as
	// byte/255, are X[i*D : (i+1)*D].
	X    []float64
	N, D int
	// Shape is the shape of one example, [1, rows, cols] (channels, height,
	// width, PyTorch's layout); its product is D.
	Shape []int
	// Y is [N]: Y[i] ∈ {0, …, Classes−1} is the class label of example i.
	Y       []int
	Classes int
}

// Spec names a data set: the `data` field of a run's config.json
// (RUN_FORMAT.md), e.g. {"name":"mnist","split":"train","limit":5000}.
type Spec struct {
	// Name is "mnist", "fashion-mnist" (or "fashion_mnist"), "mnist-small"
	// (or "mnist_small") or "idx"; see Load.
	Name string `json:"name" flag:"data"`
	// Split is "train" or "test"; empty means "train".
	Split string `json:"split"`
	// Limit, when positive, keeps the first Limit examples of the split.
	Limit int `json:"limit,omitempty" flag:"limit"`
	// Dir, when set, is a directory of idx files read instead of the data
	// set's default location.
	Dir string `json:"dir,omitempty" flag:"data-dir"`
}

// Load reads the data set that spec names:
//
//   - "mnist": MNIST (LeCun, Cortes & Burges), 60000 train / 10000 test 28×28
//     digits, 10 classes, from MNISTDir (or spec.Dir);
//   - "fashion-mnist", alias "fashion_mnist": Fashion-MNIST (Xiao, Rasul &
//     Vollgraf 2017), 60000 / 10000 28×28 images, 10 classes, from
//     DefaultFashionMNISTDir (Debian's dataset-fashion-mnist) or spec.Dir;
//   - "mnist-small", alias "mnist_small": the first MNISTSmallTrain /
//     MNISTSmallTest examples of MNIST, embedded in the binary (package
//     testdata); spec.Dir must be empty;
//   - "idx": any directory spec.Dir of idx files; Classes is the largest label + 1.
//
// A directory must hold, for the train split, train-images-idx3-ubyte and
// train-labels-idx1-ubyte, and for the test split t10k-images-idx3-ubyte and
// t10k-labels-idx1-ubyte, each gzipped (name + ".gz", tried first) or plain;
// the names with a '.' before "idx" (train-images.idx3-ubyte) are accepted too.
//
// Load reads and validates both whole files, then keeps the first spec.Limit
// examples (all when Limit is 0), so the result is deterministic. Errors name
// the file: a missing file lists the paths tried (wrapping fs.ErrNotExist),
// other errors wrap those of ReadIDXImages, ErrCountMismatch (images and labels
// differ in number) or ErrLabelRange (a label ≥ 10 for the MNIST-like sets);
// a negative Limit or one above the split's size, an unknown name or split is
// an error too.
func Load(spec Spec) (*Set, error) {
	name := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(spec.Name)), "_", "-")
	split := spec.Split
	if split == "" {
		split = "train"
	}
	var prefix string
	switch split {
	case "train":
		prefix = "train"
	case "test":
		prefix = "t10k"
	default:
		return nil, fmt.Errorf("dataset: unknown split %q, want \"train\" or \"test\"", spec.Split)
	}
	if spec.Limit < 0 {
		return nil, fmt.Errorf("dataset: negative limit %d", spec.Limit)
	}

	var src source
	classes := 10
	switch name {
	case "mnist":
		dir := spec.Dir
		if dir == "" {
			var err error
			if dir, err = MNISTDir(); err != nil {
				return nil, err
			}
		}
		src = dirSource(dir)
	case "fashion-mnist":
		dir := spec.Dir
		if dir == "" {
			dir = DefaultFashionMNISTDir
			if _, err := os.Stat(dir); err != nil {
				return nil, fmt.Errorf("dataset: Fashion-MNIST not found: %w (install Debian's package dataset-fashion-mnist, or set dir)", err)
			}
		}
		src = dirSource(dir)
	case "mnist-small":
		if spec.Dir != "" {
			return nil, fmt.Errorf("dataset: mnist-small is embedded in the program; dir must be empty, found %q (use name \"mnist\" or \"idx\" with a directory)", spec.Dir)
		}
		src = embedSource{}
	case "idx":
		if spec.Dir == "" {
			return nil, errors.New("dataset: data set \"idx\" needs a directory of idx files (dir; --data-dir on the command line)")
		}
		src = dirSource(spec.Dir)
		classes = 0
	default:
		return nil, fmt.Errorf("dataset: unknown data set %q, want \"mnist\", \"fashion-mnist\", \"mnist-small\" or \"idx\" (with dir)", spec.Name)
	}

	imgs, imgName, err := readFrom(src, prefix+"-images", "idx3-ubyte", DecodeIDXImages)
	if err != nil {
		return nil, err
	}
	labels, labName, err := readFrom(src, prefix+"-labels", "idx1-ubyte", DecodeIDXLabels)
	if err != nil {
		return nil, err
	}
	if imgs.N != len(labels) {
		return nil, fmt.Errorf("dataset: %w: %s holds %d images, %s holds %d labels", ErrCountMismatch, imgName, imgs.N, labName, len(labels))
	}
	if classes == 0 {
		for _, l := range labels {
			classes = max(classes, int(l)+1)
		}
	}
	for i, l := range labels {
		if int(l) >= classes {
			return nil, fmt.Errorf("%s: %w: label %d of example %d, want < %d", labName, ErrLabelRange, l, i, classes)
		}
	}
	n := imgs.N
	if spec.Limit > 0 {
		if spec.Limit > n {
			return nil, fmt.Errorf("dataset: limit %d exceeds the %d examples of %s %s (%s)", spec.Limit, n, name, split, imgName)
		}
		n = spec.Limit
	}

	d := imgs.Rows * imgs.Cols
	var scale [256]float64
	for b := range scale {
		scale[b] = float64(b) / 255
	}
	x := make([]float64, n*d)
	for i, b := range imgs.Pixels[:n*d] {
		x[i] = scale[b]
	}
	y := make([]int, n)
	for i, l := range labels[:n] {
		y[i] = int(l)
	}
	return &Set{
		Name: name, Split: split, Source: src.String(),
		X: x, N: n, D: d, Shape: []int{1, imgs.Rows, imgs.Cols},
		Y: y, Classes: classes,
	}, nil
}

// source is where Load finds files by name.
type source interface {
	// open opens the named file and returns the name to print in errors.
	open(name string) (io.ReadCloser, string, error)
	String() string
}

type dirSource string

func (d dirSource) open(name string) (io.ReadCloser, string, error) {
	p := filepath.Join(string(d), name)
	f, err := os.Open(p)
	return f, p, err
}

func (d dirSource) String() string { return string(d) }

type embedSource struct{}

func (embedSource) open(name string) (io.ReadCloser, string, error) {
	f, err := testdata.MNIST.Open(path.Join("mnist", name))
	return f, "testdata/mnist/" + name + " (embedded)", err
}

func (embedSource) String() string { return "embedded testdata/mnist" }

// readFrom opens the first of stem-kind.gz, stem-kind, stem.kind.gz,
// stem.kind that exists in src and decodes it.
func readFrom[T any](src source, stem, kind string, decode func(io.Reader, string) (T, error)) (T, string, error) {
	var zero T
	var tried []string
	for _, name := range []string{stem + "-" + kind + ".gz", stem + "-" + kind, stem + "." + kind + ".gz", stem + "." + kind} {
		f, shown, err := src.open(name)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				tried = append(tried, shown)
				continue
			}
			return zero, shown, fmt.Errorf("dataset: %w", err)
		}
		v, err := decode(f, shown)
		f.Close()
		return v, shown, err
	}
	return zero, "", fmt.Errorf("dataset: %s %s file not found; tried %s: %w", stem, kind, strings.Join(tried, ", "), fs.ErrNotExist)
}
