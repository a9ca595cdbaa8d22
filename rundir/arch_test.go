package rundir

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/nn"
)

// archTorchPy builds each run's model.json in PyTorch with torchref's
// builder (nn.Sequential of torch modules and RUN_FORMAT's Residual),
// loads init.safetensors (and final.safetensors when present) with
// strict=True, evaluates the model on the given inputs, and reports what it
// can check on its own about θ0: the largest |w|·√fan_in of each conv and
// linear weight (PyTorch's default kaiming_uniform(a=√5) draws in
// ±1/√fan_in), the γ of the last batchnorm2d of each residual body and the
// residual gains.
const archTorchPy = `
import json, sys
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
import torchref
res = {}
for d in sys.argv[2:]:
    spec = json.load(open(d + "/model.json"))
    m = torchref.build(spec)
    out = {}
    for name in ("init", "final"):
        try:
            st = torchref.read_safetensors(d + "/" + name + ".safetensors")
        except FileNotFoundError:
            continue
        sd = {k: torch.from_numpy(v.astype(np.int64) if v.dtype.kind in "iu" else v.astype(np.float64)) for k, v in st.items()}
        m.load_state_dict(sd, strict=True)
        x = torch.from_numpy(np.load(d + "/x.npy")).reshape([-1] + spec["input_shape"])
        with torch.no_grad():
            out[name] = m(x).numpy().tolist()
        if name == "init":
            m.load_state_dict(sd, strict=True)
            bound, gammas, scales = [], [], []
            for mod in m.modules():
                if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
                    w = mod.weight.detach()
                    bound.append([float(w.abs().max() * np.sqrt(w[0].numel())), w.numel()])
                if isinstance(mod, torchref.Residual):
                    bns = [b for b in mod.body if isinstance(b, torch.nn.BatchNorm2d)]
                    if bns:
                        gammas.append(float(bns[-1].weight.detach().abs().max()))
                    if mod.scale is not None:
                        scales.append(float(mod.scale.detach().abs().max()))
            out["bound"], out["gammas"], out["scales"] = bound, gammas, scales
    res[d] = out
print(json.dumps(res))
`

// TestBuiltinArchsLoadInTorch: every built-in architecture's run start
// (model.json and θ0 as Train writes them), and a short trained
// resnet-8-bn-identity run, load in PyTorch with strict=True through
// torchref's builder, and PyTorch's outputs on the same inputs agree with
// nn's to 1e-10. θ0 is PyTorch's default initialisation in law (every
// conv/linear weight within ±1/√fan_in and, for large tensors, reaching
// beyond 0.9 of it), bn-identity's last γ of each block is 0 and
// nobn-scale's gains are 0 while bn's γ are 1.
func TestBuiltinArchsLoadInTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PyTorch")
	}
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import torch").CombinedOutput(); err != nil {
		t.Skipf("PyTorch not available in %s: %v %s", python, err, out)
	}
	root := t.TempDir()
	x := mat.NewDense(3, 784, nil)
	for i := 0; i < 3; i++ {
		for j := 0; j < 784; j++ {
			x.Set(i, j, math.Sin(float64(7*i+j))*0.5+0.5)
		}
	}
	writeNpy := func(dir string) {
		// .npy v1.0 of x, float64 little-endian, C order.
		hdr := "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 784), }"
		for (10+len(hdr)+1)%64 != 0 {
			hdr += " "
		}
		hdr += "\n"
		var b bytes.Buffer
		b.WriteString("\x93NUMPY\x01\x00")
		b.WriteByte(byte(len(hdr)))
		b.WriteByte(byte(len(hdr) >> 8))
		b.WriteString(hdr)
		for _, v := range x.RawMatrix().Data {
			u := math.Float64bits(v)
			for k := 0; k < 8; k++ {
				b.WriteByte(byte(u >> (8 * k)))
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "x.npy"), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	type run struct {
		arch  string
		dir   string
		model *nn.Model
		init  nn.State
		final nn.State
	}
	var runs []run
	for _, arch := range nn.BuiltinArchs {
		c := DefaultTrainConfig()
		c.Arch, c.Seed = arch, 3
		if err := c.Validate(); err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		rc := c.RunConfig
		spec, err := resolveModel(&rc)
		if err != nil {
			t.Fatal(err)
		}
		m, err := nn.Build(spec)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(root, arch)
		theta, err := writeStart(dir, spec, m, rc, "F64")
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		writeNpy(dir)
		runs = append(runs, run{arch: arch, dir: dir, model: m, init: theta})
	}
	// A trained run, through Train itself.
	c := DefaultTrainConfig()
	c.Data.Name, c.Data.Limit = "mnist-small", 32
	c.Arch, c.Epochs, c.Batch, c.LR, c.Momentum, c.Seed, c.DType = "resnet-8-bn-identity", 1, 16, 0.05, 0.9, 5, "f64"
	trained := filepath.Join(root, "trained")
	cfg, err := Train(context.Background(), c, Options{Out: trained})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Arch != "resnet-8-bn-identity" || !cfg.ZeroInitResidual || cfg.Loss != "cross_entropy" {
		t.Errorf("config.json: arch %q, zero_init_residual %v, loss %q; want the built-in's name, true, cross_entropy", cfg.Arch, cfg.ZeroInitResidual, cfg.Loss)
	}
	tr, err := Read(trained, 0)
	if err != nil {
		t.Fatal(err)
	}
	writeNpy(trained)
	runs = append(runs, run{arch: "trained resnet-8-bn-identity", dir: trained, model: tr.Model, init: tr.Theta0, final: tr.ThetaT})

	args := []string{"-c", archTorchPy, filepath.Join("..", "tools", "torchref")}
	for _, r := range runs {
		args = append(args, r.dir)
	}
	cmd := exec.Command(python, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.Bytes())
	}
	var got map[string]struct {
		Init, Final [][]float64
		Bound       [][2]float64
		Gammas      []float64
		Scales      []float64
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		g, ok := got[r.dir]
		if !ok || g.Init == nil {
			t.Errorf("%s: PyTorch did not load init.safetensors", r.arch)
			continue
		}
		for name, st := range map[string]nn.State{"init": r.init, "final": r.final} {
			want := g.Init
			if name == "final" {
				if st == nil {
					continue
				}
				want = g.Final
			}
			y := r.model.Forward(st, x)
			for i := range want {
				for k, v := range want[i] {
					if e := math.Abs(y.At(i, k) - v); e > 1e-10*(1+math.Abs(v)) {
						t.Errorf("%s %s: output [%d,%d] %v, PyTorch %v", r.arch, name, i, k, y.At(i, k), v)
					}
				}
			}
		}
		for _, b := range g.Bound {
			if b[0] > 1+1e-12 || (b[1] >= 1000 && b[0] < 0.9) {
				t.Errorf("%s: a weight of %v elements has max |w|·√fan_in = %v; PyTorch's default draws in ±1/√fan_in", r.arch, b[1], b[0])
			}
		}
		identity := strings.HasSuffix(r.arch, "-bn-identity")
		for _, gm := range g.Gammas {
			if identity != (gm == 0) || (!identity && gm != 1) {
				t.Errorf("%s: last γ of a residual body has max |γ| %v", r.arch, gm)
			}
		}
		nobn := strings.HasSuffix(r.arch, "-nobn-scale")
		if strings.HasPrefix(r.arch, "resnet-") {
			n := 3 * (map[byte]int{'8': 1, '1': 2, '2': 3})[strings.TrimPrefix(r.arch, "resnet-")[0]]
			if strings.HasPrefix(r.arch, "trained") {
				n = 3
			}
			if nobn && (len(g.Scales) != n || len(g.Gammas) != 0) || !nobn && (len(g.Gammas) != n || len(g.Scales) != 0) {
				t.Errorf("%s: %d residual gains and %d body BatchNorms; want %d blocks", r.arch, len(g.Scales), len(g.Gammas), n)
			}
			for _, s := range g.Scales {
				if s != 0 {
					t.Errorf("%s: residual gain %v at init; want 0", r.arch, s)
				}
			}
		}
	}
}

// TestBuiltinArchShapes: the ResNets have 6n+2 weighted layers on the main
// path (convs and the final linear, not the 1×1 shortcuts) and the
// parameter counts of the paper's CIFAR ResNet with one input channel
// (closed form), and bad names are refused naming the list.
func TestBuiltinArchShapes(t *testing.T) {
	for _, tc := range []struct {
		arch string
		n    int
	}{{"resnet-8-bn", 1}, {"resnet-14-bn", 2}, {"resnet-20-nobn-scale", 3}} {
		spec, v, err := nn.BuiltinSpec(tc.arch, "cross_entropy")
		if err != nil {
			t.Fatal(err)
		}
		m, err := nn.Build(spec)
		if err != nil {
			t.Fatal(err)
		}
		main := 0
		var count func([]nn.LayerSpec, bool)
		count = func(ls []nn.LayerSpec, onMain bool) {
			for _, l := range ls {
				switch l.Type {
				case "conv2d", "linear":
					if onMain {
						main++
					}
				case "residual":
					count(l.Body, onMain)
					count(l.Shortcut, false)
				}
			}
		}
		count(spec.Layers, true)
		if main != 6*tc.n+2 {
			t.Errorf("%s: %d weighted layers on the main path; want %d", tc.arch, main, 6*tc.n+2)
		}
		// Weights: stem 9·16; stage s (c = 16·2^s) n blocks of two 3×3
		// convs, the first of stages 2 and 3 from c/2 channels with a 1×1
		// c/2→c shortcut; the linear 64·10+10. BN (γ, β) per conv output
		// channel, or a conv bias and a scalar gain per block without BN.
		n, weights, outCh, blocks := tc.n, 0, 0, 3*tc.n
		weights += 9 * 16
		outCh += 16
		for s, c := range []int{16, 32, 64} {
			in := c
			if s > 0 {
				in = c / 2
				weights += in * c
				outCh += c
			}
			weights += 9*in*c + 9*c*c + (n-1)*2*9*c*c
			outCh += 2 * n * c
		}
		want := weights + 64*10 + 10
		if v == nn.ResNetNoBNScale {
			want += outCh + blocks
		} else {
			want += 2 * outCh
		}
		s0, err := nn.Init(m, "pytorch", 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, k := range m.Trainable() {
			got += len(s0[k].Data)
		}
		if got != want {
			t.Errorf("%s: %d trainable parameters; want %d", tc.arch, got, want)
		}
		if m.OutSize() != 10 || spec.InputSize() != 784 {
			t.Errorf("%s: %d→%d; want 784→10", tc.arch, spec.InputSize(), m.OutSize())
		}
	}
	for _, bad := range []string{"resnet-9-bn", "resnet-8-fixup", "resnet-8"} {
		c := DefaultTrainConfig()
		c.Arch = bad
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "resnet-20-nobn-scale") {
			t.Errorf("--arch %s: %v; want a refusal listing the built-ins", bad, err)
		}
	}
	c := DefaultTrainConfig()
	c.Arch, c.Act = "lenet", "tanh"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "ReLU") {
		t.Errorf("--arch lenet --act tanh: %v; want a refusal", err)
	}
}
