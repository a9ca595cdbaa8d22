package certify

import (
	"math"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"

	"github.com/certify-mli/certify/interval"
)

// TestCentredPassInsideBlocks: the centred forms applied after every
// sub-layer of a residual block (nn.Residual.IntervalJetHook, centredPass)
// keep enclosures: on random small ResNets (randomConvResidualPath, both
// BatchNorm policies) and a random leaf of random width, on all
// rows or a random subset of them, every example's enclosures of ℓ_i and
// ℓ_i′ over the leaf contain functionspace's dense float64 ℓ_i(α), ℓ_i′(α)
// at random α of the leaf and at its ends, and the midpoint's point
// enclosures contain them at the midpoint.
func TestCentredPassInsideBlocks(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := randomConvResidualPath(t)
		e, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		a := rapid.Float64Range(0, 0.9).Draw(t, "a")
		w := rapid.SampledFrom([]float64{1e-7, 1e-4, 1e-2, 0.1}).Draw(t, "width")
		b := a + w
		mid := 0.5*a + 0.5*b
		ab := interval.I{Lo: a, Hi: b}
		c, rows := drawChunkRows(t, e)
		ch := e.chunks[c]
		l, dl, d2l, _, jump, lc, dlc, dk := e.centredPass(c, ab, mid, e.boxes(ab), e.boxes(interval.Point(mid)), rows)
		check := func(what string, al float64, enc []interval.I, sub bool, val func(s []float64, i int) float64) {
			s := p.At(al)
			n := ch[1] - ch[0]
			if sub && rows != nil {
				n = len(rows)
			}
			for q := 0; q < n; q++ {
				i := q
				if sub && rows != nil {
					i = int(rows[q])
				}
				if sub && jump[q] {
					continue
				}
				v := val(s.ExampleLoss, ch[0]+i)
				if what != "ℓ" {
					v = val(s.ExampleDLoss, ch[0]+i)
				}
				sl := 1e-9 * (1 + math.Abs(v))
				if v < enc[q].Lo-sl || v > enc[q].Hi+sl {
					t.Fatalf("example %d: %s(%v) = %v outside [%v, %v] (leaf [%v, %v])", ch[0]+i, what, al, v, enc[q].Lo, enc[q].Hi, a, b)
				}
			}
		}
		get := func(s []float64, i int) float64 { return s[i] }
		for _, al := range []float64{a, b, a + w*rapid.Float64Range(0, 1).Draw(t, "u1"), a + w*rapid.Float64Range(0, 1).Draw(t, "u2")} {
			al = math.Min(math.Max(al, a), b)
			check("ℓ", al, l, true, get)
			check("ℓ′", al, dl, true, get)
			if dk != nil { // the slope form across kinks: ℓ_i′(α) ∈ ℓ_i′(c) + d2l_i·(α − c) + dk_i
				off := interval.I{Lo: interval.Down(al - mid), Hi: interval.Up(al - mid)}
				sf := make([]interval.I, len(dk))
				for q := range dk {
					i := q
					if rows != nil {
						i = int(rows[q])
					}
					sf[q] = interval.Add(interval.Add(dlc[i], interval.Mul(d2l[q], off)), dk[q])
				}
				check("ℓ′ (slope form)", al, sf, true, get)
			}
		}
		check("ℓ", mid, lc, false, get)
		check("ℓ′", mid, dlc, false, get)
	})
}

// TestSlopeFormAcrossKinks: the jump term of the interval rules
// (nn.IJet.DK, with D2 the almost-everywhere slope) encloses the change of
// the output velocity across kinks: on random small CNNs and ResNets
// (randomConvPath, randomConvResidualPath: conv2d, batchnorm2d, ReLU,
// LeakyReLU, tanh, max and average pools, residual blocks with a scale) and
// random α-intervals of random width, for dense float64 velocities γ̇_i(α),
// γ̇_i(β) at random α, β of the interval, γ̇_i(α) − γ̇_i(β) ∈
// D2·(α − β) + DK for every example, kinked or not, of the plain interval
// pass (no centred form); and the loss's slope form (nn.LossEnclosureDK)
// holds for ℓ_i′. The jet must carry DK whenever the model has no layer
// without the rule (layernorm, or batchnorm under recompute).
func TestSlopeFormAcrossKinks(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var p *functionspace.Path
		if rapid.Bool().Draw(t, "residual") {
			p = randomConvResidualPath(t)
		} else {
			p = randomConvPath(t)
		}
		e, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		a := rapid.Float64Range(0, 0.9).Draw(t, "a")
		w := rapid.SampledFrom([]float64{1e-6, 1e-3, 1e-2, 0.1}).Draw(t, "width")
		ab := interval.I{Lo: a, Hi: a + w}
		c := rapid.IntRange(0, len(e.chunks)-1).Draw(t, "chunk")
		ch := e.chunks[c]
		j := e.jet(c, ab, e.boxes(ab), 2, nil)
		if !j.HasDK() {
			if p.BNPolicy() != functionspace.BNRecompute {
				t.Fatalf("no jump term through %v", p.Model.Spec.Layers)
			}
			return
		}
		_, _, d2l, dk := nn.LossEnclosureDK(p.Model.Spec.Loss, j, p.Targets.Rows(ch[0], ch[1]))
		kinked := 0
		for i := range j.Kink {
			if j.Kink[i] {
				kinked++
			}
		}
		for r := 0; r < 3; r++ {
			al := a + w*rapid.Float64Range(0, 1).Draw(t, "u")
			be := a + w*rapid.Float64Range(0, 1).Draw(t, "v")
			sa, sb := p.At(al), p.At(be)
			off := interval.I{Lo: interval.Down(al - be), Hi: interval.Up(al - be)}
			for i := 0; i < j.N; i++ {
				if j.Jumped(i) {
					continue
				}
				for q := 0; q < j.D; q++ {
					d := sa.Velocity.At(ch[0]+i, q) - sb.Velocity.At(ch[0]+i, q)
					enc := interval.Add(interval.Mul(j.D2.At(i, q), off), j.DK.At(i, q))
					sl := 1e-9 * (1 + math.Abs(sa.Velocity.At(ch[0]+i, q)) + math.Abs(sb.Velocity.At(ch[0]+i, q)))
					if d < enc.Lo-sl || d > enc.Hi+sl {
						t.Fatalf("example %d output %d: γ̇(%v) − γ̇(%v) = %v outside [%v, %v] (kink %v, %d/%d kinked)", ch[0]+i, q, al, be, d, enc.Lo, enc.Hi, j.Kink[i], kinked, j.N)
					}
				}
				d := sa.ExampleDLoss[ch[0]+i] - sb.ExampleDLoss[ch[0]+i]
				enc := interval.Add(interval.Mul(d2l[i], off), dk[i])
				sl := 1e-9 * (1 + math.Abs(sa.ExampleDLoss[ch[0]+i]) + math.Abs(sb.ExampleDLoss[ch[0]+i]))
				if d < enc.Lo-sl || d > enc.Hi+sl {
					t.Fatalf("example %d: ℓ′(%v) − ℓ′(%v) = %v outside [%v, %v] (kink %v)", ch[0]+i, al, be, d, enc.Lo, enc.Hi, j.Kink[i])
				}
			}
		}
	})
}

// TestJumpBackwardEncloses: the backward bound of the loss's jump term
// (jumpBackward, nn.IntervalBackward) encloses what it claims on its own,
// not only intersected with the forward one: on random small MLPs
// (randomCertPath), CNNs (randomConvPath) and ResNets
// (randomConvResidualPath: conv2d, batchnorm2d, ReLU and other
// activations, max and average pools, residual blocks with a scale) and a
// random leaf of random width around its midpoint c, for dense float64
// ℓ_i′ at the leaf's ends and at random α of it,
// ℓ_i′(α) − ℓ_i′(c) ∈ d2l_i·(α − c) + back_i for every example that does
// not jump, with d2l the loss's slope (nn.LossEnclosureGrad) and back the
// backward bound. Models whose every layer has the rule (all but
// batchnorm under recompute, softplus across its threshold) must get it.
func TestJumpBackwardEncloses(t *testing.T) {
	noCarry = true // the backward bound itself, which the carried second layer does not use (carryPlan)
	defer func() { noCarry = false }()
	rapid.Check(t, func(t *rapid.T) {
		var p *functionspace.Path
		switch rapid.IntRange(0, 2).Draw(t, "family") {
		case 0:
			p = randomCertPath(t)
		case 1:
			p = randomConvPath(t)
		default:
			p = randomConvResidualPath(t)
		}
		e, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		if !e.backward {
			if p.BNPolicy() != functionspace.BNRecompute {
				t.Fatalf("no backward rule for %v", p.Model.Spec.Layers)
			}
			return
		}
		a := rapid.Float64Range(0, 0.9).Draw(t, "a")
		w := rapid.SampledFrom([]float64{1e-6, 1e-3, 1e-2, 0.1}).Draw(t, "width")
		b := a + w
		mid := 0.5*a + 0.5*b
		ab := interval.I{Lo: a, Hi: b}
		c := rapid.IntRange(0, len(e.chunks)-1).Draw(t, "chunk")
		ch := e.chunks[c]
		bi := e.boxes(ab)
		j, _, tapes := e.centredJets(c, ab, mid, bi, e.boxes(interval.Point(mid)), nil)
		if tapes == nil {
			if !j.HasDK() || p.Model.MayJump() {
				return // softplus: a jump of h, no slope form
			}
			t.Fatalf("no tapes for %v", p.Model.Spec.Layers)
		}
		_, _, d2l, _, grad := nn.LossEnclosureGrad(p.Model.Spec.Loss, j, p.Targets.Rows(ch[0], ch[1]))
		back, err := e.jumpBackward(grad, bi, tapes)
		if err != nil {
			t.Fatal(err)
		}
		sc := p.At(mid)
		for _, al := range []float64{a, b, a + w*rapid.Float64Range(0, 1).Draw(t, "u1"), a + w*rapid.Float64Range(0, 1).Draw(t, "u2")} {
			al = math.Min(math.Max(al, a), b)
			s := p.At(al)
			off := interval.I{Lo: interval.Down(al - mid), Hi: interval.Up(al - mid)}
			for i := 0; i < j.N; i++ {
				if j.Jumped(i) {
					continue
				}
				d := s.ExampleDLoss[ch[0]+i] - sc.ExampleDLoss[ch[0]+i]
				enc := interval.Add(interval.Mul(d2l[i], off), back[i])
				sl := 1e-9 * (1 + math.Abs(s.ExampleDLoss[ch[0]+i]) + math.Abs(sc.ExampleDLoss[ch[0]+i]))
				if d < enc.Lo-sl || d > enc.Hi+sl {
					t.Fatalf("example %d: ℓ′(%v) − ℓ′(%v) = %v outside [%v, %v] (jump term [%v, %v], kink %v, leaf [%v, %v])", ch[0]+i, al, mid, d, enc.Lo, enc.Hi, back[i].Lo, back[i].Hi, j.Kink[i], a, b)
				}
			}
		}
	})
}

// drawChunkRows draws a chunk c of e and its rows: nil (every row) or a
// random non-empty subset of its chunk-local rows, as the leaf passes take
// them (the settled examples of a parent leaf drop out).
func drawChunkRows(t *rapid.T, e *IntervalPath) (c int, rows []int32) {
	c = rapid.IntRange(0, len(e.chunks)-1).Draw(t, "chunk")
	ch := e.chunks[c]
	if rapid.Bool().Draw(t, "subset") {
		for i := 0; i < ch[1]-ch[0]; i++ {
			if rapid.Bool().Draw(t, "row") {
				rows = append(rows, int32(i))
			}
		}
		if len(rows) == 0 {
			rows = []int32{0}
		}
	}
	return c, rows
}
