package nn

import (
	"fmt"

	"github.com/certify-mli/certify/interval"
)

// The backward interval rules (issue 13): the certificate's jump term of
// the loss's slope form across ReLU kinks, bounded by the loss's gradient
// at the units that may cross instead of pushed forward through the rest
// of the network.
//
// With IJet.DK's decomposition, ḣ_l(α) − ḣ_l(c) = S_l + K_l for every
// layer l, where the kink part obeys K_l = A_l(α)·K_{l−1} + J_l: A_l(α) is
// the layer's Jacobian with respect to its input at θ(α) (W(α) for conv2d
// and linear, the gain γ(α)/√(σ²(α) + ε) for BatchNorm in evaluation mode,
// [I, c(α)] for a residual join, σ′(z(α)) for an activation, the pool's
// averaging or arg-max selection) and J_l the jumps the layer itself
// creates (a ReLU unit u that may cross 0: J_u = (σ′(z_u(α)) −
// σ′(z_u(c)))·ż_u(c); a max-pool window that may switch arg-max:
// ḣ_k(α)(c) − ḣ_k(c)(c)). The loss's part of it is then
//
//	e(α)ᵀK_L = Σ_l g_l(α)ᵀ J_l,  g_l(α) = A_{l+1}(α)ᵀ ⋯ A_L(α)ᵀ e(α),
//
// with e = ∂ℓ/∂γ (p − e_y for cross-entropy, 2(γ − y) for mse) and g_l the
// gradient of ℓ at layer l's output. Enclosing every A_l(α) over the leaf
// (inclusion monotonicity: every factor at the same α lies in its
// enclosure), a backward pass G_{l−1} = A_l(leaf)ᵀ G_l from G_L ⊇ e(leaf)
// encloses every g_l(α), and Σ_l G_lᵀ J_l encloses the loss's jump term.
// The jumps of different units then enter with the gradient's sign and
// cancel where the network's Jacobian cancels, instead of each being
// carried in magnitude through |W| of every later layer (IJet.DK grew
// ~100-fold per resnet-8 block).

// IntervalTape is what a layer's backward interval rule
// (IntervalBackward.IntervalVJP) reads from the layer's forward interval
// pass over an α-interval: for an activation the enclosures of σ′(z(α))
// per entry of its input [N, D] and the units that may cross a kink with
// their jumps; for a max-pool the arg-max candidates of every window.
// Layers whose Jacobian depends on their parameters only record none
// (nil).
type IntervalTape struct {
	// N, D: the input's rows and columns.
	N, D int
	// state per input entry of a ReLU/LeakyReLU: 0 σ′ = slope on the
	// whole interval, 1 σ′ = 1, 2 either (the unit may cross 0)
	state []uint8
	// mask: σ′'s enclosure [N, D] for the smooth activations
	mask interval.Matrix
	// src: flat output indices i·D + q (max-pool: i·outSize + o) whose
	// layer creates a jump there, with jump[k] ⊇ J of src[k]
	src  []int32
	jump []interval.I
	// cands: max-pool only, per output entry (i·outSize + o) the input
	// entries that may be its arg-max, candStart[o'] … candStart[o'+1]
	cands     []int32
	candStart []int32
}

// IntervalBackward is a layer with a backward interval rule (see the
// comment at the top of interval_backward.go and THEORY.md §7, §9).
type IntervalBackward interface {
	IntervalLayer
	// IntervalTape records from in, the enclosure over p.Alpha that the
	// layer's IntervalJet read, what IntervalVJP needs; nil when nothing.
	// centre, when not nil, is the layer's input jet at the interval's
	// point c (order ≥ 1), row rows[i] of it matching row i of in (rows
	// nil: row i): the jumps are then taken relative to c, J =
	// ḣ(α) − ḣ(c) − σ′(z(α))(ż(α) − ż(c)), which is one-signed per unit;
	// without it they hold relative to any β of the interval. An error
	// names what the rule cannot enclose (a softplus input crossing its
	// threshold, where h itself jumps).
	IntervalTape(p *ParamBox, in, centre *IJet, rows []int32) (*IntervalTape, error)
	// IntervalVJP returns gin [N, InSize] enclosing A(α)ᵀ·g(α) for every
	// α in p.Alpha and every g(α) ∈ g [N, OutSize] (the gradient of the
	// loss at the layer's output), and dk [N] (nil when the layer creates
	// no jumps) enclosing g(α)ᵀ·J(α) per example, J the jumps the layer
	// creates (IntervalTape). t is IntervalTape's result on the same
	// interval.
	IntervalVJP(p *ParamBox, t *IntervalTape, g interval.Matrix) (gin interval.Matrix, dk []interval.I, err error)
}

// IntervalBackwardBlock is an IntervalBlock with the backward rule of its
// join: IntervalVJPBlock maps the gradient at the block's output g [N, D]
// to its input, calling sub for sub-layer k of branch b (last to first)
// with that sub-layer's parameter box and the gradient at its output; sub
// returns the gradient at the sub-layer's input (IntervalBackward.IntervalVJP
// on the tape the caller recorded).
type IntervalBackwardBlock interface {
	IntervalBlock
	IntervalVJPBlock(p *ParamBox, g interval.Matrix, sub func(b, k int, l Layer, box *ParamBox, g interval.Matrix) (interval.Matrix, error)) (interval.Matrix, error)
}

// IntervalTape implements IntervalBackward: σ′'s enclosure per entry and,
// for ReLU and LeakyReLU units whose input may cross 0, the jump
// (σ′(z(α)) − σ′(z(c)))·ż(c) ∈ [slope − 1, 0]·ż(c) when z(c) > 0,
// [0, 1 − slope]·ż(c) when z(c) < 0, the hull of both otherwise (with
// centre), or [−|1 − slope|, |1 − slope|]·ż(leaf) relative to any β
// (without). An identity or flatten records nothing.
func (a *Activation) IntervalTape(_ *ParamBox, in, centre *IJet, rows []int32) (*IntervalTape, error) {
	if a.identity() {
		return nil, nil
	}
	n, d := in.N, in.D
	t := &IntervalTape{N: n, D: d}
	moving := !in.Const && in.Order >= 1
	if centre != nil && (centre.Const || centre.Order < 1 || centre.D != d) {
		centre = nil
	}
	switch a.Kind {
	case ReLU, LeakyReLU:
		neg := a.Slope
		if a.Kind == ReLU {
			neg = 0
		}
		m := interval.Up(max(1-neg, neg-1))
		up, down := interval.Hull(interval.Point(0), interval.Point(1-neg)), interval.Hull(interval.Point(neg-1), interval.Point(0))
		t.state = make([]uint8, n*d)
		for i := 0; i < n; i++ {
			ic := i
			if rows != nil {
				ic = int(rows[i])
			}
			for q := 0; q < d; q++ {
				k := i*d + q
				switch lo, hi := in.V.Lo[k], in.V.Hi[k]; {
				case lo >= 0:
					t.state[k] = 1
				case hi <= 0:
					t.state[k] = 0
				default:
					t.state[k] = 2
					if !moving {
						continue // a constant input does not cross
					}
					var j interval.I
					if centre != nil {
						kc := ic*d + q
						zc, zdc := interval.I{Lo: centre.V.Lo[kc], Hi: centre.V.Hi[kc]}, interval.I{Lo: centre.D1.Lo[kc], Hi: centre.D1.Hi[kc]}
						s := interval.Hull(up, down)
						if zc.Lo > 0 {
							s = down
						} else if zc.Hi < 0 {
							s = up
						}
						j = interval.Mul(s, zdc)
					} else {
						j = interval.Mul(interval.I{Lo: -m, Hi: m}, interval.I{Lo: in.D1.Lo[k], Hi: in.D1.Hi[k]})
					}
					t.src = append(t.src, int32(k))
					t.jump = append(t.jump, j)
				}
			}
		}
		return t, nil
	case Tanh, Sigmoid, GELU, Softplus:
		t.mask = interval.NewMatrix(n, d)
		for k := range in.V.Lo {
			_, d1, _, kink := a.Enclose(interval.I{Lo: in.V.Lo[k], Hi: in.V.Hi[k]})
			if kink {
				return nil, fmt.Errorf("nn: %s: an input may cross the threshold, where the output jumps: no backward jump rule", a.Kind)
			}
			t.mask.Lo[k], t.mask.Hi[k] = d1.Lo, d1.Hi
		}
		return t, nil
	case IdentityKind, Flatten:
		return nil, nil // handled by identity() above
	}
	return nil, fmt.Errorf("nn: activation %s: no backward interval rule", a.Kind)
}

// IntervalVJP implements IntervalBackward: g ⊙ σ′ (the hull [slope, 1] at
// a unit that may cross), and dk_i = Σ_u g_u·J_u over the tape's crossing
// units of example i.
func (a *Activation) IntervalVJP(_ *ParamBox, t *IntervalTape, g interval.Matrix) (interval.Matrix, []interval.I, error) {
	if a.identity() {
		return g, nil, nil
	}
	if t == nil || g.Rows != t.N || g.Cols != t.D {
		return interval.Matrix{}, nil, fmt.Errorf("nn: %s: IntervalVJP without a matching tape", a.Kind)
	}
	out := interval.NewMatrix(g.Rows, g.Cols)
	if t.state != nil {
		neg := a.Slope
		if a.Kind == ReLU {
			neg = 0
		}
		both := interval.Hull(interval.Point(neg), interval.Point(1))
		for k, s := range t.state {
			x := interval.I{Lo: g.Lo[k], Hi: g.Hi[k]}
			switch s {
			case 1:
			case 0:
				x = interval.Scale(neg, x)
			default:
				x = interval.Mul(both, x)
			}
			out.Lo[k], out.Hi[k] = x.Lo, x.Hi
		}
	} else {
		for k := range out.Lo {
			x := interval.Mul(interval.I{Lo: t.mask.Lo[k], Hi: t.mask.Hi[k]}, interval.I{Lo: g.Lo[k], Hi: g.Hi[k]})
			out.Lo[k], out.Hi[k] = x.Lo, x.Hi
		}
	}
	if len(t.src) == 0 {
		return out, nil, nil
	}
	dk := make([]interval.I, t.N)
	for s, k := range t.src {
		i := int(k) / t.D
		dk[i] = interval.Add(dk[i], interval.Mul(interval.I{Lo: g.Lo[k], Hi: g.Hi[k]}, t.jump[s]))
	}
	return out, dk, nil
}

// transposed returns the transpose [c, r] of the row-major m [r, c] (nil
// for nil).
func transposed(m []float64, r, c int) []float64 {
	if m == nil {
		return nil
	}
	out := make([]float64, len(m))
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			out[j*r+i] = m[i*c+j]
		}
	}
	return out
}

// IntervalTape implements IntervalBackward: the Jacobian is W(α), in the
// parameter box; nothing to record.
func (d *Dense) IntervalTape(*ParamBox, *IJet, *IJet, []int32) (*IntervalTape, error) {
	return nil, nil
}

// IntervalVJP implements IntervalBackward: g·W(α) with W(α) ∈ Mid ± Rad
// (interval.MulNT on Wᵀ, built once per box: ParamBox.boxWeightsT); no jumps.
func (d *Dense) IntervalVJP(p *ParamBox, _ *IntervalTape, g interval.Matrix) (interval.Matrix, []interval.I, error) {
	return interval.MulNT(g, p.boxWeightsT(0, d.Out, d.In), 1), nil, nil
}

// IntervalTape implements IntervalBackward: nothing to record.
func (l *Conv2d) IntervalTape(*ParamBox, *IJet, *IJet, []int32) (*IntervalTape, error) {
	return nil, nil
}

// IntervalVJP implements IntervalBackward: the transposed convolution
// W(α)ᵀ ⋆ g with W(α) ∈ Mid ± Rad: the patch gradients Wᵀ·g
// (interval.MulCols on Wᵀ [In·KH·KW, Out] and g's [Out, OH·OW] blocks in
// midpoint–radius form, a chunk of examples side by side: g's rows are
// already that layout, so no interval patches are built and no entry is
// converted twice; issue 13) added back into the input positions
// (col2im), every sum rounded outward; no jumps.
func (l *Conv2d) IntervalVJP(p *ParamBox, _ *IntervalTape, g interval.Matrix) (interval.Matrix, []interval.I, error) {
	n, ckk, ohw := g.Rows, l.ckk(), l.ohw()
	wt := interval.NewWeights(ckk, l.Out, transposed(p.Mid[0].Data, l.Out, ckk), transposed(p.Rad[0].Data, l.Out, ckk))
	out := interval.NewMatrix(n, l.InSize())
	b := min(max(1, convColElems/max(1, ckk*ohw)), max(n, 1))
	bufs := make([]*[]float64, 4)
	get := func(i, size int) []float64 { bufs[i] = getConvBuf(size); return *bufs[i] }
	cm, ca := get(0, l.Out*b*ohw), get(1, 2*l.Out*b*ohw)
	plo, phi := get(2, ckk*b*ohw), get(3, ckk*b*ohw)
	defer func() {
		for _, q := range bufs {
			putConvBuf(q)
		}
	}()
	hw := l.H * l.W
	for e0 := 0; e0 < n; e0 += b {
		m := min(b, n-e0)
		ld := m * ohw
		for e := 0; e < m; e++ {
			gl, gh := g.Row(e0 + e)
			for o := 0; o < l.Out; o++ {
				c := o*ld + e*ohw
				interval.MidRad(gl[o*ohw:(o+1)*ohw], gh[o*ohw:(o+1)*ohw], cm[c:c+ohw], ca[c:c+ohw], ca[l.Out*ld+c:l.Out*ld+c+ohw])
			}
		}
		interval.MulCols(wt, interval.Cols{K: l.Out, N: ld, Mid: cm[:l.Out*ld], Abs: ca[:2*l.Out*ld]}, 1, plo, phi)
		for e := 0; e < m; e++ {
			ol, oh := out.Row(e0 + e)
			for c := 0; c < l.In; c++ {
				for u := 0; u < l.KH; u++ {
					for v := 0; v < l.KW; v++ {
						r := (c*l.KH+u)*l.KW + v
						for i := 0; i < l.OH; i++ {
							ih := i*l.SH - l.PH + u
							if ih < 0 || ih >= l.H {
								continue
							}
							s0 := r*ld + e*ohw + i*l.OW
							d0 := c*hw + ih*l.W
							for j := 0; j < l.OW; j++ {
								iw := j*l.SW - l.PW + v
								if iw < 0 || iw >= l.W {
									continue
								}
								s, d := s0+j, d0+iw
								ol[d] = addDownF(ol[d], plo[s])
								oh[d] = addUpF(oh[d], phi[s])
							}
						}
					}
				}
			}
		}
	}
	return out, nil, nil
}

// intervalGains encloses the per-feature gain γ(α)/√(running_var(α) + ε) of the
// `interpolate` policy over p.Alpha (the whole line where the variance's
// enclosure reaches −ε).
func (b *BatchNorm) intervalGains(p *ParamBox) []interval.I {
	g := make([]interval.I, b.Features)
	for j := range g {
		g[j] = interval.Mul(boxAt(p, 0, j), rsqrt(interval.AddF(boxAt(p, 3, j), b.Eps)))
	}
	return g
}

// IntervalTape implements IntervalBackward: nothing to record (the gain
// depends on the parameters only).
func (b *BatchNorm) IntervalTape(*ParamBox, *IJet, *IJet, []int32) (*IntervalTape, error) {
	return nil, nil
}

// IntervalVJP implements IntervalBackward (the `interpolate` policy, whose
// statistics are the running ones in the parameter box; under `recompute`
// the certificate carries no jump term, IJet.DK): g times the gain per
// feature; no jumps.
func (b *BatchNorm) IntervalVJP(p *ParamBox, _ *IntervalTape, g interval.Matrix) (interval.Matrix, []interval.I, error) {
	gain := b.intervalGains(p)
	out := interval.NewMatrix(g.Rows, g.Cols)
	for k := range g.Lo {
		x := interval.Mul(gain[k%b.Features], interval.I{Lo: g.Lo[k], Hi: g.Hi[k]})
		out.Lo[k], out.Hi[k] = x.Lo, x.Hi
	}
	return out, nil, nil
}

// IntervalTape implements IntervalBackward: nothing to record.
func (b *BatchNorm2d) IntervalTape(*ParamBox, *IJet, *IJet, []int32) (*IntervalTape, error) {
	return nil, nil
}

// IntervalVJP implements IntervalBackward: BatchNorm.IntervalVJP per
// channel (channel j holds the entries j·H·W … (j+1)·H·W − 1 of a row).
func (b *BatchNorm2d) IntervalVJP(p *ParamBox, _ *IntervalTape, g interval.Matrix) (interval.Matrix, []interval.I, error) {
	gain := b.BN.intervalGains(p)
	out := interval.NewMatrix(g.Rows, g.Cols)
	for k := range g.Lo {
		x := interval.Mul(gain[(k%g.Cols)/b.HW], interval.I{Lo: g.Lo[k], Hi: g.Hi[k]})
		out.Lo[k], out.Hi[k] = x.Lo, x.Hi
	}
	return out, nil, nil
}

// avgVJP is the transpose of avgI: every input entry gets the sum of its
// windows' gradients divided by their divisors.
func (g *pool2d) avgVJP(x interval.Matrix) interval.Matrix {
	oq := g.OH * g.OW
	out := interval.NewMatrix(x.Rows, g.C*g.H*g.W)
	for i := 0; i < x.Rows; i++ {
		for c := 0; c < g.C; c++ {
			base := i*out.Cols + c*g.H*g.W
			for q := 0; q < oq; q++ {
				s := i*x.Cols + c*oq + q
				v := interval.Div(interval.I{Lo: x.Lo[s], Hi: x.Hi[s]}, interval.Point(g.Div[q]))
				for h := g.H0[q]; h < g.H1[q]; h++ {
					for w := g.W0[q]; w < g.W1[q]; w++ {
						k := base + h*g.W + w
						y := interval.Add(interval.I{Lo: out.Lo[k], Hi: out.Hi[k]}, v)
						out.Lo[k], out.Hi[k] = y.Lo, y.Hi
					}
				}
			}
		}
	}
	return out
}

// IntervalTape implements IntervalBackward: nothing to record.
func (l *AvgPool2d) IntervalTape(*ParamBox, *IJet, *IJet, []int32) (*IntervalTape, error) {
	return nil, nil
}

// IntervalVJP implements IntervalBackward: the transposed average; no jumps.
func (l *AvgPool2d) IntervalVJP(_ *ParamBox, _ *IntervalTape, g interval.Matrix) (interval.Matrix, []interval.I, error) {
	return l.avgVJP(g), nil, nil
}

// IntervalTape implements IntervalBackward: nothing to record.
func (l *AdaptiveAvgPool2d) IntervalTape(*ParamBox, *IJet, *IJet, []int32) (*IntervalTape, error) {
	return nil, nil
}

// IntervalVJP implements IntervalBackward: the transposed average; no jumps.
func (l *AdaptiveAvgPool2d) IntervalVJP(_ *ParamBox, _ *IntervalTape, g interval.Matrix) (interval.Matrix, []interval.I, error) {
	return l.avgVJP(g), nil, nil
}

// IntervalTape implements IntervalBackward: per window the arg-max
// candidates (as IntervalJet: the inputs whose Hi reaches the window's
// largest Lo) and, for a window with two or more, the jump ḣ_k(α)(c) −
// ḣ_k(c)(c) ∈ hull of the candidates' velocities at c − hull of the
// velocities at c of the candidates at c (with centre), or the leaf's
// hull minus itself (without).
func (l *MaxPool2d) IntervalTape(_ *ParamBox, in, centre *IJet, rows []int32) (*IntervalTape, error) {
	g := &l.pool2d
	n, oq, os := in.N, g.OH*g.OW, l.outSize()
	t := &IntervalTape{N: n, D: in.D, candStart: make([]int32, 0, n*os+1)}
	moving := !in.Const && in.Order >= 1
	if centre != nil && (centre.Const || centre.Order < 1 || centre.D != in.D) {
		centre = nil
	}
	for i := 0; i < n; i++ {
		ic := i
		if rows != nil {
			ic = int(rows[i])
		}
		for c := 0; c < g.C; c++ {
			base := i*in.V.Cols + c*g.H*g.W
			cbase := ic*in.V.Cols + c*g.H*g.W
			for q := 0; q < oq; q++ {
				t.candStart = append(t.candStart, int32(len(t.cands)))
				lo := in.V.Lo[base+g.H0[q]*g.W+g.W0[q]]
				clo := 0.0
				if centre != nil {
					clo = centre.V.Lo[cbase+g.H0[q]*g.W+g.W0[q]]
				}
				for h := g.H0[q]; h < g.H1[q]; h++ {
					for w := g.W0[q]; w < g.W1[q]; w++ {
						lo = max(lo, in.V.Lo[base+h*g.W+w])
						if centre != nil {
							clo = max(clo, centre.V.Lo[cbase+h*g.W+w])
						}
					}
				}
				first := len(t.cands)
				for h := g.H0[q]; h < g.H1[q]; h++ {
					for w := g.W0[q]; w < g.W1[q]; w++ {
						if k := base + h*g.W + w; in.V.Hi[k] >= lo {
							t.cands = append(t.cands, int32(k))
						}
					}
				}
				if len(t.cands)-first < 2 || !moving {
					continue
				}
				var all, atc interval.I
				na, nc := 0, 0
				for _, k := range t.cands[first:] {
					var v interval.I
					if centre != nil {
						kc := int(k) - base + cbase
						v = interval.I{Lo: centre.D1.Lo[kc], Hi: centre.D1.Hi[kc]}
						if centre.V.Hi[kc] >= clo {
							if nc == 0 {
								atc = v
							} else {
								atc = interval.Hull(atc, v)
							}
							nc++
						}
					} else {
						v = interval.I{Lo: in.D1.Lo[k], Hi: in.D1.Hi[k]}
					}
					if na == 0 {
						all = v
					} else {
						all = interval.Hull(all, v)
					}
					na++
				}
				if centre == nil || nc == 0 {
					atc = all
				}
				t.src = append(t.src, int32(i*os+c*oq+q))
				t.jump = append(t.jump, interval.Sub(all, atc))
			}
		}
	}
	t.candStart = append(t.candStart, int32(len(t.cands)))
	return t, nil
}

// IntervalVJP implements IntervalBackward: a window's gradient goes to its
// only candidate, or to each of two or more as hull(0, g) (exactly one of
// them is selected at each α); dk_i sums g·J over the windows of example i
// that may switch.
func (l *MaxPool2d) IntervalVJP(_ *ParamBox, t *IntervalTape, g interval.Matrix) (interval.Matrix, []interval.I, error) {
	if t == nil || g.Rows != t.N || g.Cols != l.outSize() || len(t.candStart) != g.Rows*g.Cols+1 {
		return interval.Matrix{}, nil, fmt.Errorf("nn: maxpool2d: IntervalVJP without a matching tape")
	}
	out := interval.NewMatrix(t.N, t.D)
	zero := interval.Point(0)
	for o := 0; o < g.Rows*g.Cols; o++ {
		x := interval.I{Lo: g.Lo[o], Hi: g.Hi[o]}
		cs := t.cands[t.candStart[o]:t.candStart[o+1]]
		if len(cs) > 1 {
			x = interval.Hull(zero, x)
		}
		for _, k := range cs {
			y := interval.Add(interval.I{Lo: out.Lo[k], Hi: out.Hi[k]}, x)
			out.Lo[k], out.Hi[k] = y.Lo, y.Hi
		}
	}
	if len(t.src) == 0 {
		return out, nil, nil
	}
	dk := make([]interval.I, t.N)
	for s, o := range t.src {
		i := int(o) / g.Cols
		dk[i] = interval.Add(dk[i], interval.Mul(interval.I{Lo: g.Lo[o], Hi: g.Hi[o]}, t.jump[s]))
	}
	return out, dk, nil
}

// IntervalVJPBlock implements IntervalBackwardBlock: y = s + c(α)·u, so the
// shortcut's output gets g and the body's c(α)·g (c ∈ Mid ± Rad of the
// residual scale, 1 without), each mapped back through its branch's
// sub-layers by sub, and the input's gradient is their sum (an empty
// branch is the identity).
func (r *Residual) IntervalVJPBlock(p *ParamBox, g interval.Matrix, sub func(b, k int, l Layer, box *ParamBox, g interval.Matrix) (interval.Matrix, error)) (interval.Matrix, error) {
	gu := g
	if r.Scale {
		m, rad := p.Mid[0].Data[0], p.Rad[0].Data[0]
		c := interval.I{Lo: interval.Down(m - rad), Hi: interval.Up(m + rad)}
		gu = interval.NewMatrix(g.Rows, g.Cols)
		for k := range g.Lo {
			x := interval.Mul(c, interval.I{Lo: g.Lo[k], Hi: g.Hi[k]})
			gu.Lo[k], gu.Hi[k] = x.Lo, x.Hi
		}
	}
	var err error
	for k := len(r.Body) - 1; k >= 0; k-- {
		if gu, err = sub(0, k, r.Body[k], r.subBox(p, 0, k), gu); err != nil {
			return interval.Matrix{}, err
		}
	}
	gs := g
	for k := len(r.Shortcut) - 1; k >= 0; k-- {
		if gs, err = sub(1, k, r.Shortcut[k], r.subBox(p, 1, k), gs); err != nil {
			return interval.Matrix{}, err
		}
	}
	if gs.Rows != gu.Rows || gs.Cols != gu.Cols {
		return interval.Matrix{}, fmt.Errorf("nn: residual: IntervalVJPBlock: the branches' input gradients are [%d, %d] and [%d, %d]", gu.Rows, gu.Cols, gs.Rows, gs.Cols)
	}
	out := interval.NewMatrix(gs.Rows, gs.Cols)
	for k := range out.Lo {
		x := interval.Add(interval.I{Lo: gs.Lo[k], Hi: gs.Hi[k]}, interval.I{Lo: gu.Lo[k], Hi: gu.Hi[k]})
		out.Lo[k], out.Hi[k] = x.Lo, x.Hi
	}
	return out, nil
}

var (
	_ IntervalBackward      = (*Activation)(nil)
	_ IntervalBackward      = (*Dense)(nil)
	_ IntervalBackward      = (*Conv2d)(nil)
	_ IntervalBackward      = (*BatchNorm)(nil)
	_ IntervalBackward      = (*BatchNorm2d)(nil)
	_ IntervalBackward      = (*AvgPool2d)(nil)
	_ IntervalBackward      = (*AdaptiveAvgPool2d)(nil)
	_ IntervalBackward      = (*MaxPool2d)(nil)
	_ IntervalBackwardBlock = (*Residual)(nil)
)

// Jumps reports whether the tape's layer creates a jump on the interval
// (a ReLU unit that may cross 0 with a moving input, a max-pool window
// that may switch arg-max); false for a nil tape.
func (t *IntervalTape) Jumps() bool { return t != nil && len(t.src) > 0 }
