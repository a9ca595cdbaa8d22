package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"
)

// randomJet returns a non-constant jet [3n, w] with normal entries.
func randomJet(rng *rand.Rand, n, w int) *Jet {
	j := &Jet{N: n, M: mat.NewDense(3*n, w, nil)}
	for i := range j.M.RawMatrix().Data {
		j.M.RawMatrix().Data[i] = rng.NormFloat64()
	}
	return j
}

func randomTensors(rng *rand.Rand, l Layer) []*Tensor {
	var ts []*Tensor
	for _, p := range l.Params() {
		t := &Tensor{Shape: p.Shape, Data: make([]float64, numel(p.Shape))}
		for i := range t.Data {
			t.Data[i] = rng.NormFloat64()
		}
		ts = append(ts, t)
	}
	return ts
}

// TestJumpRowsIsTheChangeOfJetRows: for Dense and Conv2d (nn.AffineJet),
// JetRows(in + d) − JetRows(in) = JumpRows(d) for random in, d, α, and
// Dense's JumpUnitRows of a one-hot change equals JumpRows of it.
func TestJumpRowsIsTheChangeOfJetRows(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 3))
		var l AffineJet
		if rapid.Bool().Draw(t, "conv") {
			h, cin := rapid.IntRange(3, 5).Draw(t, "h"), rapid.IntRange(1, 2).Draw(t, "cin")
			cl, _, err := BuildLayer(LayerSpec{Type: "conv2d", In: cin, Out: rapid.IntRange(1, 3).Draw(t, "cout"),
				Kernel: IntPair{rapid.IntRange(1, 3).Draw(t, "k")}, Padding: IntPair{rapid.IntRange(0, 1).Draw(t, "pad")}}, []int{cin, h, h})
			if err != nil {
				t.Fatal(err)
			}
			l = cl.(AffineJet)
		} else {
			in := rapid.IntRange(1, 6).Draw(t, "in")
			dl, _, err := BuildLayer(LayerSpec{Type: "linear", In: in, Out: rapid.IntRange(1, 6).Draw(t, "out")}, []int{in})
			if err != nil {
				t.Fatal(err)
			}
			l = dl.(AffineJet)
		}
		n := rapid.IntRange(1, 4).Draw(t, "n")
		p0, dp := randomTensors(rng, l), randomTensors(rng, l)
		alphas := make([]float64, n)
		for r := range alphas {
			alphas[r] = rng.Float64()*2 - 0.5
		}
		in, d := randomJet(rng, n, l.InSize()), randomJet(rng, n, l.InSize())
		sum := &Jet{N: n, M: mat.NewDense(3*n, l.InSize(), nil)}
		sum.M.Add(in.M, d.M)
		want := mat.NewDense(3*n, l.OutSize(), nil)
		want.Sub(l.JetRows(p0, dp, alphas, sum).M, l.JetRows(p0, dp, alphas, in).M)
		got := l.JumpRows(p0, dp, alphas, d).M
		scale := 1 + mat.Norm(want, math.Inf(1))
		for i, w := range want.RawMatrix().Data {
			if g := got.RawMatrix().Data[i]; math.Abs(g-w) > 1e-12*scale {
				t.Fatalf("element %d: JumpRows %v, JetRows difference %v", i, g, w)
			}
		}
		u, ok := l.(UnitJumps)
		if !ok {
			return
		}
		units := make([]int, n)
		dz, dv, da := make([]float64, n), make([]float64, n), make([]float64, n)
		hot := &Jet{N: n, M: mat.NewDense(3*n, l.InSize(), nil)}
		for r := range units {
			units[r] = rng.IntN(l.InSize())
			dz[r], dv[r], da[r] = rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()
			hot.M.Set(r, units[r], dz[r])
			hot.M.Set(n+r, units[r], dv[r])
			hot.M.Set(2*n+r, units[r], da[r])
		}
		want = l.JumpRows(p0, dp, alphas, hot).M
		got = u.JumpUnitRows(p0, dp, alphas, units, dz, dv, da).M
		for i, w := range want.RawMatrix().Data {
			if g := got.RawMatrix().Data[i]; math.Abs(g-w) > 1e-12*(1+math.Abs(w)) {
				t.Fatalf("element %d: JumpUnitRows %v, JumpRows %v", i, g, w)
			}
		}
	})
}

// TestJetUnitRowsIsAnElementOfJetRows: Dense's JetUnitRows gives element
// units[r] of row r of JetRows (value, velocity, acceleration), on
// constant and non-constant input jets, with and without a bias.
func TestJetUnitRowsIsAnElementOfJetRows(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 4))
		in, out := rapid.IntRange(1, 6).Draw(t, "in"), rapid.IntRange(1, 6).Draw(t, "out")
		bias := rapid.Bool().Draw(t, "bias")
		l, _, err := BuildLayer(LayerSpec{Type: "linear", In: in, Out: out, Bias: &bias}, []int{in})
		if err != nil {
			t.Fatal(err)
		}
		d := l.(*Dense)
		p0, dp := randomTensors(rng, d), randomTensors(rng, d)
		if !bias {
			p0[1], dp[1] = nil, nil
		}
		n := rapid.IntRange(1, 4).Draw(t, "n")
		x := randomJet(rng, n, in)
		if rapid.Bool().Draw(t, "const") {
			x = &Jet{N: n, M: mat.DenseCopyOf(x.M.Slice(0, n, 0, in)), Const: true}
		}
		alphas, units := make([]float64, n), make([]int, n)
		for r := range alphas {
			alphas[r], units[r] = rng.Float64()*2-0.5, rng.IntN(out)
		}
		want := d.JetRows(p0, dp, alphas, x)
		z, zd, zdd := d.JetUnitRows(p0, dp, alphas, x, units)
		for r, u := range units {
			for part, got := range []float64{z[r], zd[r], zdd[r]} {
				w := want.M.At(part*n+r, u)
				if math.Abs(got-w) > 1e-12*(1+math.Abs(w)) {
					t.Fatalf("row %d unit %d part %d: JetUnitRows %v, JetRows %v", r, u, part, got, w)
				}
			}
		}
	})
}

// TestUnitSwitchIsTheChangeOfJetForced: for relu and leaky_relu, forcing
// unit u to branch to instead of from changes JetForced's output in
// element u only, by UnitSwitch.
func TestUnitSwitchIsTheChangeOfJetForced(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 6))
		w := rapid.IntRange(1, 6).Draw(t, "width")
		l, _, err := BuildLayer(LayerSpec{Type: rapid.SampledFrom([]string{"relu", "leaky_relu"}).Draw(t, "act")}, []int{w})
		if err != nil {
			t.Fatal(err)
		}
		sw, _ := SwitchingOf(l)
		ui, ok := sw.(UnitInput)
		if !ok || !ui.UnitInput() {
			t.Fatal("the ReLU family's rule does not declare UnitInput")
		}
		n := rapid.IntRange(1, 3).Draw(t, "n")
		in := randomJet(rng, n, w)
		r, u := rng.IntN(n), rng.IntN(w)
		from := rapid.IntRange(0, 1).Draw(t, "from")
		a := ui.JetForced(in, []Force{{Row: r, Unit: u, Branch: from}}).M
		b := ui.JetForced(in, []Force{{Row: r, Unit: u, Branch: 1 - from}}).M
		dz, dv, da := ui.UnitSwitch(u, from, 1-from, in.M.At(r, u), in.M.At(n+r, u), in.M.At(2*n+r, u))
		for part, want := range []float64{dz, dv, da} {
			for row := 0; row < n; row++ {
				for c := 0; c < w; c++ {
					got := b.At(part*n+row, c) - a.At(part*n+row, c)
					exp := 0.0
					if row == r && c == u {
						exp = want
					}
					if math.Abs(got-exp) > 1e-15*(1+math.Abs(exp)) {
						t.Fatalf("part %d row %d element %d: JetForced changed by %v, UnitSwitch says %v", part, row, c, got, exp)
					}
				}
			}
		}
	})
}
