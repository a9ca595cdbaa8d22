package nn

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/certify-mli/certify/nn/npz"
	"github.com/certify-mli/certify/nn/safetensors"
)

// ReadState reads a checkpoint, safetensors or (by extension) .npz, into a
// State (RUN_FORMAT.md, "Checkpoints"). Floating tensors of any supported
// dtype (F64, F32, F16, BF16) become float64. Integer buffers named
// "*.num_batches_tracked" are skipped: they are not parameters and are never
// interpolated. Any other integer tensor is an error naming the file and key.
func ReadState(path string) (State, error) {
	var ts []safetensors.Tensor
	var err error
	if strings.EqualFold(filepath.Ext(path), ".npz") {
		ts, err = npz.Read(path)
	} else {
		ts, _, err = safetensors.Read(path)
	}
	if err != nil {
		return nil, err
	}
	s := State{}
	for _, t := range ts {
		if safetensors.IsInt(t.DType) {
			if strings.HasSuffix(t.Name, ".num_batches_tracked") {
				continue
			}
			return nil, fmt.Errorf("%s: %s: expected a floating tensor, found %s", path, t.Name, t.DType)
		}
		s[t.Name] = &Tensor{Shape: t.Shape, Data: t.Float}
	}
	return s, nil
}

// WriteState writes s as safetensors at path, atomically, with float tensors
// stored as dtype ("F32", the default when empty, or "F64"). Keys are
// PyTorch state_dict names, so the file loads into torch.nn.Sequential.
func WriteState(path string, s State, dtype string) error {
	if dtype == "" {
		dtype = "F32"
	}
	var ts []safetensors.Tensor
	for _, k := range s.Names() {
		t := s[k]
		ts = append(ts, safetensors.Tensor{Name: k, DType: dtype, Shape: t.Shape, Float: t.Data})
	}
	return safetensors.Write(path, ts, dtype, map[string]string{"format": "pt"})
}
