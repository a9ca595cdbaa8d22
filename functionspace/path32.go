package functionspace

import (
	"fmt"

	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/nn"
)

// Precisions of the layer passes (Options.Precision, Path.Precision, the
// report's precision).
const (
	Float64 Precision = "float64"
	Float32 Precision = "float32"
)

// Precision returns the floating-point format of the path's layer passes:
// Float64 (the default) or Float32 (Options.Precision).
//
// In Float32 the second-order forward pass of JetChunk (THEORY.md §2) runs on
// nn.Jet32: θα = θ0 + αδ is formed in float64 and rounded once to float32
// (ParamsAt), the dense layers' products are blas32.Gemm, and the first
// layer's cache (W0 x + b0, ΔW x + Δb, computed in float64 and rounded) is
// float32, half the memory. The output jet γ, γ′, γ″ [n, K] is widened to
// float64 and everything after it — the loss, L′, L″, log-sum-exp, turning
// rates, sums over examples (At) — is float64 as in Float64. What stays
// float64 in Float32:
//
//   - JetChunk's visit callback receives float64 copies (nn.Jet32.Float64)
//     of the float32 input jets: kinks on the Gauss length's grid are located
//     from float32 pre-activations;
//   - the per-row passes (kink refinement, one-sided jets at kinks,
//     ExampleGaussLength, Kinks: rows.go) run in float64 from X, θ0 and δ;
//   - under the `recompute` policy, the reference batch's pass and its
//     statistics jet (ParamsAt); the chunks are normalised with them in
//     float32 (nn.BatchNorm.JetStats32);
//   - the rigorous certificate (package certify) never uses these passes: it
//     runs in float64 interval arithmetic whatever the precision.
func (p *Path) Precision() Precision {
	if p.f32 != nil {
		return Float32
	}
	return Float64
}

// path32 is what the float32 passes keep.
type path32 struct {
	layers []nn.Jet32Layer  // Model.Layers, each with its float32 rule
	dp     [][]*nn.Tensor32 // every layer's δ, rounded once
	first  []blas32.General // per chunk [2n, Out]: rows W0 x + b0 then ΔW x + Δb; nil when not cached
}

// init32 prepares the float32 passes: every layer must have a float32 rule
// (nn.Jet32Layer); the first layer's products are cached in float32 when
// 2·4·N·Out bytes fit Options.FirstLayerCacheBytes.
func (p *Path) init32() error {
	f := &path32{}
	for i, l := range p.Model.Layers {
		j, ok := l.(nn.Jet32Layer)
		if !ok {
			return fmt.Errorf("functionspace: Precision %q: layers[%d] (%s) has no float32 rule (nn.Jet32Layer)", Float32, i, l.Type())
		}
		f.layers = append(f.layers, j)
		f.dp = append(f.dp, nn.RoundTensors(p.Model.LayerParams(p.Delta, i)))
	}
	if err := p.Model.Require(nn.RuleJet32); err != nil { // the layers inside residual blocks too
		return fmt.Errorf("functionspace: Precision %q: %w", Float32, err)
	}
	if d0, ok := p.Model.Layers[0].(nn.AffineInAlpha); ok && 2*4*p.N*d0.OutSize() <= p.opt.FirstLayerCacheBytes {
		p0, dp0 := p.Model.LayerParams(p.Theta0, 0), p.Model.LayerParams(p.Delta, 0)
		for _, c := range p.Chunks() {
			j := d0.Jet(p0, dp0, nn.NewConstJet(p.rows(c[0], c[1]))) // float64, rounded once
			f.first = append(f.first, nn.Round32(j.M.Slice(0, 2*j.N, 0, d0.OutSize()).(*mat.Dense)))
		}
	}
	p.f32 = f
	return nil
}

// roundParams rounds every layer's parameters at α (formed in float64) to
// float32.
func roundParams(at [][]*nn.Tensor) [][]*nn.Tensor32 {
	out := make([][]*nn.Tensor32, len(at))
	for i, ts := range at {
		out[i] = nn.RoundTensors(ts)
	}
	return out
}

// firstJet32 returns the float32 jet entering layer start for chunk c at α:
// from the float32 first-layer cache (z = A + αB formed in float64 and
// rounded, ż = B; start 1), or the constant jet of the chunk's inputs
// rounded to float32 (start 0).
//
// The jet's matrices come from ws (nil: freshly allocated).
func (p *Path) firstJet32(c int, alpha float64, ws *nn.Workspace) (*nn.Jet32, int) {
	lo := c * p.opt.Chunk
	hi := min(lo+p.opt.Chunk, p.N)
	if p.f32.first == nil {
		j := nn.NewConstJet32(nn.Round32(p.rows(lo, hi)))
		j.WS = ws
		return j, 0
	}
	f := p.f32.first[c]
	n, w := hi-lo, f.Cols
	j := nn.NewJet32From(n, w, ws)
	copy(j.M.Data[:2*n*w], f.Data[:2*n*w]) // value rows A (overwritten below), velocity rows B
	clear(j.M.Data[2*n*w : 3*n*w])         // the first layer's acceleration is 0
	a, b := f.Data[:n*w], f.Data[n*w:2*n*w]
	val := j.M.Data[:n*w]
	for i := range val {
		val[i] = float32(float64(a[i]) + alpha*float64(b[i]))
	}
	return j, 1
}

// jetChunk32 is JetChunk in Float32 (see Precision): the layer passes on
// nn.Jet32, visit called with float64 copies, the output jet widened to
// float64 [3n, K]; the float32 jets' matrices come from ws (nil: freshly
// allocated).
func (p *Path) jetChunk32(ps *Params, c int, visit func(layer int, in *nn.Jet), ws *nn.Workspace) *nn.Jet {
	j, start := p.firstJet32(c, ps.Alpha, ws)
	_ = p.Model.Walk(start, func(i int, l nn.Layer) error {
		if visit != nil {
			visit(i, j.Float64())
		}
		var next *nn.Jet32
		if s := p.Model.FirstSite(i); ps.stats != nil && ps.stats[s] != nil { // a top-level BatchNorm (Path.build refuses nested ones in float32)
			next = l.(nn.BatchStatistics).JetStats32(ps.at32[i], p.f32.dp[i], ps.stats[s], j)
		} else {
			next = p.f32.layers[i].Jet32(ps.at32[i], p.f32.dp[i], j)
		}
		ws.Release32(j, next) // consumed (visit saw a float64 copy)
		j = next
		return nil
	})
	return unconst(j.Float64())
}
