package nn

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/num/hyperdual"
	"pgregory.net/rapid"
)

// drawBN2d draws a batchnorm2d with running statistics (running_var kept
// in [0.1, 2.4] along the line) and its hyperdual reference: per channel
// with the running statistics (bn_policy interpolate), or, when stats is
// drawn, with the batch's own mean and biased variance over (N, H, W)
// (bn_policy recompute, the reference batch being the batch itself).
func drawBN2d(t *rapid.T) *imgCase {
	in, n := drawImage(t)
	c := drawBN2dOn(t, in, n, rapid.Bool().Draw(t, "recompute"))
	drawInputs(t, c)
	return c
}

// drawBN2dOn draws a batchnorm2d on inputs of shape in with its
// parameters and hyperdual reference (no inputs); stats: the batch's own
// statistics (recompute) when the batch has two values per channel.
func drawBN2dOn(t *rapid.T, in []int, n int, stats bool) *imgCase {
	l, _, err := BuildLayer(LayerSpec{Type: "batchnorm2d", Eps: ptr(rapid.SampledFrom([]float64{1e-5, 0.1}).Draw(t, "eps"))}, in)
	if err != nil {
		t.Fatal(err)
	}
	b := l.(*BatchNorm2d)
	c := &imgCase{l: l, n: n, stats: stats}
	if c.stats && n*in[1]*in[2] < 2 {
		c.stats = false
	}
	drawParams(t, c)
	for j := range c.p0[3].Data { // running_var
		c.p0[3].Data[j] = 1.2 + 0.8*c.p0[3].Data[j]
		c.dp[3].Data[j] *= 0.2
	}
	c.p0[4] = &Tensor{Shape: []int{}, Data: []float64{3}}
	c.dp[4] = &Tensor{Shape: []int{}, Data: []float64{0}}
	if c.stats && b.BN.Eps == 1e-5 {
		b.BN.Eps = 0.1 // keep 1/√(σ² + ε) of a near-constant channel moderate for the 1e-9 comparison
	}
	hw, ch := b.HW, b.BN.Features
	c.ref = func(p [][]hd, x [][]hd) [][]hd {
		out := make([][]hd, len(x))
		for e := range out {
			out[e] = make([]hd, l.OutSize())
		}
		for k := 0; k < ch; k++ {
			mu, v := p[2][k], p[3][k]
			if c.stats {
				mu, v = hd{}, hd{}
				for e := range x {
					for s := 0; s < hw; s++ {
						mu = hyperdual.Add(mu, x[e][k*hw+s])
					}
				}
				mu = hyperdual.Scale(1/float64(len(x)*hw), mu)
				for e := range x {
					for s := 0; s < hw; s++ {
						d := hyperdual.Sub(x[e][k*hw+s], mu)
						v = hyperdual.Add(v, hyperdual.Mul(d, d))
					}
				}
				v = hyperdual.Scale(1/float64(len(x)*hw), v)
			}
			r := hyperdual.Inv(hyperdual.Sqrt(hyperdual.Add(v, hd{Real: b.BN.Eps})))
			for e := range x {
				for s := 0; s < hw; s++ {
					y := hyperdual.Mul(hyperdual.Sub(x[e][k*hw+s], mu), r)
					out[e][k*hw+s] = hyperdual.Add(hyperdual.Mul(p[0][k], y), p[1][k])
				}
			}
		}
		return out
	}
	return c
}

func ptr[T any](v T) *T { return &v }

// TestBatchNorm2dJetMatchesHyperdual: both policies' jets agree with a
// per-channel hyperdual reference over (N, H, W); Jet32 with Jet.
func TestBatchNorm2dJetMatchesHyperdual(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { checkHyperdual(t, drawBN2d(t)) })
}

// TestBatchNorm2dBackwardFiniteDifferences: the training-mode gradient
// (statistics over N·H·W) against central differences of ForwardTrain.
func TestBatchNorm2dBackwardFiniteDifferences(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := drawBN2d(t)
		if c.n*c.l.(*BatchNorm2d).HW < 2 {
			t.Skip("training mode needs two values per channel")
		}
		checkBackward(t, c)
	})
}

// TestBatchNorm2dIntervalJetEncloses: IntervalJet (interpolate) and
// IntervalJetStats with IntervalStats (recompute) contain the point jets.
func TestBatchNorm2dIntervalJetEncloses(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { checkInterval(t, drawBN2d(t), false) })
}

// TestBatchNorm2dRunningStats: ForwardTrain updates the running statistics
// with the mean and the unbiased variance over N·H·W, as PyTorch.
func TestBatchNorm2dRunningStats(t *testing.T) {
	l, _, err := BuildLayer(LayerSpec{Type: "batchnorm2d", Momentum: ptr(1.0)}, []int{1, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	p := l.(ParamResetter).ResetParams()
	x := matFrom(2, 2, 1, 2, 3, 6) // channel values 1, 2, 3, 6: mean 3, unbiased var 14/3
	l.(TrainForwarder).ForwardTrain(p, x)
	if m, v := p[2].Data[0], p[3].Data[0]; !near(m, 3, 1e-15) || !near(v, 14.0/3, 1e-15) {
		t.Errorf("running mean, var = %v, %v; want 3, 14/3", m, v)
	}
}

func matFrom(r, c int, v ...float64) *mat.Dense { return mat.NewDense(r, c, v) }

// TestBatchNorm2dForwardIsBatchNorm1dOnChannels: evaluation-mode Forward,
// which works on [N, C·H·W] in place of a transposed copy, equals bit for
// bit batchnorm1d's Forward on the [N·H·W, C] view (toNC/fromNC), and
// each output agrees with γ (x − μ)/√(σ² + ε) + β to 1e-14.
func TestBatchNorm2dForwardIsBatchNorm1dOnChannels(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := drawBN2d(t)
		b := c.l.(*BatchNorm2d)
		p := c.at(c.alpha)
		x := mat.NewDense(c.n, b.InSize(), append([]float64(nil), c.a...))
		got := b.Forward(p, x)
		want := b.chw(b.BN.Forward(p, b.nc(x)))
		if !mat.Equal(got, want) {
			t.Fatalf("Forward differs from batchnorm1d on the [N·H·W, C] view:\n%v\n%v", mat.Formatted(got), mat.Formatted(want))
		}
		for e := 0; e < c.n; e++ {
			for k := 0; k < b.BN.Features; k++ {
				for s := 0; s < b.HW; s++ {
					v := x.At(e, k*b.HW+s)
					ref := p[0].Data[k]*(v-p[2].Data[k])/math.Sqrt(p[3].Data[k]+b.BN.Eps) + p[1].Data[k]
					if g := got.At(e, k*b.HW+s); math.Abs(g-ref) > 1e-14*(1+math.Abs(ref)) {
						t.Fatalf("example %d channel %d position %d: %v, want %v", e, k, s, g, ref)
					}
				}
			}
		}
	})
}
