package functionspace_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/nn/dataset"
	"github.com/certify-mli/certify/nn/optim"
	"github.com/certify-mli/certify/rundir"
)

const systemPython = "/usr/bin/python3"

// TestTorchLive trains a real run in process (784-32-10 ReLU on the first 2000
// images of mnist-small, one epoch of SGD with momentum), writes its run
// directory (RUN_FORMAT.md), and has PyTorch evaluate it with
// tools/torchref/torchref.py at α ∈ {0, 0.5, 1}. The loss must agree to 1e-9
// relative (the acceptance criterion of the PyTorch cross-check) and the
// velocity γ′ (THEORY.md §2) to 1e-10; PyTorch also proves that the files load
// into torch.nn.Sequential with load_state_dict(strict=True).
func TestTorchLive(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a network and runs PyTorch")
	}
	if out, err := exec.Command(systemPython, "-c", "import torch, functorch").CombinedOutput(); err != nil {
		t.Skipf("PyTorch with functorch not available in %s: %v %s", systemPython, err, out)
	}
	set, err := dataset.Load(dataset.Spec{Name: "mnist-small", Split: "train", Limit: 2000})
	if err != nil {
		t.Fatal(err)
	}
	x := mat.NewDense(set.N, set.D, set.X)
	targets := nn.Targets{Labels: set.Y}
	spec := nn.MLPSpec([]int{set.D, 32, 10}, "relu", "cross_entropy")
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	theta0, err := nn.Init(m, "pytorch", 1, 7)
	if err != nil {
		t.Fatal(err)
	}
	thetaT := theta0.Clone()
	sgd, err := optim.New("sgd", optim.Config{LR: 0.05, Momentum: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	if err := nn.Train(context.Background(), m, thetaT, sgd, x, targets, nn.TrainConfig{Epochs: 1, Batch: 32, Seed: 7}, nil); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	const n = 500 // a fixed subset of the training examples: the first 500
	for _, w := range []error{
		spec.Write(filepath.Join(dir, "model.json")),
		nn.WriteState(filepath.Join(dir, "init.safetensors"), theta0, "F64"),
		nn.WriteState(filepath.Join(dir, "final.safetensors"), thetaT, "F64"),
		rundir.WriteData(filepath.Join(dir, "data.safetensors"), x.Slice(0, n, 0, set.D).(*mat.Dense), targets.Rows(0, n)),
	} {
		if w != nil {
			t.Fatal(w)
		}
	}

	cmd := exec.Command(systemPython, filepath.Join("..", "tools", "torchref", "torchref.py"), dir, "--alphas", "0,0.5,1", "--derivs")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("torchref.py: %v\n%s", err, stderr.Bytes())
	}
	var want torchExpected
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}

	run, err := rundir.Read(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := functionspace.New(run.Model, run.Theta0, run.ThetaT, run.X, run.Targets, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.N != n {
		t.Fatalf("run has %d examples, want %d", p.N, n)
	}
	for j, a := range want.Alphas {
		s := p.At(a)
		if e := pureRelErr(s.Loss, want.Loss[j]); e > 1e-9 {
			t.Errorf("α=%v: loss %.17g, PyTorch %.17g (relative error %.2g > 1e-9)", a, s.Loss, want.Loss[j], e)
		} else {
			t.Logf("α=%v: loss %.17g, PyTorch %.17g: %s", a, s.Loss, want.Loss[j], digits(e))
		}
		if s.Accuracy != want.Accuracy[j] {
			t.Errorf("α=%v: accuracy %v, PyTorch %v", a, s.Accuracy, want.Accuracy[j])
		}
		if e := maxMatErr(t, s.Velocity, want.Velocity[j]); e > 1e-10 {
			t.Errorf("α=%v: γ′ differs from PyTorch by %.2g (relative to max(1,|·|)) > 1e-10", a, e)
		} else {
			t.Logf("α=%v: γ′ %s", a, digits(e))
		}
	}
	if want.Loss[len(want.Loss)-1] >= want.Loss[0] {
		t.Errorf("training did not lower the loss: L(0) = %v, L(1) = %v", want.Loss[0], want.Loss[len(want.Loss)-1])
	}
}
