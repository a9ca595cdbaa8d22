package nn

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"slices"

	"github.com/certify-mli/certify/nn/safetensors"
)

// LabelNoiseFile is the name, inside a run directory, of the record of the
// training labels that `certify train --label-noise p` corrupted: three I64
// tensors of shape [M], "index" (the example's position in the training set,
// ascending), "clean" (its label in the dataset) and "noisy" (the label the
// run was trained on). It extends RUN_FORMAT.md; a run without it was
// trained on the dataset's labels.
const LabelNoiseFile = "label_noise.safetensors"

// LabelNoise records which training labels were replaced: Index [M]
// (ascending positions in the training set), Clean [M] and Noisy [M] the
// labels before and after, with Clean[j] ≠ Noisy[j].
type LabelNoise struct {
	Index, Clean, Noisy []int
}

// CorruptLabels returns a copy of labels in which exactly round(p·N) labels
// (N = len(labels), math.Round: halves away from zero) are replaced, each by
// a class drawn uniformly from the classes−1 classes other than its own, and
// the record of the replacement. The examples to corrupt are the first
// round(p·N) positions of a uniformly random permutation, so every subset of
// that size is equally likely. Everything is drawn from a PCG generator
// seeded by seed alone: the same (labels, classes, p, seed) give the same
// result on every machine.
//
// This is the label-corruption experiment of Lucas et al. 2021 (label noise
// as one of the levers whose effect on monotonicity they measured), in the
// form of Zhang et al. 2017 ("Understanding deep learning requires
// rethinking generalization": a fraction of the labels replaced at random),
// except that a corrupted label always changes, so that the fraction of
// wrong labels is exactly the fraction asked for.
//
// Errors: p outside [0, 1], classes < 2 when a label must change, or a label
// outside [0, classes).
func CorruptLabels(labels []int, classes int, p float64, seed uint64) ([]int, LabelNoise, error) {
	if !(p >= 0 && p <= 1) {
		return nil, LabelNoise{}, fmt.Errorf("label noise: fraction %v is outside [0, 1]", p)
	}
	noisy := slices.Clone(labels)
	m := int(math.Round(p * float64(len(labels))))
	if m == 0 {
		return noisy, LabelNoise{Index: []int{}, Clean: []int{}, Noisy: []int{}}, nil
	}
	if classes < 2 {
		return nil, LabelNoise{}, fmt.Errorf("label noise: %d classes: a corrupted label needs another class to take", classes)
	}
	for i, l := range labels {
		if l < 0 || l >= classes {
			return nil, LabelNoise{}, fmt.Errorf("label noise: label %d of example %d is outside [0, %d)", l, i, classes)
		}
	}
	rng := rand.New(rand.NewPCG(seed^0x6c62272e07bb0142, 0xda3e39cb94b95bdb))
	idx := rng.Perm(len(labels))[:m]
	slices.Sort(idx)
	rec := LabelNoise{Index: idx, Clean: make([]int, m), Noisy: make([]int, m)}
	for j, i := range idx {
		c := rng.IntN(classes - 1)
		if c >= labels[i] {
			c++ // skip the example's own class: uniform over the others
		}
		noisy[i] = c
		rec.Clean[j], rec.Noisy[j] = labels[i], c
	}
	return noisy, rec, nil
}

// Apply replaces, in labels, the label of every recorded example whose
// index is below len(labels) (an evaluation set that is a prefix of the
// training set) with its noisy label. It returns how many were replaced, or
// an error when a recorded clean label disagrees with labels (the record
// belongs to other data).
func (ln LabelNoise) Apply(labels []int) (int, error) {
	n := 0
	for j, i := range ln.Index {
		if i >= len(labels) {
			continue
		}
		if labels[i] != ln.Clean[j] {
			return n, fmt.Errorf("label noise: example %d has label %d, the record says %d: the record belongs to other data", i, labels[i], ln.Clean[j])
		}
		labels[i] = ln.Noisy[j]
		n++
	}
	return n, nil
}

// WriteLabelNoise writes the record as LabelNoiseFile's format at path,
// atomically.
func WriteLabelNoise(path string, ln LabelNoise) error {
	conv := func(name string, v []int) safetensors.Tensor {
		x := make([]int64, len(v))
		for i, l := range v {
			x[i] = int64(l)
		}
		return safetensors.Tensor{Name: name, DType: "I64", Shape: []int{len(v)}, Int: x}
	}
	return safetensors.Write(path, []safetensors.Tensor{conv("index", ln.Index), conv("clean", ln.Clean), conv("noisy", ln.Noisy)}, "F64", nil)
}

// ReadLabelNoise reads a record written by WriteLabelNoise. A missing file
// is (nil, nil): the run was trained on clean labels. Errors name the file
// and the tensor.
func ReadLabelNoise(path string) (*LabelNoise, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	ts, _, err := safetensors.Read(path)
	if err != nil {
		return nil, err
	}
	got := map[string][]int{}
	for _, t := range ts {
		if !safetensors.IsInt(t.DType) || len(t.Shape) != 1 {
			return nil, fmt.Errorf("%s: %s: expected integer [M], found %s %s", path, t.Name, t.DType, ShapeString(t.Shape))
		}
		v := make([]int, len(t.Int))
		for i, x := range t.Int {
			v[i] = int(x)
		}
		got[t.Name] = v
	}
	ln := &LabelNoise{Index: got["index"], Clean: got["clean"], Noisy: got["noisy"]}
	for name, v := range map[string][]int{"index": ln.Index, "clean": ln.Clean, "noisy": ln.Noisy} {
		if v == nil {
			return nil, fmt.Errorf("%s: %s: missing", path, name)
		}
		if len(v) != len(ln.Index) {
			return nil, fmt.Errorf("%s: %s: expected %d entries to match index, found %d", path, name, len(ln.Index), len(v))
		}
	}
	return ln, nil
}
