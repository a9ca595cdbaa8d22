package nn

import (
	"fmt"
	"strconv"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/interval"
)

// Residual is the residual block of RUN_FORMAT.md ("residual"; THEORY.md §9):
//
//	out = shortcut(h) + c·body(h)
//
// with body and shortcut sequences of layers (an empty shortcut is the
// identity) and c a learnable scalar gain "scale" [1] when Scale is set
// (the paper's no-BatchNorm ResNets, initialised to 0), else c = 1. Its
// tensors nest like the state_dict of RUN_FORMAT.md's PyTorch module
// Residual: "scale" (first, as PyTorch lists a module's own parameters
// before its children's), then "body.j.NAME" and "shortcut.j.NAME".
//
// Every rule is its sub-layers' rules composed (the jet of a sum is the sum
// of the jets; the gain obeys the product rule), so the block works with any
// sub-layer that has the rule. The analyses that need to see inside (the
// kink search, the per-row pass) descend through Block and Model.WalkSites.
type Residual struct {
	Body, Shortcut []Layer
	Scale          bool
	In, Out        int
	outShape       []int // one example's output shape ([C, H, W] or [Out])
	// slots[b][j][k] is the position in Params of tensor k of layer j of
	// branch b (0 body, 1 shortcut), −1 for an absent tensor.
	slots [2][][]int
}

func init() {
	registerLayer("residual", []string{"body!", "shortcut", "scale"}, func(ls LayerSpec, width int) (Layer, error) {
		return newResidual(ls, width)
	})
}

// newResidual builds the block's sub-layers through the same registry as
// the model's, each sequence starting at the block's input width.
func newResidual(ls LayerSpec, width int) (*Residual, error) {
	if len(ls.Body) == 0 {
		return nil, fmt.Errorf("residual: body: want at least one layer")
	}
	r := &Residual{In: width, Scale: ls.Scale != nil && *ls.Scale}
	in := ls.InShape()
	if len(in) == 0 {
		in = []int{width}
	}
	// Each branch is built through BuildLayer, threading the example's
	// shape so that image layers inside a block ([C, H, W]) know theirs.
	build := func(name string, specs []LayerSpec) ([]Layer, []int, error) {
		shape := in
		var out []Layer
		for j, s := range specs {
			l, next, err := BuildLayer(s, shape)
			if err != nil {
				return nil, nil, fmt.Errorf("residual: %s[%d]: %w", name, j, err)
			}
			shape = next
			out = append(out, l)
		}
		return out, shape, nil
	}
	var bs, ss []int
	var err error
	if r.Body, bs, err = build("body", ls.Body); err != nil {
		return nil, err
	}
	if r.Shortcut, ss, err = build("shortcut", ls.Shortcut); err != nil {
		return nil, err
	}
	if numel(bs) != numel(ss) || (len(bs) > 1 && len(ss) > 1 && !equalInts(bs, ss)) {
		if len(bs) == 1 && len(ss) == 1 {
			return nil, fmt.Errorf("residual: the body gives %d features but the shortcut gives %d (input %d); they are added", bs[0], ss[0], width)
		}
		return nil, fmt.Errorf("residual: the body gives shape %v but the shortcut gives %v (input %v); they are added", bs, ss, in)
	}
	r.Out, r.outShape = numel(bs), bs
	pos := 0
	if r.Scale {
		pos = 1
	}
	for b, layers := range [2][]Layer{r.Body, r.Shortcut} {
		r.slots[b] = make([][]int, len(layers))
		for j, l := range layers {
			for _, p := range l.Params() {
				if paramAbsent(l, p.Name) {
					r.slots[b][j] = append(r.slots[b][j], -1)
					continue
				}
				r.slots[b][j] = append(r.slots[b][j], pos)
				pos++
			}
		}
	}
	return r, nil
}

// OutShape implements Shaper: the body's output shape for one example
// ([C, H, W] after image layers, [Out] otherwise).
func (r *Residual) OutShape() []int { return r.outShape }

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Type implements Layer.
func (r *Residual) Type() string { return "residual" }

// InSize implements Layer.
func (r *Residual) InSize() int { return r.In }

// OutSize implements Layer.
func (r *Residual) OutSize() int { return r.Out }

var branchNames = [2]string{"body", "shortcut"}

// Params implements Layer: "scale" [1] when Scale, then every present tensor
// of the body and the shortcut as "body.j.NAME", "shortcut.j.NAME" (absent
// tensors, such as a bias-free linear layer's bias, are not listed).
func (r *Residual) Params() []Param {
	var out []Param
	if r.Scale {
		out = append(out, Param{Name: "scale", Shape: []int{1}})
	}
	for b, layers := range [2][]Layer{r.Body, r.Shortcut} {
		for j, l := range layers {
			for _, p := range l.Params() {
				if paramAbsent(l, p.Name) {
					continue
				}
				out = append(out, Param{Name: branchNames[b] + "." + strconv.Itoa(j) + "." + p.Name, Shape: p.Shape, Buffer: p.Buffer})
			}
		}
	}
	return out
}

// Branches implements Block: the body and the shortcut.
func (r *Residual) Branches() []Branch {
	return []Branch{{Name: "body", Layers: r.Body}, {Name: "shortcut", Layers: r.Shortcut}}
}

// OwnParams implements Block: "scale" when Scale.
func (r *Residual) OwnParams() []Param {
	if r.Scale {
		return []Param{{Name: "scale", Shape: []int{1}}}
	}
	return nil
}

// sub returns the tensors of layer j of branch b from the block's tensors
// ps (Params order), nil for absent ones. ps may be nil (no parameters
// known: every entry nil).
func sub[T any](r *Residual, ps []*T, b, j int) []*T {
	idx := r.slots[b][j]
	out := make([]*T, len(idx))
	if ps == nil {
		return out
	}
	for k, q := range idx {
		if q >= 0 {
			out[k] = ps[q]
		}
	}
	return out
}

// gain returns c and ċ = Δc for tensors p (at α) and dp (δ; may be nil).
func (r *Residual) gain(p, dp []*Tensor) (c, cd float64) {
	if !r.Scale {
		return 1, 0
	}
	c = p[0].Data[0]
	if dp != nil && dp[0] != nil {
		cd = dp[0].Data[0]
	}
	return c, cd
}

// Forward implements Layer: shortcut(x) + c·body(x).
func (r *Residual) Forward(p []*Tensor, x *mat.Dense) *mat.Dense {
	return r.forward(p, x, false)
}

// ForwardTrain implements TrainForwarder: the sub-layers in training mode
// (BatchNorm normalises with batch statistics and updates its buffers in p).
func (r *Residual) ForwardTrain(p []*Tensor, x *mat.Dense) *mat.Dense {
	return r.forward(p, x, true)
}

func (r *Residual) forward(p []*Tensor, x *mat.Dense, train bool) *mat.Dense {
	acts := r.trace(p, x, train)
	c, _ := r.gain(p, nil)
	b, s := acts[0][len(acts[0])-1], acts[1][len(acts[1])-1]
	n, d := b.Dims()
	out := mat.NewDense(n, d, nil)
	out.Scale(c, b)
	out.Add(out, s)
	return out
}

// trace runs both branches and keeps every sub-layer's input: acts[b][0] =
// x, acts[b][j+1] = output of layer j of branch b.
func (r *Residual) trace(p []*Tensor, x *mat.Dense, train bool) [2][]*mat.Dense {
	var acts [2][]*mat.Dense
	for b, layers := range [2][]Layer{r.Body, r.Shortcut} {
		h := x
		acts[b] = append(acts[b], h)
		for j, l := range layers {
			ps := sub(r, p, b, j)
			if t, ok := l.(TrainForwarder); ok && train {
				h = t.ForwardTrain(ps, h)
			} else {
				h = l.Forward(ps, h)
			}
			acts[b] = append(acts[b], h)
		}
	}
	return acts
}

// Backward implements Layer. It is the training-mode gradient (as
// BatchNorm's): it recomputes the branches' traces in training mode on
// copies of the buffers (the buffers in p are not updated again), then
// dL/dx = shortcutᵀ(dy) + bodyᵀ(c·dy) and dL/dc = Σ dy ⊙ body(x).
func (r *Residual) Backward(p []*Tensor, x, _, dy *mat.Dense, grads []*Tensor) *mat.Dense {
	pc := append([]*Tensor(nil), p...)
	for k, q := range r.Params() {
		if q.Buffer && pc[k] != nil {
			pc[k] = pc[k].Clone()
		}
	}
	acts := r.trace(pc, x, true)
	c, _ := r.gain(p, nil)
	n, d := dy.Dims()
	var dx *mat.Dense
	for b, layers := range [2][]Layer{r.Body, r.Shortcut} {
		g := dy
		if b == 0 {
			if r.Scale && grads[0] != nil {
				out := acts[0][len(layers)]
				s := 0.0
				for i := 0; i < n; i++ {
					for k, v := range out.RawRowView(i) {
						s += v * dy.At(i, k)
					}
				}
				grads[0].Data[0] += s
			}
			if c != 1 {
				g = mat.NewDense(n, d, nil)
				g.Scale(c, dy)
			}
		}
		for j := len(layers) - 1; j >= 0; j-- {
			g = layers[j].Backward(sub(r, p, b, j), acts[b][j], acts[b][j+1], g, sub(r, grads, b, j))
		}
		if dx == nil {
			dx = mat.DenseCopyOf(g)
		} else {
			dx.Add(dx, g)
		}
	}
	return dx
}

// Jet implements Layer (THEORY.md §9): the branches' jets s, u combined by
// Combine.
func (r *Residual) Jet(p, dp []*Tensor, in *Jet) *Jet {
	var outs [2]*Jet
	for b, layers := range [2][]Layer{r.Body, r.Shortcut} {
		j := in
		for k, l := range layers {
			next := l.Jet(sub(r, p, b, k), sub(r, dp, b, k), j)
			if j != in { // the branch's intermediate jets die as they are consumed
				in.WS.Release(j, next, in)
			}
			j = next
		}
		outs[b] = j
	}
	out := r.Combine(p, dp, outs[0], outs[1])
	for _, o := range outs {
		if o != in {
			in.WS.Release(o, out, in)
		}
	}
	return out
}

// SubParams implements Block.
func (r *Residual) SubParams(p []*Tensor, b, j int) []*Tensor { return sub(r, p, b, j) }

// Combine implements Block: the rule of combine with the gain at α.
func (r *Residual) Combine(p, dp []*Tensor, body, shortcut *Jet) *Jet {
	c, cd := r.gain(p, dp)
	return combine(shortcut, body, func(int) (float64, float64) { return c, cd })
}

// JetRows implements RowJetter: Jet with row i at α = alphas[i] (sub-layers
// without parameters use their Jet, which does not depend on α).
func (r *Residual) JetRows(p0, dp []*Tensor, alphas []float64, in *Jet) *Jet {
	var outs [2]*Jet
	for b, layers := range [2][]Layer{r.Body, r.Shortcut} {
		j := in
		for k, l := range layers {
			if rj, ok := l.(RowJetter); ok {
				j = rj.JetRows(sub(r, p0, b, k), sub(r, dp, b, k), alphas, j)
			} else {
				j = l.Jet(nil, nil, j)
			}
		}
		outs[b] = j
	}
	return r.CombineRows(p0, dp, alphas, outs[0], outs[1])
}

// CombineRows implements Block: the block's output jet from the body's jet
// u and the shortcut's jet s, row i at α = alphas[i]; p0 and dp are the
// block's tensors at θ0 and δ (only "scale" is read).
func (r *Residual) CombineRows(p0, dp []*Tensor, alphas []float64, body, shortcut *Jet) *Jet {
	if !r.Scale {
		return combine(shortcut, body, func(int) (float64, float64) { return 1, 0 })
	}
	c0, cd := p0[0].Data[0], dp[0].Data[0]
	return combine(shortcut, body, func(i int) (float64, float64) { return c0 + alphas[i]*cd, cd })
}

// combine returns the jet of s + c·u, with the gain of row i and its
// α-derivative given by gain(i) (THEORY.md §9):
//
//	y = s + c u,  ẏ = ṡ + ċ u + c u̇,  ÿ = s̈ + 2ċ u̇ + c ü.
//
// The result is Const when s and u are and ċ = 0 for every row. s and u
// are not modified.
func combine(s, u *Jet, gain func(i int) (c, cd float64)) *Jet {
	n := s.N
	_, d := s.M.Dims()
	moving := false
	for i := 0; i < n; i++ {
		if _, cd := gain(i); cd != 0 {
			moving = true
			break
		}
	}
	if s.Const && u.Const && !moving {
		out := mat.NewDense(n, d, nil)
		for i := 0; i < n; i++ {
			c, _ := gain(i)
			o, sr, ur := out.RawRowView(i), s.M.RawRowView(i), u.M.RawRowView(i)
			for k := range o {
				o[k] = sr[k] + c*ur[k]
			}
		}
		return &Jet{N: n, M: out, Const: true, WS: s.WS}
	}
	ws := s.WS
	if ws == nil {
		ws = u.WS
	}
	out := NewJet(n, d, ws)
	row := func(j *Jet, part, i int) []float64 {
		if j.Const && part > 0 {
			return nil
		}
		return j.M.RawRowView(part*n + i)
	}
	for i := 0; i < n; i++ {
		c, cd := gain(i)
		s0, s1, s2 := row(s, 0, i), row(s, 1, i), row(s, 2, i)
		u0, u1, u2 := row(u, 0, i), row(u, 1, i), row(u, 2, i)
		y0, y1, y2 := out.M.RawRowView(i), out.M.RawRowView(n+i), out.M.RawRowView(2*n+i)
		joinRow(y0, y1, y2, s0, s1, s2, u0, u1, u2, c, cd)
	}
	return out
}

// Jet32 implements Jet32Layer: Jet in float32 (every sub-layer must have a
// float32 rule; Model.Require(RuleJet32) checks it through the walk).
func (r *Residual) Jet32(p, dp []*Tensor32, in *Jet32) *Jet32 {
	var outs [2]*Jet32
	for b, layers := range [2][]Layer{r.Body, r.Shortcut} {
		j := in
		for k, l := range layers {
			next := l.(Jet32Layer).Jet32(sub(r, p, b, k), sub(r, dp, b, k), j)
			if j != in { // as in Jet: intermediate jets die as they are consumed
				in.WS.Release32(j, next, in)
			}
			j = next
		}
		outs[b] = j
	}
	out := r.join32(p, dp, outs)
	for _, o := range outs {
		if o != in {
			in.WS.Release32(o, out, in)
		}
	}
	return out
}

// join32 is Jet32's combination of the body's jet outs[0] and the
// shortcut's outs[1] (combine's rule in float32).
func (r *Residual) join32(p, dp []*Tensor32, outs [2]*Jet32) *Jet32 {
	var c, cd float32 = 1, 0
	if r.Scale {
		c = p[0].Data[0]
		if dp != nil && dp[0] != nil {
			cd = dp[0].Data[0]
		}
	}
	s, u := outs[1], outs[0]
	n, d := s.N, s.M.Cols
	if s.Const && u.Const && cd == 0 {
		out := newGeneral32(n, d)
		for i := 0; i < n; i++ {
			o, sr, ur := row32(out, i), row32(s.M, i), row32(u.M, i)
			for k := range o {
				o[k] = sr[k] + c*ur[k]
			}
		}
		return &Jet32{N: n, M: out, Const: true, WS: s.WS}
	}
	ws := s.WS
	if ws == nil {
		ws = u.WS
	}
	out := NewJet32From(n, d, ws)
	row := func(j *Jet32, part, i int) []float32 {
		if j.Const && part > 0 {
			return nil
		}
		return row32(j.M, part*n+i)
	}
	for i := 0; i < n; i++ {
		s0, s1, s2 := row(s, 0, i), row(s, 1, i), row(s, 2, i)
		u0, u1, u2 := row(u, 0, i), row(u, 1, i), row(u, 2, i)
		y0, y1, y2 := row32(out.M, i), row32(out.M, n+i), row32(out.M, 2*n+i)
		joinRow(y0, y1, y2, s0, s1, s2, u0, u1, u2, c, cd)
	}
	return out
}

// joinRow writes one example's row of the block's jet, y = s + c·u with a
// gain c moving at rate cd along α (product rule to second order:
// ẏ = ṡ + ċ·u + c·u̇, ÿ = s̈ + 2ċ·u̇ + c·ü; ċ is constant, c̈ = 0), from
// the shortcut's rows s and the body's rows u; a nil velocity row is a
// constant branch. Written once for Jet and Jet32.
func joinRow[T float32 | float64](y0, y1, y2, s0, s1, s2, u0, u1, u2 []T, c, cd T) {
	for k := range y0 {
		y0[k] = s0[k] + c*u0[k]
		v, a := cd*u0[k], T(0)
		if s1 != nil {
			v += s1[k]
			a += s2[k]
		}
		if u1 != nil {
			v += c * u1[k]
			a += 2*cd*u1[k] + c*u2[k]
		}
		y1[k], y2[k] = v, a
	}
}

// subBox returns the parameter box of layer j of branch b: nil when p is
// nil (a block without parameters evaluated before the first parametrised
// layer of the model, IntervalLayer's nil box).
func (r *Residual) subBox(p *ParamBox, b, j int) *ParamBox {
	if p == nil {
		return nil
	}
	return &ParamBox{Alpha: p.Alpha, Theta0: sub(r, p.Theta0, b, j), Delta: sub(r, p.Delta, b, j),
		Mid: sub(r, p.Mid, b, j), Rad: sub(r, p.Rad, b, j)}
}

// IntervalJet implements IntervalLayer: the branches' enclosures combined
// by the rule of Combine in interval arithmetic, with c ∈ Mid ± Rad of
// "scale" over p.Alpha and ċ = Δc exact. Kink and Jump flags are the union
// of the branches'; the order is the lower of the two.
func (r *Residual) IntervalJet(p *ParamBox, in *IJet) *IJet {
	return r.IntervalJetHook(p, in, nil)
}

// IntervalJetHook is IntervalJet with after (when not nil) applied to the
// output of sub-layer k of branch b (0 the body, 1 the shortcut) before
// the next sub-layer reads it; after may return a tighter enclosure of the
// same jet (the certificate's centred form inside the block, issue 13). The
// returned jet must enclose what the sub-layer's interval rule encloses:
// the block's output then encloses the block's jet.
func (r *Residual) IntervalJetHook(p *ParamBox, in *IJet, after func(b, k int, j *IJet) *IJet) *IJet {
	return r.IntervalJetLeaves(p, in, nil, after)
}

// IntervalJetLeaves is IntervalJetHook with leaf (when not nil) evaluating
// sub-layer k of branch b, l, on its parameter box and input in place of
// l's own interval rule (the `recompute` policy's BatchNorm inside the
// block, whose statistics the caller encloses, THEORY.md §2, §7; l may be
// a block itself, which leaf then descends). leaf must return an
// enclosure of l's jet under the caller's rule; the block's output then
// encloses the block's jet under it.
func (r *Residual) IntervalJetLeaves(p *ParamBox, in *IJet, leaf func(b, k int, l Layer, box *ParamBox, in *IJet) *IJet, after func(b, k int, j *IJet) *IJet) *IJet {
	var outs [2]*IJet
	for b, layers := range [2][]Layer{r.Body, r.Shortcut} {
		j := in
		for k, l := range layers {
			if leaf != nil {
				j = leaf(b, k, l, r.subBox(p, b, k), j)
			} else {
				j = l.(IntervalLayer).IntervalJet(r.subBox(p, b, k), j)
			}
			if after != nil {
				j = after(b, k, j)
			}
		}
		outs[b] = j
	}
	s, u := outs[1], outs[0]
	c, cd := interval.Point(1), 0.0
	if r.Scale {
		m, rad := p.Mid[0].Data[0], p.Rad[0].Data[0]
		c = interval.I{Lo: interval.Down(m - rad), Hi: interval.Up(m + rad)}
		cd = p.Delta[0].Data[0]
	}
	n, d := s.N, s.D
	out := &IJet{N: n, D: d, Order: min(s.Order, u.Order), Const: s.Const && u.Const && cd == 0,
		Kink: make([]bool, n), Jump: make([]bool, n)}
	for i := 0; i < n; i++ {
		out.Kink[i] = (s.Kink != nil && s.Kink[i]) || (u.Kink != nil && u.Kink[i])
		out.Jump[i] = s.Jumped(i) || u.Jumped(i)
	}
	at := func(m interval.Matrix, t int) interval.I { return interval.I{Lo: m.Lo[t], Hi: m.Hi[t]} }
	zero := interval.Point(0)
	deriv := func(j *IJet, k, t int) interval.I {
		if j.Const {
			return zero
		}
		if k == 1 {
			return at(j.D1, t)
		}
		return at(j.D2, t)
	}
	out.V = interval.NewMatrix(n, d)
	if !out.Const && out.Order >= 1 {
		out.D1 = interval.NewMatrix(n, d)
		if out.Order >= 2 {
			out.D2 = interval.NewMatrix(n, d)
		}
	}
	// the jump term: ḣ(α) − ḣ(β) = [ṡ(α) − ṡ(β)] + c(α)[u̇(α) − u̇(β)] +
	// ċ[u(α) − u(β)] + [c(α) − c(β)]u̇(β), whose jumps are K_s + c·K_u (a
	// constant branch has none)
	hasDK := func(j *IJet) bool { return j.Const || j.HasDK() }
	if out.D2.Lo != nil && hasDK(s) && hasDK(u) {
		out.DK = interval.NewMatrix(n, d)
		for t := range out.DK.Lo {
			var k interval.I
			if !s.Const {
				k = at(s.DK, t)
			}
			if !u.Const {
				k = interval.Add(k, interval.Mul(c, at(u.DK, t)))
			}
			out.DK.Lo[t], out.DK.Hi[t] = k.Lo, k.Hi
		}
	}
	for t := range out.V.Lo {
		uv := at(u.V, t)
		out.V.Set(t/d, t%d, interval.Add(at(s.V, t), interval.Mul(c, uv)))
		if out.D1.Lo != nil {
			u1 := deriv(u, 1, t)
			v := interval.Add(deriv(s, 1, t), interval.Add(interval.Scale(cd, uv), interval.Mul(c, u1)))
			out.D1.Set(t/d, t%d, v)
			if out.D2.Lo != nil {
				a := interval.Add(deriv(s, 2, t), interval.Add(interval.Scale(2*cd, u1), interval.Mul(c, deriv(u, 2, t))))
				out.D2.Set(t/d, t%d, a)
			}
		}
	}
	return out
}

// JetFLOPs implements FLOPCounter: the sum of its sub-layers' counts (a
// sub-layer's input is constant only while no layer with parameters
// precedes it in its branch); the sum itself is not counted.
func (r *Residual) JetFLOPs(n int, constInput bool) float64 {
	var f float64
	for _, layers := range [2][]Layer{r.Body, r.Shortcut} {
		c := constInput
		for _, l := range layers {
			if fc, ok := l.(FLOPCounter); ok {
				f += fc.JetFLOPs(n, c)
			}
			if len(l.Params()) > 0 {
				c = false
			}
		}
	}
	return f
}

// MayJump implements Jumps: some sub-layer may jump.
func (r *Residual) MayJump() bool {
	for _, layers := range [2][]Layer{r.Body, r.Shortcut} {
		for _, l := range layers {
			if j, ok := l.(Jumps); ok && j.MayJump() {
				return true
			}
		}
	}
	return false
}

// ZeroInitResidual sets, for every residual block of m (at any depth), the
// weight γ of the last batchnorm1d or batchnorm2d of its body to 0 in s, so that the block
// starts as its shortcut (the "zero-γ identity init" of Goyal et al. 2017,
// the paper's bn-identity ResNets). It returns the keys set; a block whose
// body has no BatchNorm is left alone (it is not an error: the caller may
// report len == 0).
func ZeroInitResidual(m *Model, s State) []string {
	var keys []string
	_ = m.walkTree(func(key string, l Layer, _ int, _ bool) error {
		r, ok := l.(*Residual)
		if !ok {
			return nil
		}
		for j := len(r.Body) - 1; j >= 0; j-- {
			if _, ok := r.Body[j].(BatchStatistics); ok { // batchnorm1d, batchnorm2d
				k := key + ".body." + strconv.Itoa(j) + ".weight"
				if t := s[k]; t != nil {
					for i := range t.Data {
						t.Data[i] = 0
					}
					keys = append(keys, k)
				}
				break
			}
		}
		return nil
	})
	return keys
}

var (
	_ Block          = (*Residual)(nil)
	_ RowJetter      = (*Residual)(nil)
	_ Jet32Layer     = (*Residual)(nil)
	_ IntervalLayer  = (*Residual)(nil)
	_ TrainForwarder = (*Residual)(nil)
	_ Jumps          = (*Residual)(nil)
	_ FLOPCounter    = (*Residual)(nil)
)
