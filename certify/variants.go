package certify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/rundir"
)

// Variant chooses the two endpoints of the straight line the analysis
// follows (THEORY.md §8). The zero Variant is the line θ0 → θT of the run
// directory itself. A variant only changes the endpoints (Endpoints): the
// path between them, every measurement and the certificate are unchanged,
// and the report's weight distance is that between the variant's endpoints.
//
// The tensors that move from the start to θT are those selected by Layer
// and Interpolate together; every other tensor is held fixed along the
// whole line, at θT (Hold "final") or at the start (Hold "init").
type Variant struct {
	// Interpolate selects by kind: "all" (or ""), every tensor including
	// BatchNorm's running statistics; "weights", the tensors named
	// "<i>.weight" (dense weights and BatchNorm's scale); "biases", those
	// named "<i>.bias" (dense biases and BatchNorm's shift). Buffers move
	// only under "all". This is the weights-only / biases-only interpolation
	// with which Wang, Wang, Zhou & Ge (ICLR 2023) separate the plateau
	// caused by the biases (see PlateauLength).
	Interpolate string `json:"interpolate,omitempty"`
	// Layer, when not nil, restricts the moving tensors to those of one
	// state_dict layer index (the layer-wise interpolation of Vlaar &
	// Frankle, ICML 2022, "What can linear interpolation of neural network
	// loss landscapes tell us?"). Combined with Interpolate "biases" and the
	// last linear layer it moves the last-layer biases alone, the parameters
	// Wang et al. 2023 hold responsible for the plateau.
	Layer *int `json:"layer,omitempty"`
	// Hold is where the tensors that do not move stay: "final" (or "") at
	// θT, "init" at the start. THEORY.md §8 names θT first and θ0 as the
	// alternative, after Vlaar & Frankle 2022, who hold the rest of the
	// network at its trained values; the default follows them for the
	// weights-only and biases-only lines too. (Which values Wang et al. 2023
	// hold fixed when they interpolate one kind of parameter could not be
	// checked from their text here; both choices are available.) It must be
	// empty when every tensor moves.
	Hold string `json:"hold,omitempty"`
	// From is the start of the line: "" or "init" for the run's
	// init.safetensors, else a checkpoint (safetensors or .npz) such as
	// DIR/checkpoints/step-K.safetensors (an intermediate θ_t) or another
	// run's init.safetensors (another initialisation), THEORY.md §8. A
	// relative path that does not exist as given is looked up in the run
	// directory.
	From string `json:"from,omitempty"`
}

// IsDefault reports whether v is the run's own line θ0 → θT.
func (v Variant) IsDefault() bool {
	return (v.Interpolate == "" || v.Interpolate == "all") && v.Layer == nil && v.Hold == "" && (v.From == "" || v.From == "init")
}

// String describes v in the terms of the CLI flags ("θ0 → θT" when default).
func (v Variant) String() string {
	if v.IsDefault() {
		return "θ0 → θT"
	}
	var parts []string
	if v.From != "" && v.From != "init" {
		parts = append(parts, "from "+v.From)
	}
	if v.Interpolate != "" && v.Interpolate != "all" {
		parts = append(parts, v.Interpolate+" only")
	}
	if v.Layer != nil {
		parts = append(parts, "layer "+strconv.Itoa(*v.Layer))
	}
	if v.Hold != "" {
		parts = append(parts, "rest held at "+v.Hold)
	}
	return strings.Join(parts, ", ")
}

// moves reports whether the tensor key (e.g. "2.bias") moves under v.
func (v Variant) moves(key string) bool {
	layer, name, _ := strings.Cut(key, ".")
	if v.Layer != nil && layer != strconv.Itoa(*v.Layer) {
		return false
	}
	switch v.Interpolate {
	case "weights":
		return name == "weight"
	case "biases":
		return name == "bias"
	}
	return true
}

// check validates v's fields against model m.
func (v Variant) check(m *nn.Model) error {
	switch v.Interpolate {
	case "", "all", "weights", "biases":
	default:
		return fmt.Errorf("--interpolate: want all, weights or biases, found %q", v.Interpolate)
	}
	switch v.Hold {
	case "", "final", "init":
	default:
		return fmt.Errorf("--hold: want final or init, found %q", v.Hold)
	}
	if v.Hold != "" && v.Layer == nil && (v.Interpolate == "" || v.Interpolate == "all") {
		return fmt.Errorf("--hold %s: every tensor moves; --hold needs --layer or --interpolate weights|biases", v.Hold)
	}
	if v.Layer != nil {
		var with []string
		found := false
		for i, l := range m.Layers {
			if len(l.Params()) > 0 {
				with = append(with, strconv.Itoa(i))
				found = found || i == *v.Layer
			}
		}
		if !found {
			return fmt.Errorf("--layer %d: not a layer with parameters (the model's are %s)", *v.Layer, strings.Join(with, ", "))
		}
	}
	n := 0
	for _, e := range m.Expected() {
		if v.moves(e.Key) {
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("variant %s moves no tensor of the model", v)
	}
	return nil
}

// Endpoints returns the start and end states of the line the variant v of
// run follows (see Variant): end is θT except that held tensors are the
// start's under Hold "init"; start is the From state (θ0 by default) except
// that held tensors are θT's under Hold "final". Tensors are shared with the
// run's states, not copied; callers must not modify them. The path is then
// functionspace.New(run.Model, start, end, …) as for the plain line.
// Errors name the flag at fault, or the checkpoint file and tensor.
func Endpoints(run *rundir.Run, v Variant) (start, end nn.State, err error) {
	from := run.Theta0
	if v.From != "" && v.From != "init" {
		path := v.From
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && !filepath.IsAbs(path) {
			if _, err := os.Stat(filepath.Join(run.Dir, path)); err == nil {
				path = filepath.Join(run.Dir, path)
			}
		}
		if from, err = nn.ReadState(path); err != nil {
			return nil, nil, fmt.Errorf("--from: %w", err)
		}
		if err := run.Model.Check(from, path); err != nil {
			return nil, nil, fmt.Errorf("--from: %w", err)
		}
	}
	return VariantEndpoints(run.Model, from, run.ThetaT, v)
}

// VariantEndpoints is Endpoints for given states θ0 = theta0 (already the
// From state) and θT = thetaT of model m; v.From is ignored.
func VariantEndpoints(m *nn.Model, theta0, thetaT nn.State, v Variant) (start, end nn.State, err error) {
	if err := v.check(m); err != nil {
		return nil, nil, err
	}
	start, end = nn.State{}, nn.State{}
	for k := range theta0 {
		switch {
		case v.moves(k):
			start[k], end[k] = theta0[k], thetaT[k]
		case v.Hold == "init":
			start[k], end[k] = theta0[k], theta0[k]
		default:
			start[k], end[k] = thetaT[k], thetaT[k]
		}
	}
	return start, end, nil
}

// LayerDLoss is the contribution of one state_dict layer index to L′ on the
// report grid (THEORY.md §8).
type LayerDLoss struct {
	Layer int `json:"layer"`
	// DLoss [m] is L′ at the report grid's α computed with δ restricted to
	// this layer's tensors (the others' δ set to 0, θα unchanged).
	DLoss []float64 `json:"dloss"`
}

// PerLayerDLoss splits L′(α) by layer at every α of alphas (THEORY.md §8):
// γ_i′ = J_θ f(x_i; θα) δ = Σ_l J_l δ_l, and L′ = (1/scale) Σ_i ⟨∂ℓ_i/∂γ_i, γ_i′⟩
// is linear in γ′, so the contribution of layer l is L′ computed with δ
// restricted to layer l at the same θα, and the contributions sum to L′.
// Each is one forward pass of p's second-order rule at θα with δ_l in place
// of δ (functionspace.New(θα, θα + δ_l) at α = 0; the difference
// (θα + δ_l) − θα rounds δ_l by at most an ulp of θα, which is the
// "rounding" of the sum). Layers are every index with a tensor in p.Delta,
// ascending. It costs (layers) × len(alphas) passes (none on a one-point
// line, Path.OnePoint: every L′_l is 0 exactly) and returns ctx.Err()
// when cancelled; progress, if not nil, is told the passes done.
//
// The passes use p's BatchNorm policy (and, for recompute, the same
// reference batch: the first examples of p.X); under recompute the
// statistics' α-derivatives are linear in δ too, so the split stays exact.
// Analyze reports the largest |Σ_l L′_l − L′| beside the contributions, so
// any mismatch with p's own evaluation is visible.
func PerLayerDLoss(ctx context.Context, p *functionspace.Path, alphas []float64, progress func(done, total int)) ([]LayerDLoss, error) {
	byLayer := map[int][]string{}
	for k := range p.Delta {
		l, _, _ := strings.Cut(k, ".")
		i, err := strconv.Atoi(l)
		if err != nil {
			return nil, fmt.Errorf("per-layer L′: tensor %q has no layer index", k)
		}
		byLayer[i] = append(byLayer[i], k)
	}
	var layers []int
	for i := range byLayer {
		layers = append(layers, i)
	}
	sort.Ints(layers)
	out := make([]LayerDLoss, len(layers))
	for li, l := range layers {
		out[li] = LayerDLoss{Layer: l, DLoss: make([]float64, len(alphas))}
	}
	if p.OnePoint() {
		// θT = θ0: every layer's δ_l is 0, so each L′_l is 0 exactly
		// (what its pass would give: a jet of zero velocity), no pass
		if progress != nil {
			progress(len(alphas)*len(layers), len(alphas)*len(layers))
		}
		return out, nil
	}
	// θα changes with every α: nothing to cache. The same precision as p, so
	// that the contributions sum to p's L′.
	opt := functionspace.Options{FirstLayerCacheBytes: -1, Precision: p.Precision()}
	if pol := p.BNPolicy(); pol != functionspace.BNNone {
		opt.BNPolicy, opt.BNReference = pol, p.BNReference()
	}
	total, done := len(alphas)*len(layers), 0
	for j, a := range alphas {
		at := make(nn.State, len(p.Theta0))
		for k, t0 := range p.Theta0 {
			d := p.Delta[k]
			t := &nn.Tensor{Shape: t0.Shape, Data: make([]float64, len(t0.Data))}
			for q := range t.Data {
				t.Data[q] = t0.Data[q] + a*d.Data[q] // θα exactly as the path forms it
			}
			at[k] = t
		}
		for li, l := range layers {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			end := make(nn.State, len(at))
			for k, t := range at {
				end[k] = t
			}
			for _, k := range byLayer[l] {
				t, d := at[k], p.Delta[k]
				e := &nn.Tensor{Shape: t.Shape, Data: make([]float64, len(t.Data))}
				for q := range e.Data {
					e.Data[q] = t.Data[q] + d.Data[q]
				}
				end[k] = e
			}
			pl, err := functionspace.New(p.Model, at, end, p.X, p.Targets, opt)
			if err != nil {
				return nil, fmt.Errorf("per-layer L′, layer %d: %w", l, err)
			}
			out[li].DLoss[j] = pl.At(0).DLoss
			done++
			if progress != nil {
				progress(done, total)
			}
		}
	}
	return out, nil
}

// DefaultPlateauTolerance is the accuracy rise (a fraction: 0.01 is one
// percentage point) below which PlateauLength still counts the accuracy as
// flat.
const DefaultPlateauTolerance = 0.01

// PlateauLength is the length of the accuracy plateau at the start of the
// line (Wang, Wang, Zhou & Ge, ICLR 2023: deep networks' error stays at its
// initial level for a long stretch of α before falling, an effect of the
// last-layer biases): the largest grid α_j such that accuracy(α_i) ≤
// accuracy(α_0) + tol for every i ≤ j, minus α_0. It is 0 when the
// accuracy rises by more than tol at the first step, and α_m − α_0 when it
// never does. alphas [m] ascending, accuracy [m]; 0 for an empty grid.
func PlateauLength(alphas, accuracy []float64, tol float64) float64 {
	if len(alphas) == 0 {
		return 0
	}
	end := alphas[0]
	for j := 1; j < len(alphas); j++ {
		if accuracy[j] > accuracy[0]+tol {
			break
		}
		end = alphas[j]
	}
	return end - alphas[0]
}

// BarrierHeight is max_j [L(α_j) − ((1 − α_j) L(0) + α_j L(1))] over the
// grid (THEORY.md §8): how far the loss along the line rises above the
// chord between its endpoints, the barrier of linear mode connectivity
// (as defined by Entezari, Sedghi, Saukh & Neyshabur, ICLR 2022). L(0) and
// L(1) are loss[0] and loss[m−1], taken at alphas[0] and alphas[m−1]
// (which are 0 and 1 on the report grid; otherwise the chord joins the
// first and last grid points). A grid containing its endpoints makes it
// ≥ 0; 0 means the loss never rises above the chord on the grid (e.g. a
// convex L). NaN for fewer than two points.
func BarrierHeight(alphas, loss []float64) float64 {
	m := len(alphas)
	if m < 2 {
		return math.NaN()
	}
	a0, a1, l0, l1 := alphas[0], alphas[m-1], loss[0], loss[m-1]
	best := math.Inf(-1)
	for j, a := range alphas {
		s := (a - a0) / (a1 - a0)
		chord := l0 // a flat chord exactly (θT = θ0: (1−s)·l0 + s·l0 rounds off l0)
		if l1 != l0 {
			chord = (1-s)*l0 + s*l1
		}
		if h := loss[j] - chord; h > best {
			best = h
		}
	}
	return best
}

// perLayer fills the report's per-layer contributions to L′ and the largest
// deviation of their sum from the grid's L′.
func perLayer(ctx context.Context, p *functionspace.Path, r *Report, progress func(string, int, int)) error {
	pl, err := PerLayerDLoss(ctx, p, r.Alphas, func(d, t int) { progress("per-layer L′", d, t) })
	if err != nil {
		return err
	}
	r.PerLayerDLoss = pl
	for j, dl := range r.DLoss {
		var sum float64
		for _, l := range pl {
			sum += l.DLoss[j]
		}
		r.PerLayerDLossSumError = max(r.PerLayerDLossSumError, math.Abs(sum-dl))
	}
	return nil
}
