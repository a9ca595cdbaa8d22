package functionspace_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/rundir"
)

// torchExpected is the JSON printed by tools/torchref/torchref.py: PyTorch's
// loss and accuracy along θα, and with --derivs γ, γ′, γ″ [α][N][K], L′, L″
// by nested forward-mode AD (functorch.jvp), and the trapezoid Gauss lengths.
type torchExpected struct {
	Alphas   []float64 `json:"alphas"`
	Loss     []float64 `json:"loss"`
	Accuracy []float64 `json:"accuracy"`
	DLoss    []float64 `json:"dloss"`
	D2Loss   []float64 `json:"d2loss"`

	Output       [][][]float64 `json:"output"`
	Velocity     [][][]float64 `json:"velocity"`
	Acceleration [][][]float64 `json:"acceleration"`

	TurningRate        [][]float64 `json:"turning_rate"`
	TurningRateStacked []float64   `json:"turning_rate_stacked"`

	GaussMeanTrapezoid    float64 `json:"gauss_length_mean_trapezoid"`
	GaussStackedTrapezoid float64 `json:"gauss_length_stacked_trapezoid"`

	// BNPolicy is torchref's BatchNorm policy ("interpolate", or
	// "recompute" with the first BNReference examples as the reference
	// batch); absent in the fixtures written before it existed.
	BNPolicy    string `json:"bn_policy"`
	BNReference int    `json:"bn_reference"`
}

// relErr is |got − want| / max(1, |want|).
func relErr(got, want float64) float64 {
	return math.Abs(got-want) / math.Max(1, math.Abs(want))
}

// pureRelErr is |got − want| / |want| (or |got| when want = 0).
func pureRelErr(got, want float64) float64 {
	if want == 0 {
		return math.Abs(got)
	}
	return math.Abs(got-want) / math.Abs(want)
}

// maxMatErr is the largest relErr between m [N, K] and want [N][K].
func maxMatErr(t *testing.T, m *mat.Dense, want [][]float64) float64 {
	t.Helper()
	n, k := m.Dims()
	if len(want) != n || len(want[0]) != k {
		t.Fatalf("shape: got [%d, %d], PyTorch [%d, %d]", n, k, len(want), len(want[0]))
	}
	var e float64
	for i := range want {
		for j, w := range want[i] {
			e = math.Max(e, relErr(m.At(i, j), w))
		}
	}
	return e
}

func digits(e float64) string {
	if e == 0 {
		return "exact"
	}
	return fmt.Sprintf("%.1f digits", -math.Log10(e))
}

// TestTorchFixtures checks the output path, the loss along it and the
// paper-compatible Gauss length against PyTorch (THEORY.md §2–§4) on the
// committed runs of testdata/torchref, which torchref.py generated with its own
// random weights (--make-fixture) and evaluated with functorch's nested jvp.
// Together they cover every layer type, cross-entropy and mse (one-hot labels
// and float targets), F64, F32, F16 and BF16 checkpoints, and both BatchNorm
// policies (cnn-residual-bn-recompute: bn_policy recompute with batchnorm2d
// inside a residual body and its conv shortcut, the statistics of a strict
// prefix of the examples differentiated along α by PyTorch's nested jvp).
func TestTorchFixtures(t *testing.T) {
	var dirs []string
	for _, pat := range []string{"mlp-*", "cnn-*"} {
		d, err := filepath.Glob(filepath.Join("..", "testdata", "torchref", pat))
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d...)
	}
	if len(dirs) < 3 {
		t.Fatalf("found %d fixture runs in testdata/torchref, want at least 3", len(dirs))
	}
	seen := map[string]bool{}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
			if err != nil {
				t.Fatal(err)
			}
			var want torchExpected
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			run, err := rundir.Read(dir, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range run.Spec.Layers {
				seen[l.Type] = true
			}
			if want.BNPolicy == string(functionspace.BNRecompute) && want.BNReference < 2 {
				t.Fatalf("expected.json: bn_policy recompute with bn_reference %d", want.BNReference)
			}
			p, err := functionspace.New(run.Model, run.Theta0, run.ThetaT, run.X, run.Targets,
				functionspace.Options{Chunk: 5, BNPolicy: functionspace.BNPolicy(want.BNPolicy), BNReference: want.BNReference})
			if err != nil {
				t.Fatal(err)
			}
			var samples []*functionspace.Sample
			var worst struct{ loss, out, vel, acc, dl, d2l, rate float64 }
			for j, a := range want.Alphas {
				s := p.At(a)
				samples = append(samples, s)
				e := pureRelErr(s.Loss, want.Loss[j])
				if e > 1e-12 {
					t.Errorf("α=%v: loss %.17g, PyTorch %.17g (relative error %.2g > 1e-12)", a, s.Loss, want.Loss[j], e)
				}
				worst.loss = math.Max(worst.loss, e)
				if s.Accuracy != want.Accuracy[j] {
					t.Errorf("α=%v: accuracy %v, PyTorch %v", a, s.Accuracy, want.Accuracy[j])
				}
				for _, c := range []struct {
					name string
					got  *mat.Dense
					want [][]float64
					tol  float64
					dst  *float64
				}{
					{"γ", s.Output, want.Output[j], 1e-12, &worst.out},
					{"γ′", s.Velocity, want.Velocity[j], 1e-10, &worst.vel},
					{"γ″", s.Acceleration, want.Acceleration[j], 1e-10, &worst.acc},
				} {
					e := maxMatErr(t, c.got, c.want)
					if e > c.tol {
						t.Errorf("α=%v: %s differs from PyTorch by %.2g (relative to max(1,|·|)) > %g", a, c.name, e, c.tol)
					}
					*c.dst = math.Max(*c.dst, e)
				}
				e = relErr(s.DLoss, want.DLoss[j])
				if e > 1e-10 {
					t.Errorf("α=%v: L′ %.17g, PyTorch %.17g (error %.2g > 1e-10)", a, s.DLoss, want.DLoss[j], e)
				}
				worst.dl = math.Max(worst.dl, e)
				e = relErr(s.D2Loss, want.D2Loss[j])
				if e > 1e-10 {
					t.Errorf("α=%v: L″ %.17g, PyTorch %.17g (error %.2g > 1e-10)", a, s.D2Loss, want.D2Loss[j], e)
				}
				worst.d2l = math.Max(worst.d2l, e)
				for i, w := range want.TurningRate[j] {
					e := relErr(s.TurningRate[i], w)
					if e > 1e-9 {
						t.Errorf("α=%v example %d: turning rate ‖T′‖ %.17g, PyTorch %.17g", a, i, s.TurningRate[i], w)
					}
					worst.rate = math.Max(worst.rate, e)
				}
				if e := relErr(s.StackedTurningRate, want.TurningRateStacked[j]); e > 1e-9 {
					t.Errorf("α=%v: stacked turning rate %.17g, PyTorch %.17g", a, s.StackedTurningRate, want.TurningRateStacked[j])
				}
			}
			mean, stacked := functionspace.GaussLengthTrapezoid(samples)
			if e := pureRelErr(mean, want.GaussMeanTrapezoid); e > 1e-9 {
				t.Errorf("trapezoid mean Gauss length %.17g, PyTorch %.17g (relative error %.2g > 1e-9)", mean, want.GaussMeanTrapezoid, e)
			}
			if e := pureRelErr(stacked, want.GaussStackedTrapezoid); e > 1e-9 {
				t.Errorf("trapezoid stacked Gauss length %.17g, PyTorch %.17g (relative error %.2g > 1e-9)", stacked, want.GaussStackedTrapezoid, e)
			}
			t.Logf("agreement with PyTorch: loss %s, γ %s, γ′ %s, γ″ %s, L′ %s, L″ %s, ‖T′‖ %s; Ḡ trapezoid %s, G(Γ) trapezoid %s",
				digits(worst.loss), digits(worst.out), digits(worst.vel), digits(worst.acc), digits(worst.dl), digits(worst.d2l), digits(worst.rate),
				digits(pureRelErr(mean, want.GaussMeanTrapezoid)), digits(pureRelErr(stacked, want.GaussStackedTrapezoid)))
		})
	}
	for _, typ := range nn.LayerTypes {
		if !seen[typ] {
			t.Errorf("no fixture run uses layer type %q", typ)
		}
	}
}
