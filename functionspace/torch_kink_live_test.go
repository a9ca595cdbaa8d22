package functionspace_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/rundir"
)

// blankPatchModel is a resnet in miniature (the built-in resnet-N-bn's
// pieces): a bias-free conv stem with batchnorm2d and ReLU, a max-pool, a
// residual block with a strided conv + batchnorm2d shortcut, and the
// adaptive average pool and linear head.
const blankPatchModel = `{"format": "sequential/v1", "input_shape": [1, 8, 8], "loss": "cross_entropy", "layers": [
  {"type": "conv2d", "in": 1, "out": 4, "kernel": 3, "padding": 1, "bias": false},
  {"type": "batchnorm2d", "features": 4}, {"type": "relu"},
  {"type": "maxpool2d", "kernel": 2},
  {"type": "residual",
   "body": [{"type": "conv2d", "in": 4, "out": 6, "kernel": 3, "stride": 2, "padding": 1, "bias": false},
            {"type": "batchnorm2d", "features": 6}, {"type": "relu"},
            {"type": "conv2d", "in": 6, "out": 6, "kernel": 3, "padding": 1, "bias": false},
            {"type": "batchnorm2d", "features": 6}],
   "shortcut": [{"type": "conv2d", "in": 4, "out": 6, "kernel": 1, "stride": 2, "bias": false},
                {"type": "batchnorm2d", "features": 6}]},
  {"type": "relu"},
  {"type": "adaptive_avgpool2d", "output": 1}, {"type": "flatten"},
  {"type": "linear", "in": 6, "out": 3}]}
`

// blankPatchPy saves θ0 as PyTorch initialises the model (BatchNorm at its
// reset: running statistics (0, 1), γ = 1, β = 0) and θT from another seed
// with every BatchNorm tensor moved; the images are blank (exactly 0) but
// for a 4×4 patch. So at α = 0 blank regions reach the ReLUs as exactly 0
// and the max-pool windows there tie at 0: the configuration of a
// resnet-N-bn on Fashion-MNIST at α = 0. It prints torchref.evaluate's
// result and the number of ReLU inputs exactly 0 at α = 0.
const blankPatchPy = `
import json, sys
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
import torchref
d = sys.argv[2]
spec = json.load(open(d + "/model.json"))
for name, seed in (("init.safetensors", 1), ("final.safetensors", 2)):
    torch.manual_seed(seed)
    m = torchref.build(spec)
    if seed == 2:
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.normal_(0, 0.3); mod.running_var.uniform_(0.5, 1.5)
                    mod.weight.normal_(1, 0.2); mod.bias.normal_(0, 0.2)
    sd = m.state_dict()
    torchref.write_safetensors(d + "/" + name, {k: (v.numpy(), "I64" if v.dtype == torch.int64 else "F64") for k, v in sd.items()})
rng = np.random.default_rng(3)
x = np.zeros((12, 1, 8, 8))
for i in range(12):
    r, c = rng.integers(0, 5, 2)
    x[i, 0, r:r + 4, c:c + 4] = rng.uniform(0.1, 1, (4, 4))
torchref.write_safetensors(d + "/data.safetensors", {"x": (x, "F64"), "y": (rng.integers(0, 3, 12), "I64")})
res, _ = torchref.evaluate(d, [0.0, 0.5, 1.0], derivs=True, paths=True, timing=False)
_, model, th0, _, xs, _ = torchref.load_run(d)
zeros = []
hooks = [mod.register_forward_hook(lambda mod, inp, out: zeros.append(int((inp[0] == 0).sum())))
         for mod in model.modules() if isinstance(mod, (torch.nn.ReLU, torch.nn.LeakyReLU))]
with torch.no_grad():
    model.load_state_dict(th0)
    model(xs)
res["relu_zero_inputs_at_0"] = sum(zeros)
print(json.dumps(res))
`

// TestTorchBlankPatchKinks: the configuration of issue 13's resnet
// disagreement, where blank image regions reach ReLUs as exactly 0 at α = 0
// (BatchNorm at its reset). γ, γ′, γ″ agree with torchref's nested
// functorch.jvp to 1e-10 at α = 0, 0.5, 1, both taking the one-sided
// derivatives for α increasing at those kinks (THEORY.md §2, §9; torch's own
// relu′(0) = 0 differs at α = 0 by ~1e-2 here), and γ′(0) agrees with a
// one-sided finite difference of γ.
func TestTorchBlankPatchKinks(t *testing.T) {
	dir, out := runTorchScript(t, blankPatchModel, blankPatchPy)
	var want struct {
		torchExpected
		ZeroInputs  int   `json:"relu_zero_inputs_at_0"`
		ReLUTies    []int `json:"relu_zero_velocity_ties"`
		MaxPoolTies []int `json:"maxpool_velocity_ties"`
	}
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	if len(want.ReLUTies) != len(want.Alphas) || len(want.MaxPoolTies) != len(want.Alphas) {
		t.Fatalf("torchref reported tie counts for %d and %d of %d α", len(want.ReLUTies), len(want.MaxPoolTies), len(want.Alphas))
	}
	if want.ZeroInputs == 0 {
		t.Fatal("no ReLU input is exactly 0 at α = 0: the test does not exercise the kinks")
	}
	// Max-pool windows whose maxima tie in velocity too are many here (ReLU
	// zeros entered from below: value, velocity and acceleration 0), so only
	// γ″'s agreement below shows they are harmless.
	for j, a := range want.Alphas {
		if want.ReLUTies[j] != 0 {
			t.Fatalf("α=%v: torchref left %d ReLU inputs with z = ż = 0 unresolved", a, want.ReLUTies[j])
		}
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
		if e := maxMatErr(t, s.Output, want.Output[j]); e > 1e-10 {
			t.Errorf("α=%v: γ differs by %.2g", a, e)
		}
		if e := maxMatErr(t, s.Velocity, want.Velocity[j]); e > 1e-10 {
			t.Errorf("α=%v: γ′ differs by %.2g", a, e)
		}
		if e := maxMatErr(t, s.Acceleration, want.Acceleration[j]); e > 1e-10 {
			t.Errorf("α=%v: γ″ differs by %.2g", a, e)
		}
	}
	// γ′(0⁺) by the second-order one-sided difference (−3γ(0) + 4γ(h) − γ(2h))/(2h).
	const h = 1e-6
	g0, g1, g2, v := p.At(0).Output, p.At(h).Output, p.At(2*h).Output, p.At(0).Velocity
	n, k := v.Dims()
	var worst float64
	for i := 0; i < n; i++ {
		for c := 0; c < k; c++ {
			fd := (-3*g0.At(i, c) + 4*g1.At(i, c) - g2.At(i, c)) / (2 * h)
			worst = math.Max(worst, relErr(v.At(i, c), fd))
		}
	}
	if worst > 1e-6 {
		t.Errorf("γ′(0) differs from the one-sided finite difference by %.2g", worst)
	}
	t.Logf("%d ReLU inputs exactly 0 at α = 0, %d max-pool windows tied in velocity; γ′(0) vs one-sided difference: %.2g",
		want.ZeroInputs, want.MaxPoolTies[0], worst)
}
