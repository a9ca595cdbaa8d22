package align

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/certify-mli/certify/nn"
)

// member is one tensor with a hidden-unit axis of a group: key's axis
// (0: rows, 1: columns of a [out, in] weight) indexes the group's units;
// other is the group permuting the tensor's other axis (−1: none).
type member struct {
	key   string
	axis  int
	other int
}

// group is one permutable set of hidden units: the outputs of the linear
// layer at index Layer, Size of them, and every tensor indexed by them.
type group struct {
	layer   int
	size    int
	members []member
}

// Permutable lists the layer types weight matching accepts: dense layers,
// elementwise activations, identity, flatten and batchnorm1d (whose
// weight, bias, running_mean and running_var permute with their units).
var Permutable = []string{"linear", "relu", "leaky_relu", "tanh", "sigmoid", "gelu", "softplus", "identity", "flatten", "batchnorm1d"}

// groups finds the permutation groups of an MLP spec: one per linear layer
// except the last. Any layer type outside Permutable is refused with an
// error naming it and its index.
func groups(spec *nn.Spec) ([]group, error) {
	last := -1
	for i, l := range spec.Layers {
		if !slices.Contains(Permutable, l.Type) {
			return nil, fmt.Errorf("align: weight matching: layer %d is %s; this build permutes MLPs only (%v)", i, l.Type, Permutable)
		}
		if l.Type == "linear" {
			last = i
		}
	}
	var gs []group
	cur := -1
	for i, l := range spec.Layers {
		switch l.Type {
		case "linear":
			g := -1
			if i != last {
				gs = append(gs, group{layer: i, size: l.Out})
				g = len(gs) - 1
			}
			if cur >= 0 {
				gs[cur].members = append(gs[cur].members, member{nn.ParamKey(i, "weight"), 1, g})
			}
			if g >= 0 {
				gs[g].members = append(gs[g].members, member{nn.ParamKey(i, "weight"), 0, cur})
				if l.Bias == nil || *l.Bias {
					gs[g].members = append(gs[g].members, member{nn.ParamKey(i, "bias"), 0, -1})
				}
			}
			cur = g
		case "batchnorm1d":
			if cur >= 0 {
				for _, name := range []string{"weight", "bias", "running_mean", "running_var"} {
					gs[cur].members = append(gs[cur].members, member{nn.ParamKey(i, name), 0, -1})
				}
			}
		}
	}
	return gs, nil
}

// Result is the outcome of WeightMatching.
type Result struct {
	// State is B with its hidden units permuted (a new state; B is not
	// changed). Tensors without a hidden-unit axis are shared with B.
	State nn.State
	// Permutations maps the index of each linear layer whose outputs are
	// hidden units to π: unit i of State is unit π[i] of B.
	Permutations map[int][]int
	// Sweeps is the number of passes over the layers; the last changed
	// nothing.
	Sweeps int
}

// maxSweeps bounds the coordinate descent (each accepted change raises the
// objective strictly, so it ends; the bound only guards against a bug).
const maxSweeps = 1000

// WeightMatching finds permutations of B's hidden units that maximise
// Σ over tensors ⟨θA, P(θB)⟩ (Ainsworth et al. 2023, Algorithm 1) by
// coordinate descent: the groups are visited in an order drawn from seed,
// each solved as a linear assignment (MaxAssignment) with the others held,
// a new permutation kept only when it raises the objective, until a sweep
// over all groups changes nothing. spec must be an MLP (Permutable); a and b
// must both hold its tensors. Errors name the layer or tensor.
func WeightMatching(spec *nn.Spec, a, b nn.State, seed uint64) (*Result, error) {
	gs, err := groups(spec)
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		for _, m := range g.members {
			ta, tb := a[m.key], b[m.key]
			if ta == nil || tb == nil {
				return nil, fmt.Errorf("align: weight matching: tensor %s missing", m.key)
			}
			if !slices.Equal(ta.Shape, tb.Shape) || ta.Shape[m.axis] != g.size {
				return nil, fmt.Errorf("align: weight matching: tensor %s: shapes %v and %v, want %d units on axis %d", m.key, ta.Shape, tb.Shape, g.size, m.axis)
			}
		}
	}
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
			w := costMatrix(gs[gi], a, b, perms)
			p, best, err := MaxAssignment(w)
			if err != nil {
				return nil, fmt.Errorf("align: layer %d: %w", gs[gi].layer, err)
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
	res := &Result{Permutations: map[int][]int{}, Sweeps: sweeps}
	for i, g := range gs {
		res.Permutations[g.layer] = perms[i]
	}
	res.State, err = Permute(spec, b, res.Permutations)
	return res, err
}

func identity(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	return p
}

// costMatrix returns w[u][v] = Σ over g's tensors of ⟨A's slice at unit u,
// B's slice at unit v with its other axis permuted by perms⟩.
func costMatrix(g group, a, b nn.State, perms [][]int) [][]float64 {
	n := g.size
	w := make([][]float64, n)
	for u := range w {
		w[u] = make([]float64, n)
	}
	for _, m := range g.members {
		ta, tb := a[m.key], b[m.key]
		if len(ta.Shape) == 1 {
			for u := 0; u < n; u++ {
				for v := 0; v < n; v++ {
					w[u][v] += ta.Data[u] * tb.Data[v]
				}
			}
			continue
		}
		rows, cols := ta.Shape[0], ta.Shape[1]
		var op []int
		if m.other >= 0 {
			op = perms[m.other]
		}
		if m.axis == 0 {
			bp := make([]float64, cols) // B's row v, columns permuted
			for v := 0; v < n; v++ {
				for c := 0; c < cols; c++ {
					src := c
					if op != nil {
						src = op[c]
					}
					bp[c] = tb.Data[v*cols+src]
				}
				for u := 0; u < n; u++ {
					ra := ta.Data[u*cols : (u+1)*cols]
					var s float64
					for c, x := range ra {
						s += x * bp[c]
					}
					w[u][v] += s
				}
			}
			continue
		}
		// axis 1: columns are the units; rows permuted by op.
		for r := 0; r < rows; r++ {
			src := r
			if op != nil {
				src = op[r]
			}
			ra := ta.Data[r*cols : (r+1)*cols]
			rb := tb.Data[src*cols : (src+1)*cols]
			for u := 0; u < n; u++ {
				x := ra[u]
				if x == 0 {
					continue
				}
				wu := w[u]
				for v := 0; v < n; v++ {
					wu[v] += x * rb[v]
				}
			}
		}
	}
	return w
}

// Permute returns s with the hidden units of each linear layer L in perms
// permuted by perms[L] (unit i of the result is unit perms[L][i] of s):
// the layer's weight rows and bias, the following batchnorm1d's weight,
// bias, running_mean and running_var, and the next linear layer's weight
// columns. Layers not in perms keep their order. Tensors not touched are
// shared with s. spec must be an MLP (Permutable).
func Permute(spec *nn.Spec, s nn.State, perms map[int][]int) (nn.State, error) {
	gs, err := groups(spec)
	if err != nil {
		return nil, err
	}
	type axes struct{ p [2][]int }
	by := map[string]*axes{}
	for _, g := range gs {
		p, ok := perms[g.layer]
		if !ok {
			continue
		}
		if len(p) != g.size || !isPerm(p) {
			return nil, fmt.Errorf("align: permutation of layer %d: want a permutation of %d units, found %d entries", g.layer, g.size, len(p))
		}
		for _, m := range g.members {
			if by[m.key] == nil {
				by[m.key] = &axes{}
			}
			by[m.key].p[m.axis] = p
		}
	}
	for l := range perms {
		found := false
		for _, g := range gs {
			found = found || g.layer == l
		}
		if !found {
			return nil, fmt.Errorf("align: layer %d has no hidden units to permute (the hidden linear layers are %v)", l, layersOf(gs))
		}
	}
	out := make(nn.State, len(s))
	for k, t := range s {
		ax, ok := by[k]
		if !ok {
			out[k] = t
			continue
		}
		if t == nil {
			return nil, fmt.Errorf("align: tensor %s missing", k)
		}
		nt := &nn.Tensor{Shape: slices.Clone(t.Shape), Data: make([]float64, len(t.Data))}
		rows, cols := t.Shape[0], 1
		if len(t.Shape) == 2 {
			cols = t.Shape[1]
		}
		for i := 0; i < rows; i++ {
			si := i
			if ax.p[0] != nil {
				si = ax.p[0][i]
			}
			for j := 0; j < cols; j++ {
				sj := j
				if ax.p[1] != nil {
					sj = ax.p[1][j]
				}
				nt.Data[i*cols+j] = t.Data[si*cols+sj]
			}
		}
		out[k] = nt
	}
	return out, nil
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

func layersOf(gs []group) []int {
	var l []int
	for _, g := range gs {
		l = append(l, g.layer)
	}
	return l
}

// PermutationKeys returns perms keyed by the layer index as a string (the
// JSON report's keys).
func PermutationKeys(perms map[int][]int) map[string][]int {
	out := map[string][]int{}
	for l, p := range perms {
		out[strconv.Itoa(l)] = p
	}
	return out
}
