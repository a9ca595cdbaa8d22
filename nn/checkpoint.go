package nn

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/certify-mli/certify/nn/npz"
	"github.com/certify-mli/certify/nn/safetensors"
	"github.com/certify-mli/certify/nn/torchpt"
)

// ReadState reads a checkpoint, safetensors or (by extension) .npz, into a
// State (RUN_FORMAT.md, "Checkpoints"). Floating tensors of any supported
// dtype (F64, F32, F16, BF16) become float64. Integer buffers named
// "*.num_batches_tracked" (BatchNorm's count, a buffer: not a parameter, not
// part of the weight distance) are held as float64 tensors too. Any other
// integer tensor is an error naming the file and key.
func ReadState(path string) (State, error) {
	var ts []safetensors.Tensor
	var err error
	if strings.EqualFold(filepath.Ext(path), ".npz") {
		ts, err = npz.Read(path)
	} else {
		ts, _, err = safetensors.Read(path)
		if err != nil {
			err = explainForeign(path, err)
		}
	}
	if err != nil {
		return nil, err
	}
	return StateFromTensors(ts, path)
}

// StateFromTensors converts checkpoint tensors to a State as ReadState does:
// floating tensors as float64, integer "*.num_batches_tracked" buffers as
// float64 too, any other integer tensor an error naming source and key.
func StateFromTensors(ts []safetensors.Tensor, source string) (State, error) {
	s := State{}
	for _, t := range ts {
		if safetensors.IsInt(t.DType) {
			if strings.HasSuffix(t.Name, ".num_batches_tracked") {
				f := make([]float64, len(t.Int))
				for i, v := range t.Int {
					f[i] = float64(v)
				}
				s[t.Name] = &Tensor{Shape: t.Shape, Data: f}
				continue
			}
			return nil, fmt.Errorf("%s: %s: expected a floating tensor, found %s", source, t.Name, t.DType)
		}
		s[t.Name] = &Tensor{Shape: t.Shape, Data: t.Float}
	}
	return s, nil
}

// WriteState writes s as safetensors at path, atomically, with float tensors
// stored as dtype ("F32", the default when empty, or "F64"), except
// "*.num_batches_tracked", written as I64 (rounded to the nearest integer)
// as PyTorch holds it. Keys are PyTorch state_dict names, so the file loads
// into torch.nn.Sequential with strict=True.
func WriteState(path string, s State, dtype string) error {
	if dtype == "" {
		dtype = "F32"
	}
	var ts []safetensors.Tensor
	for _, k := range s.Names() {
		t := s[k]
		if strings.HasSuffix(k, ".num_batches_tracked") {
			n := make([]int64, len(t.Data))
			for i, v := range t.Data {
				n[i] = int64(math.Round(v))
			}
			ts = append(ts, safetensors.Tensor{Name: k, DType: "I64", Shape: t.Shape, Int: n})
			continue
		}
		ts = append(ts, safetensors.Tensor{Name: k, DType: dtype, Shape: t.Shape, Float: t.Data})
	}
	return safetensors.Write(path, ts, dtype, map[string]string{"format": "pt"})
}

// StripWrapperPrefixes renames the tensors of s when every key carries a
// wrapper's prefix (torchpt.KeyPrefixes: DataParallel's "module.",
// torch.compile's "_orig_mod.", possibly nested), and returns the prefixes
// removed in order (nil, and s unchanged, otherwise). A plain
// nn.Sequential's keys start with a layer index, so they never match.
func (s State) StripWrapperPrefixes() []string {
	names := make([]string, 0, len(s))
	for k := range s {
		names = append(names, k)
	}
	removed := torchpt.WrapperPrefixes(names)
	cut := len(strings.Join(removed, ""))
	if cut == 0 {
		return nil
	}
	for _, k := range names {
		t := s[k]
		delete(s, k)
		s[k[cut:]] = t
	}
	return removed
}
