package optim

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"os"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// fixture mirrors testdata/torch_optim.json, written by testdata/torch_optim.py from
// torch.optim in PyTorch 1.13 (float64).
type fixture struct {
	TorchVersion string        `json:"torch_version"`
	B            float64       `json:"B"`
	X0           [][]float64   `json:"x0"`
	Steps        int           `json:"steps"`
	Cases        []fixtureCase `json:"cases"`
}

type fixtureCase struct {
	Name      string `json:"name"`
	Optimizer string `json:"optimizer"`
	Hyper     struct {
		LR          float64    `json:"lr"`
		Momentum    float64    `json:"momentum"`
		Dampening   float64    `json:"dampening"`
		WeightDecay float64    `json:"weight_decay"`
		Nesterov    bool       `json:"nesterov"`
		Betas       [2]float64 `json:"betas"`
		Eps         float64    `json:"eps"`
		AMSGrad     bool       `json:"amsgrad"`
	} `json:"hyper"`
	Params [][][]float64 `json:"params"` // [step][tensor][element], Steps+1 entries
	Grads  [][][]float64 `json:"grads"`  // [step][tensor][element], Steps entries
	State  State         `json:"state"`  // final state_dict()["state"], flattened
}

func loadFixture(t *testing.T) fixture {
	t.Helper()
	b, err := os.ReadFile("testdata/torch_optim.json")
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) == 0 || f.Steps == 0 {
		t.Fatal("empty fixture")
	}
	return f
}

// rosenGrad is the gradient of the objective of testdata/torch_optim.py,
// f(x) = Σ ½(k+1)(x_k−1)² + B Σ (x_{k+1} − x_k²)², over the concatenation x of the
// parameter tensors, in the same floating-point operation order as the script.
func rosenGrad(B float64, params [][]float64) [][]float64 {
	var x []float64
	for _, p := range params {
		x = append(x, p...)
	}
	n := len(x)
	g := make([]float64, n)
	for k := 0; k < n; k++ {
		v := float64(k+1) * (x[k] - 1.0)
		if k < n-1 {
			v = v - 4.0*B*x[k]*(x[k+1]-x[k]*x[k])
		}
		if k > 0 {
			v = v + 2.0*B*(x[k]-x[k-1]*x[k-1])
		}
		g[k] = v
	}
	out := make([][]float64, len(params))
	i := 0
	for t, p := range params {
		out[t] = g[i : i+len(p)]
		i += len(p)
	}
	return out
}

func (c fixtureCase) optimizer(t *testing.T) Optimizer {
	h := c.Hyper
	switch c.Optimizer {
	case "sgd":
		o := &SGD{LR: h.LR, Momentum: h.Momentum, Dampening: h.Dampening, WeightDecay: h.WeightDecay, Nesterov: h.Nesterov}
		if err := o.validate(); err != nil {
			t.Fatal(err)
		}
		return o
	case "adam":
		return &Adam{LR: h.LR, Beta1: h.Betas[0], Beta2: h.Betas[1], Eps: h.Eps, WeightDecay: h.WeightDecay, AMSGrad: h.AMSGrad}
	case "adamw":
		return &AdamW{LR: h.LR, Beta1: h.Betas[0], Beta2: h.Betas[1], Eps: h.Eps, WeightDecay: h.WeightDecay, AMSGrad: h.AMSGrad}
	}
	t.Fatalf("unknown optimizer %q in fixture", c.Optimizer)
	return nil
}

// relTol bounds the normwise relative error |got − want| / max_j |want_j| of every
// entry of a tensor. On x86-64 the replay is bit-identical to torch (the float
// operations, including ATen's fused multiply-adds, are reproduced); the tolerance
// leaves room for platforms where Go fuses rosenGrad's multiply-adds.
const relTol = 1e-13

func compareTensors(t *testing.T, what string, got, want [][]float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d tensors, want %d", what, len(got), len(want))
	}
	worst := 0.0
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("%s: tensor %d has length %d, want %d", what, i, len(got[i]), len(want[i]))
		}
		scale := 0.0
		for _, w := range want[i] {
			scale = math.Max(scale, math.Abs(w))
		}
		for j := range want[i] {
			e := 0.0
			if got[i][j] != want[i][j] {
				e = math.Abs(got[i][j]-want[i][j]) / scale
			}
			worst = math.Max(worst, e)
			if !(e <= relTol) {
				t.Errorf("%s[%d][%d] = %.17g, torch %.17g (rel err %.3g)", what, i, j, got[i][j], want[i][j], e)
			}
		}
	}
	return worst
}

func copyTensors(x [][]float64) [][]float64 {
	out := make([][]float64, len(x))
	for i := range x {
		out[i] = append([]float64(nil), x[i]...)
	}
	return out
}

// replay runs o from the fixture's start for steps [from, to), computing gradients
// itself, and compares gradients and parameters with torch at every step.
func replay(t *testing.T, f fixture, c fixtureCase, o Optimizer, params [][]float64, from, to int) float64 {
	t.Helper()
	worst := 0.0
	for s := from; s < to; s++ {
		g := rosenGrad(f.B, params)
		worst = math.Max(worst, compareTensors(t, fmt.Sprintf("%s: grad before step %d", c.Name, s+1), g, c.Grads[s]))
		o.Step(params, g)
		worst = math.Max(worst, compareTensors(t, fmt.Sprintf("%s: params after step %d", c.Name, s+1), params, c.Params[s+1]))
	}
	return worst
}

func TestAgainstTorch(t *testing.T) {
	f := loadFixture(t)
	if !strings.HasPrefix(f.TorchVersion, "1.13") {
		t.Errorf("fixture made with torch %s, want 1.13", f.TorchVersion)
	}
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			compareTensors(t, "x0", c.Params[0], f.X0)
			o := c.optimizer(t)
			params := copyTensors(f.X0)
			worst := replay(t, f, c, o, params, 0, f.Steps)
			// The final state matches torch's state_dict()["state"], name for name.
			got := o.State()
			if strings.Join(got.Names(), ",") != strings.Join(c.State.Names(), ",") {
				t.Fatalf("state names %v, torch %v", got.Names(), c.State.Names())
			}
			for _, k := range c.State.Names() {
				worst = math.Max(worst, compareTensors(t, "state "+k, [][]float64{got[k]}, [][]float64{c.State[k]}))
			}
			t.Logf("worst relative error %.3g", worst)
		})
	}
}

// TestResume checks that exporting the state half-way and importing it into a fresh
// optimizer continues the torch trajectory (checkpoint/resume).
func TestResume(t *testing.T) {
	f := loadFixture(t)
	half := f.Steps / 2
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			o := c.optimizer(t)
			params := copyTensors(f.X0)
			replay(t, f, c, o, params, 0, half)
			saved := o.State()
			// Round-trip through JSON as a checkpoint would.
			b, err := json.Marshal(saved)
			if err != nil {
				t.Fatal(err)
			}
			var loaded State
			if err := json.Unmarshal(b, &loaded); err != nil {
				t.Fatal(err)
			}
			o2 := c.optimizer(t)
			if err := o2.SetState(loaded); err != nil {
				t.Fatal(err)
			}
			// The export is a copy: stepping o must not change saved.
			o.Step(copyTensors(params), rosenGrad(f.B, params))
			for k, v := range saved {
				for j := range v {
					if v[j] != loaded[k][j] {
						t.Fatalf("State() aliases the optimizer's buffers (%s)", k)
					}
				}
			}
			replay(t, f, c, o2, params, half, f.Steps)
		})
	}
}

func TestNewDefaults(t *testing.T) {
	o, err := New("adam", Config{})
	if err != nil {
		t.Fatal(err)
	}
	if a := o.(*Adam); a.hyper() != (adamHyper{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}) {
		t.Errorf("adam defaults %+v", a)
	}
	o, err = New("AdamW", Config{LR: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	if a := o.(*AdamW); a.hyper() != (adamHyper{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2}) {
		t.Errorf("adamw defaults %+v", a)
	}
	o, err = New("sgd", Config{LR: 0.1, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4})
	if err != nil {
		t.Fatal(err)
	}
	if s := o.(*SGD); s.LR != 0.1 || s.Momentum != 0.9 || !s.Nesterov || s.WeightDecay != 5e-4 || s.Dampening != 0 {
		t.Errorf("sgd %+v", s)
	}
	if s := NewSGD(0.5); s.LR != 0.5 || s.Momentum != 0 || s.Dampening != 0 || s.WeightDecay != 0 || s.Nesterov {
		t.Error("NewSGD")
	}
}

func TestNewErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"rmsprop", Config{LR: 1}, `"rmsprop"`},
		{"sgd", Config{}, "learning rate"},
		{"sgd", Config{LR: -1}, "learning rate"},
		{"sgd", Config{LR: 1, Momentum: -0.1}, "momentum"},
		{"sgd", Config{LR: 1, Nesterov: true}, "Nesterov"},
		{"sgd", Config{LR: 1, WeightDecay: -1}, "weight_decay"},
		{"sgd", Config{LR: 1, Beta1: 0.5}, "Beta1"},
		{"adam", Config{Momentum: 0.9}, "Momentum"},
		{"adam", Config{Beta1: 1}, "beta parameter at index 0"},
		{"adamw", Config{Beta2: 1.5}, "beta parameter at index 1"},
		{"adam", Config{Eps: -1}, "epsilon"},
		{"adam", Config{LR: math.NaN()}, "learning rate"},
	} {
		_, err := New(c.name, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%q, %+v) error %v, want one mentioning %s", c.name, c.cfg, err, c.want)
		}
	}
}

func TestSetStateErrors(t *testing.T) {
	for _, c := range []struct {
		o    Optimizer
		s    State
		want string
	}{
		{NewAdam(), State{"0.momentum_buffer": {1}}, "unknown state name"},
		{NewAdam(), State{"0.step": {1}, "0.exp_avg": {1}}, "lacks"},
		{NewAdam(), State{"0.step": {1.5}, "0.exp_avg": {1}, "0.exp_avg_sq": {1}}, "integer"},
		{NewAdam(), State{"0.step": {1}, "0.exp_avg": {1}, "0.exp_avg_sq": {1, 2}}, "length"},
		{NewAdam(), State{"1.step": {1}, "1.exp_avg": {1}, "1.exp_avg_sq": {1}}, "tensor 0"},
		{&Adam{AMSGrad: true}, State{"0.step": {1}, "0.exp_avg": {1}, "0.exp_avg_sq": {1}}, "max_exp_avg_sq"},
		{NewSGD(1), State{"x.momentum_buffer": {1}}, "index"},
		{NewSGD(1), State{"momentum_buffer": {1}}, "index.name"},
		{NewSGD(1), State{"0.exp_avg": {1}}, "unknown state name"},
	} {
		err := c.o.SetState(c.s)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%T.SetState(%v) error %v, want one mentioning %q", c.o, c.s, err, c.want)
		}
	}
}

func TestStepPanicsOnShapeMismatch(t *testing.T) {
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	mustPanic("grad length", func() { NewAdam().Step([][]float64{{1, 2}}, [][]float64{{1}}) })
	mustPanic("tensor count", func() { NewSGD(1).Step([][]float64{{1}}, nil) })
	mustPanic("changed tensors", func() {
		o := &SGD{LR: 1, Momentum: 0.9}
		o.Step([][]float64{{1}}, [][]float64{{1}})
		o.Step([][]float64{{1}, {2}}, [][]float64{{1}, {2}})
	})
	mustPanic("imported length", func() {
		o := NewAdam()
		if err := o.SetState(State{"0.step": {3}, "0.exp_avg": {1}, "0.exp_avg_sq": {1}}); err != nil {
			t.Fatal(err)
		}
		o.Step([][]float64{{1, 2}}, [][]float64{{1, 2}})
	})
}

// TestInvariants checks identities between the optimizers on random problems:
// AdamW with no weight decay is Adam; SGD's momentum buffer starts at the gradient,
// so the first momentum step equals a plain step; Nesterov's first step is (1+μ)
// times the plain one.
func TestInvariants(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 5).Draw(t, "n")
		x := rapid.SliceOfN(rapid.Float64Range(-3, 3), n, n).Draw(t, "x")
		gs := rapid.SliceOfN(rapid.SliceOfN(rapid.Float64Range(-3, 3), n, n), 1, 6).Draw(t, "grads")
		lr := rapid.Float64Range(1e-4, 1).Draw(t, "lr")
		mu := rapid.Float64Range(0.1, 0.99).Draw(t, "mu")

		pa, pw := [][]float64{append([]float64(nil), x...)}, [][]float64{append([]float64(nil), x...)}
		a, w := NewAdam(), NewAdamW()
		a.LR, w.LR, w.WeightDecay = lr, lr, 0
		for _, g := range gs {
			a.Step(pa, [][]float64{g})
			w.Step(pw, [][]float64{g})
		}
		for j := range x {
			if pa[0][j] != pw[0][j] {
				t.Fatalf("AdamW(wd=0) %v != Adam %v", pw[0], pa[0])
			}
		}

		plain, mom, nest := [][]float64{append([]float64(nil), x...)}, [][]float64{append([]float64(nil), x...)}, [][]float64{append([]float64(nil), x...)}
		NewSGD(lr).Step(plain, [][]float64{gs[0]})
		(&SGD{LR: lr, Momentum: mu, Dampening: 0.5}).Step(mom, [][]float64{gs[0]})
		(&SGD{LR: lr, Momentum: mu, Nesterov: true}).Step(nest, [][]float64{gs[0]})
		for j := range x {
			if plain[0][j] != mom[0][j] {
				t.Fatalf("first momentum step %v != plain %v", mom[0], plain[0])
			}
			want := x[j] - lr*(1+mu)*gs[0][j]
			if math.Abs(nest[0][j]-want) > 1e-14*(1+math.Abs(want)) {
				t.Fatalf("first Nesterov step %v, want %v", nest[0][j], want)
			}
		}
		// Adam's first step moves every coordinate with a non-tiny gradient by ≈ lr
		// against its sign (m̂/√v̂ = g/|g|).
		p1 := [][]float64{append([]float64(nil), x...)}
		a1 := NewAdam()
		a1.LR = lr
		a1.Step(p1, [][]float64{gs[0]})
		for j := range x {
			g := gs[0][j]
			if math.Abs(g) < 1e-3 {
				continue
			}
			want := x[j] - lr*g/(math.Abs(g)+1e-8)
			if math.Abs(p1[0][j]-want) > 1e-12*(1+math.Abs(want)) {
				t.Fatalf("first Adam step %v, want %v", p1[0][j], want)
			}
		}
	})
}

// TestPowIntCorrectlyRounded compares powInt with the exact power b^n (math/big with
// enough precision to hold it exactly) rounded to nearest float64.
func TestPowIntCorrectlyRounded(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.Float64Range(1e-3, 1).Draw(t, "b")
		n := rapid.IntRange(0, 60).Draw(t, "n")
		exact := new(big.Float).SetPrec(53*61 + 64).SetFloat64(1)
		bb := new(big.Float).SetFloat64(b)
		for range n {
			exact.Mul(exact, bb)
		}
		want, _ := exact.Float64()
		if got := powInt(b, n); got != want {
			t.Fatalf("powInt(%v, %d) = %v, exact %v", b, n, got, want)
		}
	})
	// Known cases where Go's math.Pow is an ulp off and glibc's pow (used by torch's
	// Python bias correction) is not.
	for _, c := range []struct {
		b    float64
		n    int
		want float64
	}{{0.9, 4, 0.6561}, {0.999, 16, 0.9841194418156399}, {0.99, 3, 0.970299}} {
		if got := powInt(c.b, c.n); got != c.want {
			t.Errorf("powInt(%v, %d) = %v, want %v", c.b, c.n, got, c.want)
		}
	}
}
