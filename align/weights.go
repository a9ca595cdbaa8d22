package align

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/certify-mli/certify/nn"
)

// use is one axis of one tensor indexed by a unit group: axis of key has
// size·block entries, entry u·block + r belonging to unit u (block > 1 for
// the input of a linear layer after flatten of a [C, H, W] image: channel
// c owns the H·W features c·H·W … (c+1)·H·W − 1, PyTorch's flatten order).
type use struct {
	key   string
	axis  int
	block int
	id    int // union-find node (0: the fixed node)
}

// member is one tensor axis of a group (a use after the union).
type member struct {
	key   string
	axis  int
	block int
}

// group is one permutable set of units: the output channels (or
// features) of the conv2d/linear layers whose outputs are added together
// along a residual stream, size of them, named by the state_dict prefix of
// the first such layer in model order ("3", "1.body.0"), and every tensor
// axis they index.
type group struct {
	name    string
	size    int
	members []member
}

// permSpec is a model's permutation structure: its groups and, for every
// permuted tensor, which group (index into groups, −1: none) and block
// each axis has.
type permSpec struct {
	groups []group
	axes   map[string][]axisRef
}

type axisRef struct{ group, block int }

// builder walks a spec, giving every linear/conv2d output a union-find node
// and joining the nodes a residual addition forces to be one permutation.
// Node 0 is fixed: the model's input and output, which are never permuted.
type builder struct {
	parent []int
	size   []int
	name   []string
	uses   []use
	have   map[string]bool
}

func (b *builder) fresh(name string, n int) int {
	b.parent = append(b.parent, len(b.parent))
	b.size = append(b.size, n)
	b.name = append(b.name, name)
	return len(b.parent) - 1
}

func (b *builder) find(i int) int {
	for b.parent[i] != i {
		b.parent[i] = b.parent[b.parent[i]]
		i = b.parent[i]
	}
	return i
}

// union joins i and j; the smaller index (the earlier layer, or the fixed
// node 0) becomes the root.
func (b *builder) union(i, j int, where string) error {
	ri, rj := b.find(i), b.find(j)
	if ri == rj {
		return nil
	}
	if ri > rj {
		ri, rj = rj, ri
	}
	if ri != 0 && b.size[ri] != b.size[rj] {
		return fmt.Errorf("align: weight matching: %s adds %d units (from %s) to %d (from %s)", where, b.size[rj], b.name[rj], b.size[ri], b.name[ri])
	}
	b.parent[rj] = ri
	return nil
}

func (b *builder) add(key string, axis, block, id int) {
	if b.have[key] {
		b.uses = append(b.uses, use{key, axis, block, id})
	}
}

// walk visits layers (state_dict prefix pre, one example's input shape
// in) with the input's units in node cur, block features each, and returns
// the same for the output. Each layer's action on the units is the one it
// declares (nn.Permutable); a layer declaring none is refused.
func (b *builder) walk(layers []nn.Layer, pre string, in []int, cur, block int) (int, int, []int, error) {
	shape := in
	for i, l := range layers {
		p := pre + strconv.Itoa(i)
		pm := nn.PermutationOf(l, shape)
		switch pm.Role {
		case nn.PermMix:
			if !pm.Blocks && block != 1 {
				return 0, 0, nil, fmt.Errorf("align: weight matching: layer %s: %s after flatten", p, l.Type())
			}
			for _, ax := range pm.In {
				b.add(p+"."+ax.Param, ax.Axis, block, cur)
			}
			g := b.fresh(p, pm.Units)
			for _, ax := range pm.Out {
				b.add(p+"."+ax.Param, ax.Axis, 1, g)
			}
			cur, block = g, 1
		case nn.PermCarry:
			for _, ax := range pm.In {
				b.add(p+"."+ax.Param, ax.Axis, block, cur)
			}
			if pm.Spread > 1 {
				block *= pm.Spread
			}
		case nn.PermSum:
			blk, ok := l.(nn.Block)
			if !ok {
				return 0, 0, nil, fmt.Errorf("align: weight matching: layer %s (%s) declares a sum of branches but has none (nn.Block)", p, l.Type())
			}
			var outs, blocks []int
			var names []string
			for _, br := range blk.Branches() {
				o, ob, _, err := b.walk(br.Layers, p+"."+br.Name+".", shape, cur, block)
				if err != nil {
					return 0, 0, nil, err
				}
				outs, blocks, names = append(outs, o), append(blocks, ob), append(names, br.Name)
			}
			if len(outs) == 0 {
				return 0, 0, nil, fmt.Errorf("align: weight matching: layer %s (%s) has no branches", p, l.Type())
			}
			last := len(outs) - 1
			for k := 0; k < last; k++ {
				if blocks[k] != blocks[last] {
					return 0, 0, nil, fmt.Errorf("align: weight matching: %s %s: %s and %s group their features differently (%d and %d per unit)", l.Type(), p, names[k], names[last], blocks[k], blocks[last])
				}
				if err := b.union(outs[last], outs[k], l.Type()+" "+p); err != nil {
					return 0, 0, nil, err
				}
			}
			cur, block = b.find(outs[last]), blocks[last]
		default:
			return 0, 0, nil, fmt.Errorf("align: weight matching: layer %s is %s: weight matching cannot permute units through it (the layer declares no nn.Permutable)", p, l.Type())
		}
		shape = nn.ShapeAfter(l, shape)
	}
	return cur, block, shape, nil
}

// groups finds the permutation structure of spec: one group per set of
// new units (nn.PermMix: linear/conv2d outputs) that a residual stream
// joins (nn.PermSum), except those joined to the model's input or output.
// A layer that declares no permutation (nn.Permutable; layernorm) is
// refused with an error naming it and its state_dict prefix.
func groups(spec *nn.Spec) (*permSpec, error) {
	m, err := nn.Build(spec)
	if err != nil {
		return nil, fmt.Errorf("align: %w", err)
	}
	b := &builder{have: map[string]bool{}}
	for _, e := range m.Expected() {
		b.have[e.Key] = true
	}
	b.fresh("input/output", -1)
	out, _, _, err := b.walk(m.Layers, "", spec.InputShape, 0, 1)
	if err != nil {
		return nil, err
	}
	if err := b.union(0, out, "the output"); err != nil {
		return nil, err
	}
	ps := &permSpec{axes: map[string][]axisRef{}}
	index := map[int]int{}
	for id := range b.parent {
		if r := b.find(id); r == id && id != 0 {
			index[id] = len(ps.groups)
			ps.groups = append(ps.groups, group{name: b.name[id], size: b.size[id]})
		}
	}
	for _, u := range b.uses {
		gi, ok := index[b.find(u.id)]
		if !ok {
			continue // fixed
		}
		ps.groups[gi].members = append(ps.groups[gi].members, member{u.key, u.axis, u.block})
		ax := ps.axes[u.key]
		if ax == nil {
			for _, e := range m.Expected() {
				if e.Key == u.key {
					ax = make([]axisRef, len(e.Shape))
				}
			}
			for i := range ax {
				ax[i] = axisRef{-1, 1}
			}
		}
		ax[u.axis] = axisRef{gi, u.block}
		ps.axes[u.key] = ax
	}
	return ps, nil
}

// Result is the outcome of WeightMatching.
type Result struct {
	// State is B with its units permuted (a new state; B is not changed).
	// Tensors without a permuted axis are shared with B.
	State nn.State
	// Permutations maps each group's name — the state_dict prefix of the
	// first linear or conv2d layer whose outputs it permutes, e.g. "0" or
	// "2.body.3" — to π: unit i of State is unit π[i] of B.
	Permutations map[string][]int
	// Sweeps is the number of passes over the groups; the last changed
	// nothing.
	Sweeps int
}

// maxSweeps bounds the coordinate descent (each accepted change raises the
// objective strictly, so it ends; the bound only guards against a bug).
const maxSweeps = 1000

// WeightMatching finds permutations of B's units that maximise Σ over
// tensors ⟨θA, P(θB)⟩ (Ainsworth et al. 2023, Algorithm 1) by coordinate
// descent: the groups are visited in an order drawn from seed, each solved
// as a linear assignment (MaxAssignment) with the others held, a new
// permutation kept only when it raises the objective, until a sweep over
// all groups changes nothing. The groups are the hidden units of linear
// layers and the channels of conv2d layers; the units a residual addition
// joins share one group (an identity shortcut ties the body's output to
// the block's input; a linear/conv2d shortcut has its own input and output
// groups). spec's layers, at any depth, must declare how a permutation
// acts on them (nn.Permutable: every layer type but layernorm does, the
// layers' own files say how); a and b must both hold its
// tensors. Errors name the layer or tensor.
func WeightMatching(spec *nn.Spec, a, b nn.State, seed uint64) (*Result, error) {
	ps, err := groups(spec)
	if err != nil {
		return nil, err
	}
	for k, ax := range ps.axes {
		ta, tb := a[k], b[k]
		if ta == nil || tb == nil {
			return nil, fmt.Errorf("align: weight matching: tensor %s missing", k)
		}
		if !slices.Equal(ta.Shape, tb.Shape) || len(ta.Shape) != len(ax) {
			return nil, fmt.Errorf("align: weight matching: tensor %s: shapes %v and %v", k, ta.Shape, tb.Shape)
		}
		for i, r := range ax {
			if r.group >= 0 && ta.Shape[i] != ps.groups[r.group].size*r.block {
				return nil, fmt.Errorf("align: weight matching: tensor %s %v: want %d·%d entries on axis %d (group %s)", k, ta.Shape, ps.groups[r.group].size, r.block, i, ps.groups[r.group].name)
			}
		}
	}
	gs := ps.groups
	perms := make([][]int, len(gs))
	for i, g := range gs {
		perms[i] = identity(g.size)
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	sweeps := 0
	for changed := true; changed; {
		if sweeps == maxSweeps {
			return nil, fmt.Errorf("align: weight matching did not settle in %d sweeps", maxSweeps)
		}
		sweeps++
		changed = false
		for _, gi := range rng.Perm(len(gs)) {
			w := costMatrix(ps, gi, a, b, perms)
			p, best, err := MaxAssignment(w)
			if err != nil {
				return nil, fmt.Errorf("align: group %s: %w", gs[gi].name, err)
			}
			var now float64
			for i, j := range perms[gi] {
				now += w[i][j]
			}
			if best > now && !slices.Equal(p, perms[gi]) {
				perms[gi], changed = p, true
			}
		}
	}
	res := &Result{Permutations: map[string][]int{}, Sweeps: sweeps}
	for i, g := range gs {
		res.Permutations[g.name] = perms[i]
	}
	res.State = permuteState(ps, b, perms)
	return res, nil
}

func identity(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	return p
}

// permuteAxis returns t's data with axis permuted by p in blocks of block
// entries: entry (i·block + r) of the result is entry (p[i]·block + r) of t.
func permuteAxis(shape []int, data []float64, axis int, p []int, block int) []float64 {
	pre, post := 1, 1
	for _, d := range shape[:axis] {
		pre *= d
	}
	for _, d := range shape[axis+1:] {
		post *= d
	}
	n, inner := len(p), block*post
	out := make([]float64, len(data))
	for q := 0; q < pre; q++ {
		base := q * n * inner
		for i, src := range p {
			copy(out[base+i*inner:base+(i+1)*inner], data[base+src*inner:base+(src+1)*inner])
		}
	}
	return out
}

// permuteTensor permutes every axis of tensor key that ps assigns to a
// group.
func permuteTensor(ps *permSpec, key string, t *nn.Tensor, perms [][]int) []float64 {
	data := t.Data
	for axis, r := range ps.axes[key] {
		if r.group < 0 {
			continue
		}
		data = permuteAxis(t.Shape, data, axis, perms[r.group], r.block)
	}
	return data
}

// permuteState returns s with every group's units permuted (perms indexed
// like ps.groups).
func permuteState(ps *permSpec, s nn.State, perms [][]int) nn.State {
	out := make(nn.State, len(s))
	for k, t := range s {
		if _, ok := ps.axes[k]; !ok || t == nil {
			out[k] = t
			continue
		}
		out[k] = &nn.Tensor{Shape: slices.Clone(t.Shape), Data: permuteTensor(ps, k, t, perms)}
	}
	return out
}

// costMatrix returns w[u][v] = Σ over group gi's tensor axes of ⟨A's slice
// at unit u, B's slice at unit v with its other axes permuted by perms⟩.
func costMatrix(ps *permSpec, gi int, a, b nn.State, perms [][]int) [][]float64 {
	n := ps.groups[gi].size
	w := make([][]float64, n)
	for u := range w {
		w[u] = make([]float64, n)
	}
	for _, m := range ps.groups[gi].members {
		ta, tb := a[m.key], b[m.key]
		// B with every other axis permuted (an axis of the same group
		// elsewhere in the tensor is permuted too, by the current π).
		bd := tb.Data
		for axis, r := range ps.axes[m.key] {
			if r.group >= 0 && axis != m.axis {
				bd = permuteAxis(tb.Shape, bd, axis, perms[r.group], r.block)
			}
		}
		pre, post := 1, 1
		for _, d := range ta.Shape[:m.axis] {
			pre *= d
		}
		for _, d := range ta.Shape[m.axis+1:] {
			post *= d
		}
		inner := m.block * post
		for q := 0; q < pre; q++ {
			base := q * n * inner
			for u := 0; u < n; u++ {
				ra := ta.Data[base+u*inner : base+(u+1)*inner]
				wu := w[u]
				for v := 0; v < n; v++ {
					rb := bd[base+v*inner : base+(v+1)*inner]
					var s float64
					for c, x := range ra {
						s += x * rb[c]
					}
					wu[v] += s
				}
			}
		}
	}
	return w
}

// Groups returns the names of spec's permutable unit groups (the keys of
// Result.Permutations and of Permute's perms) with their sizes, in model
// order: the state_dict prefix of the first linear or conv2d layer of each.
// Errors as WeightMatching's.
func Groups(spec *nn.Spec) (names []string, sizes []int, err error) {
	ps, err := groups(spec)
	if err != nil {
		return nil, nil, err
	}
	for _, g := range ps.groups {
		names, sizes = append(names, g.name), append(sizes, g.size)
	}
	return names, sizes, nil
}

// Permute returns s with the units of each group named in perms permuted
// by perms[name] (unit i of the result is unit perms[name][i] of s): the
// output rows (channels) of every linear/conv2d layer in the group and
// their biases, the batchnorm1d/2d tensors that follow them (weight, bias,
// running_mean, running_var), and the input columns (channels, or blocks of
// H·W features after flatten) of the layers that read them. Groups not in
// perms keep their order; tensors not touched are shared with s. Names are
// those of Groups; an unknown name or a wrong-sized permutation is an error.
func Permute(spec *nn.Spec, s nn.State, perms map[string][]int) (nn.State, error) {
	ps, err := groups(spec)
	if err != nil {
		return nil, err
	}
	full := make([][]int, len(ps.groups))
	var names []string
	for i, g := range ps.groups {
		names = append(names, g.name)
		full[i] = identity(g.size)
		if p, ok := perms[g.name]; ok {
			if len(p) != g.size || !isPerm(p) {
				return nil, fmt.Errorf("align: permutation of group %s: want a permutation of %d units, found %d entries", g.name, g.size, len(p))
			}
			full[i] = p
		}
	}
	for name := range perms {
		if !slices.Contains(names, name) {
			return nil, fmt.Errorf("align: %s names no group of units to permute (the groups are %v)", name, names)
		}
	}
	for k, ax := range ps.axes {
		t := s[k]
		if t == nil {
			return nil, fmt.Errorf("align: tensor %s missing", k)
		}
		if len(t.Shape) != len(ax) {
			return nil, fmt.Errorf("align: tensor %s: shape %v, want %d axes", k, t.Shape, len(ax))
		}
		for i, r := range ax {
			if r.group >= 0 && t.Shape[i] != ps.groups[r.group].size*r.block {
				return nil, fmt.Errorf("align: tensor %s %v: want %d·%d entries on axis %d", k, t.Shape, ps.groups[r.group].size, r.block, i)
			}
		}
	}
	return permuteState(ps, s, full), nil
}

func isPerm(p []int) bool {
	seen := make([]bool, len(p))
	for _, v := range p {
		if v < 0 || v >= len(p) || seen[v] {
			return false
		}
		seen[v] = true
	}
	return true
}
