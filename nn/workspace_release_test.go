package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestWorkspaceReleaseDeepNets checks the releases of the second-order
// passes (Workspace.Release: Conv2d's scratch, BatchNorm2d's [N·H·W, C]
// views, a residual block's intermediate jets) on the built-in resnet-8-bn
// and lenet: a pass whose matrices come from a reused, NaN-poisoned
// workspace that releases each consumed jet gives bit for bit the jet of a
// pass on freshly allocated matrices (a buffer handed out twice while live
// would corrupt it), for a chunk of 3 and then of 2 examples; and the
// workspace of resnet-14-bn holds no more bytes than resnet-8-bn's (same
// widths, twice the blocks): the memory of a pass does not grow with the
// depth, what the releases exist for (issue 13).
func TestWorkspaceReleaseDeepNets(t *testing.T) {
	held := map[string]int{}
	for _, arch := range []string{"resnet-8-bn", "resnet-14-bn", "resnet-8-nobn-scale", "lenet"} {
		t.Run(arch, func(t *testing.T) {
			spec, _, err := BuiltinSpec(arch, "cross_entropy")
			if err != nil {
				t.Fatal(err)
			}
			m, err := Build(spec)
			if err != nil {
				t.Fatal(err)
			}
			s0, err := Init(m, "pytorch", 1, 1)
			if err != nil {
				t.Fatal(err)
			}
			sT, err := Init(m, "pytorch", 1, 2)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			for _, st := range []State{s0, sT} { // BatchNorm statistics away from 0 and 1
				for k, ts := range st {
					if len(k) > 12 && (k[len(k)-12:] == "running_mean" || k[len(k)-11:] == "running_var") {
						for i := range ts.Data {
							ts.Data[i] = 0.5 + rng.Float64()
						}
					}
				}
			}
			ws := new(Workspace)
			for pass, n := range []int{3, 2} {
				alpha := 0.3 + 0.4*float64(pass)
				sa, d := Interpolate(s0, sT, alpha), Difference(s0, sT)
				x := mat.NewDense(n, m.Spec.InputSize(), nil)
				for i := range x.RawMatrix().Data {
					x.RawMatrix().Data[i] = rng.NormFloat64()
				}
				run := func(ws *Workspace) *mat.Dense {
					j := &Jet{N: n, M: x, Const: true, WS: ws}
					for i, l := range m.Layers {
						next := l.Jet(m.LayerParams(sa, i), m.LayerParams(d, i), j)
						ws.Release(j, next)
						j = next
					}
					return mat.DenseCopyOf(j.M)
				}
				want := run(nil)
				ws.Reset()
				ws.poison()
				got := run(ws)
				wr, gr := want.RawMatrix().Data, got.RawMatrix().Data
				for i := range wr {
					if math.Float64bits(wr[i]) != math.Float64bits(gr[i]) {
						t.Fatalf("pass %d (n=%d): element %d: workspace %v, fresh %v", pass, n, i, gr[i], wr[i])
					}
				}
			}
			held[arch] = ws.Bytes()
		})
	}
	if held["resnet-14-bn"] > held["resnet-8-bn"] {
		t.Errorf("the workspace of resnet-14-bn holds %d bytes, resnet-8-bn's %d: a pass's memory grows with the depth", held["resnet-14-bn"], held["resnet-8-bn"])
	}
}
