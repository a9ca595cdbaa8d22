package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"
)

// poison sets every element the workspace holds to NaN, so a rule that
// leaves an output element unwritten shows up in the result.
func (w *Workspace) poison() {
	for _, b := range w.bufs {
		b = b[:cap(b)]
		for i := range b {
			b[i] = math.NaN()
		}
	}
	for _, b := range w.bufs32 {
		b = b[:cap(b)]
		for i := range b {
			b[i] = float32(math.NaN())
		}
	}
}

// TestWorkspaceJetsMatchFreshOnes checks the property the chunk passes rely
// on: a pass whose matrices come from a reused workspace — filled with NaN
// by an earlier pass — gives bit for bit the jets of freshly allocated
// (zeroed) matrices, in float64 (Jet; in float32, Jet32, to within the
// last bits of a different summation order, see below), for every
// activation and BatchNorm, with a constant
// input jet (the network input) and a non-constant one (the cached first
// layer), and for a smaller chunk after a larger one.
func TestWorkspaceJetsMatchFreshOnes(t *testing.T) {
	layers := append(allActivations(), LayerSpec{Type: "batchnorm1d"})
	for _, act := range layers {
		t.Run(act.Type+act.Approximate, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				var m *Model
				var s0, sT State
				if act.Type == "batchnorm1d" {
					m, s0, sT = bnModel(t, "relu", "mse", false)
				} else {
					m, s0, sT = randomModel(t, act, "mse")
				}
				constant := rapid.Bool().Draw(t, "const")
				seed := rapid.Uint64().Draw(t, "seed")
				ws := new(Workspace)
				for pass, n := range []int{5, 3} {
					alpha := rapid.Float64Range(-0.5, 1.5).Draw(t, "alpha")
					sa, d := Interpolate(s0, sT, alpha), Difference(s0, sT)
					rng := rand.New(rand.NewPCG(seed, uint64(pass)))
					in := m.Spec.InputSize()
					rows := 3 * n
					if constant {
						rows = n
					}
					x := mat.NewDense(rows, in, nil)
					for i := range x.RawMatrix().Data {
						x.RawMatrix().Data[i] = rng.NormFloat64()
						if rng.IntN(4) == 0 {
							x.RawMatrix().Data[i] = 0 // exercise the ReLU kink rule
						}
					}
					run := func(ws *Workspace) *mat.Dense {
						j := &Jet{N: n, M: x, Const: constant, WS: ws}
						for i, l := range m.Layers {
							j = l.Jet(m.LayerParams(sa, i), m.LayerParams(d, i), j)
						}
						return mat.DenseCopyOf(j.M)
					}
					run32 := func(ws *Workspace) *mat.Dense {
						j := RoundJet(&Jet{N: n, M: x, Const: constant})
						j.WS = ws
						for i, l := range m.Layers {
							j = l.(Jet32Layer).Jet32(RoundTensors(m.LayerParams(sa, i)), RoundTensors(m.LayerParams(d, i)), j)
						}
						return mat.DenseCopyOf(j.Float64().M)
					}
					// float32: gonum's float32 kernels peel elements until a
					// 16-byte boundary, so their summation order — and the last
					// bit — depends on where a matrix lies in memory; a NaN
					// (an element left unwritten) still shows.
					for k, r := range []func(*Workspace) *mat.Dense{run, run32} {
						want := r(nil)
						ws.Reset()
						ws.poison()
						got := r(ws)
						wr, gr := want.RawMatrix(), got.RawMatrix()
						for i := range wr.Data {
							w, g := wr.Data[i], gr.Data[i]
							same := math.Float64bits(w) == math.Float64bits(g)
							if k == 1 && !same {
								same = !math.IsNaN(g) && math.Abs(g-w) <= 1e-5*(1+math.Abs(w))
							}
							if !same {
								t.Fatalf("float%d, pass %d (n=%d, const %v): element %d: workspace %v, fresh %v", 64>>k, pass, n, constant, i, g, w)
							}
						}
					}
				}
				if ws.Bytes() == 0 && len(m.Layers) > 0 {
					if _, ok := m.Layers[0].(*Dense); ok {
						t.Fatal("the workspace handed out no matrix")
					}
				}
			})
		})
	}
}
