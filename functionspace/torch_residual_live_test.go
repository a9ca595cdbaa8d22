package functionspace_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/rundir"
)

const residualLiveModel = `{"format": "sequential/v1", "input_shape": [6], "loss": "cross_entropy", "layers": [
  {"type": "linear", "in": 6, "out": 8},
  {"type": "residual", "scale": true,
   "body": [{"type": "linear", "in": 8, "out": 8}, {"type": "batchnorm1d"}, {"type": "relu"}, {"type": "linear", "in": 8, "out": 8}],
   "shortcut": [{"type": "linear", "in": 8, "out": 8, "bias": false}]},
  {"type": "relu"},
  {"type": "residual", "body": [{"type": "linear", "in": 8, "out": 8}, {"type": "tanh"}]},
  {"type": "linear", "in": 8, "out": 3}]}
`

// residualLivePy builds model.json in PyTorch with RUN_FORMAT's Residual
// module (torchref.build), PyTorch's own default initialisation (two seeds,
// the scale gains and BatchNorm statistics set away from their resets), and
// saves model.state_dict() as it is to init/final.safetensors; then it
// evaluates the run with nested functorch.jvp.
const residualLivePy = `
import json, sys
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
import torchref
d = sys.argv[2]
spec = json.load(open(d + "/model.json"))
for name, seed in (("init.safetensors", 1), ("final.safetensors", 2)):
    torch.manual_seed(seed)
    m = torchref.build(spec)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torchref.Residual) and mod.scale is not None:
                mod.scale.fill_(0.4 * seed)
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.normal_(0, 0.3); mod.running_var.uniform_(0.5, 1.5); mod.weight.normal_(1, 0.2)
    sd = m.state_dict()
    torchref.write_safetensors(d + "/" + name, {k: (v.numpy(), "I64" if v.dtype == torch.int64 else "F64") for k, v in sd.items()})
rng = np.random.default_rng(0)
torchref.write_safetensors(d + "/data.safetensors", {"x": (rng.normal(size=(20, 6)), "F64"), "y": (rng.integers(0, 3, 20), "I64")})
res, _ = torchref.evaluate(d, [0.0, 0.5, 1.0], derivs=True, paths=True, timing=False)
print(json.dumps(res))
`

// TestTorchSavedResidual: a residual model built and initialised by PyTorch
// from RUN_FORMAT's module classes and saved from its state_dict loads as a
// run directory unchanged, and L, γ, γ′, γ″ along the line agree with
// PyTorch's nested functorch.jvp (L to 1e-12 relative, the derivatives to
// 1e-10).
func TestTorchSavedResidual(t *testing.T) {
	dir, out := runTorchScript(t, residualLiveModel, residualLivePy)
	var want torchExpected
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	if len(want.Alphas) != 3 || len(want.Velocity) != 3 {
		t.Fatalf("PyTorch answered %d α, %d velocities; want 3", len(want.Alphas), len(want.Velocity))
	}
	run, err := rundir.Read(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := functionspace.New(run.Model, run.Theta0, run.ThetaT, run.X, run.Targets, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for j, a := range want.Alphas {
		s := p.At(a)
		if e := pureRelErr(s.Loss, want.Loss[j]); e > 1e-12 {
			t.Errorf("α=%v: L %.17g, PyTorch %.17g (%.2g)", a, s.Loss, want.Loss[j], e)
		}
		if e := maxMatErr(t, s.Velocity, want.Velocity[j]); e > 1e-10 {
			t.Errorf("α=%v: γ′ differs by %.2g", a, e)
		}
		if e := maxMatErr(t, s.Acceleration, want.Acceleration[j]); e > 1e-10 {
			t.Errorf("α=%v: γ″ differs by %.2g", a, e)
		}
	}
}

// runTorchScript writes model.json (the text model) into a fresh directory
// and runs the Python script py there with tools/torchref on its path
// (arguments: torchref's directory, the run directory), returning the
// directory and the script's standard output. It skips the test under
// -short or without PyTorch and functorch, and fails it when the script
// fails (its standard error in the message).
func runTorchScript(t *testing.T, model, py string) (dir string, out []byte) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs PyTorch")
	}
	if out, err := exec.Command(systemPython, "-c", "import torch, functorch").CombinedOutput(); err != nil {
		t.Skipf("PyTorch with functorch not available in %s: %v %s", systemPython, err, out)
	}
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.json"), []byte(model), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(systemPython, "-c", py, filepath.Join("..", "tools", "torchref"), dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.Bytes())
	}
	return dir, out
}
