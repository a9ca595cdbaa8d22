package rundir_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/rundir"
)

// writeTinyRun writes a 3-4-2 tanh run with data.safetensors into dir.
func writeTinyRun(t *testing.T, dir string) (nn.State, *mat.Dense, nn.Targets) {
	t.Helper()
	spec := nn.MLPSpec([]int{3, 4, 2}, "tanh", "cross_entropy")
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, 1)
	sT, _ := nn.Init(m, "pytorch", 1, 2)
	x := mat.NewDense(5, 3, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = math.Cos(float64(i))
	}
	y := nn.Targets{Labels: []int{0, 1, 1, 0, 1}}
	if err := spec.Write(filepath.Join(dir, "model.json")); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]nn.State{"init.safetensors": s0, "final.safetensors": sT} {
		if err := nn.WriteState(filepath.Join(dir, name), s, "F64"); err != nil {
			t.Fatal(err)
		}
	}
	if err := rundir.WriteData(filepath.Join(dir, "data.safetensors"), x, y); err != nil {
		t.Fatal(err)
	}
	return sT, x, y
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestForeignCheckpointErrors: a torch.save archive, a legacy torch pickle
// or an ONNX model in place of final.safetensors, a final.pt beside a
// missing final.safetensors, and a state whose keys carry DataParallel's
// prefix each get an error naming the file, what it is, and certify import
// — not a safetensors header-length error.
func TestForeignCheckpointErrors(t *testing.T) {
	for _, c := range []struct {
		name    string
		prepare func(dir string)
		msg     []string
	}{
		{"torch zip renamed", func(dir string) {
			copyFile(t, "../nn/torchpt/testdata/tensors.pt", filepath.Join(dir, "final.safetensors"))
		}, []string{"final.safetensors: this is a zip archive (a PyTorch torch.save checkpoint", "certify import"}},
		{"legacy torch renamed", func(dir string) {
			copyFile(t, "../nn/torchpt/testdata/legacy.pt", filepath.Join(dir, "final.safetensors"))
		}, []string{"final.safetensors: this is a pickle (a legacy PyTorch torch.save file)", "certify import"}},
		{"onnx renamed", func(dir string) {
			copyFile(t, "../nn/onnx/testdata/mlp13.onnx", filepath.Join(dir, "final.safetensors"))
		}, []string{"final.safetensors: this is an ONNX model", "certify import"}},
		{"final.pt instead", func(dir string) {
			os.Remove(filepath.Join(dir, "final.safetensors"))
			copyFile(t, "../nn/torchpt/testdata/tensors.pt", filepath.Join(dir, "final.pt"))
		}, []string{"final.safetensors: missing, but", "final.pt is there", "certify import"}},
		{"PyTorch output folder", func(dir string) { // init.pt, final.pt, data.npz, no model.json
			for _, f := range []string{"model.json", "init.safetensors", "final.safetensors"} {
				os.Remove(filepath.Join(dir, f))
			}
			copyFile(t, "../nn/torchpt/testdata/tensors.pt", filepath.Join(dir, "init.pt"))
			copyFile(t, "../nn/torchpt/testdata/tensors.pt", filepath.Join(dir, "final.pt"))
		}, []string{"model.json: missing, but", "final.pt, ", "init.pt are there", "certify import"}},
		{"unknown prefix", func(dir string) {
			s, err := nn.ReadState(filepath.Join(dir, "final.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			p := nn.State{}
			for k, v := range s {
				p["net."+k] = v // a prefix no known wrapper writes (Lightning's style)
			}
			if err := nn.WriteState(filepath.Join(dir, "final.safetensors"), p, "F64"); err != nil {
				t.Fatal(err)
			}
		}, []string{"0.weight: missing", "found net.0.weight", "strip it, or use certify import"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTinyRun(t, dir)
			c.prepare(dir)
			_, err := rundir.Read(dir, 0)
			if err == nil {
				t.Fatal("no error")
			}
			for _, m := range c.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q lacks %q", err, m)
				}
			}
			if strings.Contains(err.Error(), "header length") {
				t.Errorf("error %q is the safetensors header error", err)
			}
		})
	}
}

// TestWrapperPrefixesStripped: checkpoints whose keys all carry
// DataParallel's "module." and torch.compile's "_orig_mod." (nested, as
// torch.compile of a DataParallel model writes them) load with the prefixes
// stripped, the same θ as the plain checkpoint, and a note saying so
// (RUN_FORMAT.md "Key prefixes … recognised and stripped, with a note").
func TestWrapperPrefixesStripped(t *testing.T) {
	dir := t.TempDir()
	sT, _, _ := writeTinyRun(t, dir)
	p := nn.State{}
	for k, v := range sT {
		p["module._orig_mod."+k] = v
	}
	if err := nn.WriteState(filepath.Join(dir, "final.safetensors"), p, "F64"); err != nil {
		t.Fatal(err)
	}
	r, err := rundir.Read(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.ThetaT) != len(sT) {
		t.Fatalf("θT has %d tensors, want %d", len(r.ThetaT), len(sT))
	}
	for k, v := range sT {
		got, ok := r.ThetaT[k]
		if !ok {
			t.Fatalf("θT lacks %s after stripping", k)
		}
		for i := range v.Data {
			if got.Data[i] != v.Data[i] {
				t.Fatalf("θT %s[%d] = %v, want %v", k, i, got.Data[i], v.Data[i])
			}
		}
	}
	if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], `module.`) || !strings.Contains(r.Notes[0], `_orig_mod.`) || !strings.Contains(r.Notes[0], "final.safetensors") {
		t.Errorf("notes %q do not say which prefixes were stripped from which file", r.Notes)
	}
	// The plain θ0 beside it needs no note.
	for _, n := range r.Notes {
		if strings.Contains(n, "init.safetensors") {
			t.Errorf("note %q for the unprefixed θ0", n)
		}
	}
}

// TestDataNPZ: a run directory with data.npz instead of data.safetensors
// loads its examples and labels.
func TestDataNPZ(t *testing.T) {
	dir := t.TempDir()
	// The committed npz of nn/onnx (numpy.savez) has x [5, 2, 3] and 5
	// labels in 0..2: the model reads [2, 3] inputs into 3 classes.
	copyFile(t, "../nn/onnx/testdata/mlp_data.npz", filepath.Join(dir, "data.npz"))
	spec := nn.MLPSpec([]int{6, 4, 3}, "tanh", "cross_entropy")
	spec.InputShape = []int{2, 3}
	spec.Layers = append([]nn.LayerSpec{{Type: "flatten"}}, spec.Layers...)
	if err := spec.Write(filepath.Join(dir, "model.json")); err != nil {
		t.Fatal(err)
	}
	m, _ := nn.Build(spec)
	s0, _ := nn.Init(m, "pytorch", 1, 1)
	for _, n := range []string{"init.safetensors", "final.safetensors"} {
		if err := nn.WriteState(filepath.Join(dir, n), s0, "F64"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := rundir.Read(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n, d := got.X.Dims(); n != 5 || d != 6 || !strings.HasSuffix(got.DataSource, "data.npz") {
		t.Errorf("x [%d, %d] from %q", n, d, got.DataSource)
	}
	if l := got.Targets.Labels; len(l) != 5 || l[0] != 0 || l[1] != 1 || l[2] != 2 || l[3] != 1 || l[4] != 0 {
		t.Errorf("labels %v, want [0 1 2 1 0] as numpy saved them", l)
	}
}

// TestDataSourceRecorded: a data file written with its source (certify
// export, certify import) says it in DataSource and DataOrigin, with the
// example limit after it; one written without says only its path.
func TestDataSourceRecorded(t *testing.T) {
	dir := t.TempDir()
	_, x, y := writeTinyRun(t, dir)
	path := filepath.Join(dir, "data.safetensors")
	r, err := rundir.Read(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	if r.DataSource != path+" (first 3 examples)" || r.DataOrigin != "" {
		t.Errorf("no source: DataSource %q, DataOrigin %q", r.DataSource, r.DataOrigin)
	}
	if err := rundir.WriteDataFrom(path, x, y, "mnist train split, first 5 examples"); err != nil {
		t.Fatal(err)
	}
	if r, err = rundir.Read(dir, 3); err != nil {
		t.Fatal(err)
	}
	if want := path + " (mnist train split, first 5 examples; first 3 examples)"; r.DataSource != want {
		t.Errorf("DataSource %q, want %q", r.DataSource, want)
	}
	if want := "mnist train split, first 5 examples; first 3 examples"; r.DataOrigin != want {
		t.Errorf("DataOrigin %q, want %q", r.DataOrigin, want)
	}
}
