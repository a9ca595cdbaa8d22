package functionspace

import "github.com/certify-mli/certify/nn"

// CarriedLayer is the one description of the carried shape that both
// carries of a two-hidden-layer MLP read (issue 12): the grid carry
// (Path.carryPlan, point-valued, docs/architecture.md) and the
// certificate's interval carry (certify's newCarryPlan, which adds its
// interval conditions; docs/soundness.md, "cert-carry round"). A
// ReLU-family activation at top-level site Act acts unit by unit with two
// slopes (nn.PiecewiseLinear: no switching rule of its own, no
// parameters), and its output reaches, through identity layers only, one
// layer of dense weights at site Dense (nn.DenseWeights): z = W(α)h + b(α)
// with W(α) = W0 + αΔW [Out, In] and b(α) = b0 + αΔb [Out] (THEORY.md §2).
// On an α-range where unit u keeps slope s_u, h_u = s_u·z₁_u.
//
// The slices are read-only: W0 and DW are θ0's and δ's tensors themselves
// (not copies), W0T and DWT their transposes built once here.
type CarriedLayer struct {
	Act, Dense int     // top-level layer indices: the activation and the dense layer
	On, Off    float64 // the activation's slopes where z > 0 and z < 0
	In, Out    int     // the dense layer's input and output widths
	// W0 and DW are W0 and ΔW [Out, In] row-major; W0T and DWT are W0ᵀ
	// and ΔWᵀ [In, Out], column u of W0 and of ΔW contiguous at
	// [u·Out, (u+1)·Out).
	W0, DW   []float64
	W0T, DWT []float64
	// B0 and DB are b0 and Δb [Out]; both nil when the layer has no bias.
	B0, DB []float64
}

// DescribeCarriedLayer returns the description of the carried layer of m
// between sites act and dense on the line θ0 + αδ (theta0, delta), or nil
// when the layers are not of that shape: act not a two-slope unit-wise
// kinked layer without parameters, a layer between them that is not an
// identity, dense not a layer of dense weights, or its tensors not of
// the declared [Out, In] and [Out] sizes (with a bias in θ0 and not in δ
// or the reverse). The callers' own conditions (the grid carry's cache,
// the certificate's cached affine layer and BatchNorm policy) are theirs.
func DescribeCarriedLayer(m *nn.Model, theta0, delta nn.State, act, dense int) *CarriedLayer {
	if act < 0 || dense <= act || dense >= len(m.Layers) {
		return nil
	}
	a := m.Layers[act]
	pw, ok := a.(nn.PiecewiseLinear)
	if !ok || !pw.Kinked() || len(a.Params()) > 0 {
		return nil
	}
	if _, own := a.(nn.Switching); own {
		return nil
	}
	for t := act + 1; t < dense; t++ {
		if !isIdentity(m.Layers[t]) {
			return nil
		}
	}
	dw, ok := m.Layers[dense].(nn.DenseWeights)
	if !ok || !dw.DenseWeights() {
		return nil
	}
	out, in := dw.OutSize(), dw.InSize()
	p0, dp := m.LayerParams(theta0, dense), m.LayerParams(delta, dense)
	if len(p0) < 1 || len(dp) != len(p0) || p0[0] == nil || dp[0] == nil ||
		len(p0[0].Data) != out*in || len(dp[0].Data) != out*in {
		return nil
	}
	d := &CarriedLayer{Act: act, Dense: dense, In: in, Out: out, W0: p0[0].Data, DW: dp[0].Data,
		W0T: transpose(p0[0].Data, out, in), DWT: transpose(dp[0].Data, out, in)}
	d.On, d.Off = pw.Slopes()
	if len(p0) > 1 && (p0[1] != nil || dp[1] != nil) {
		if p0[1] == nil || dp[1] == nil || len(p0[1].Data) != out || len(dp[1].Data) != out {
			return nil
		}
		d.B0, d.DB = p0[1].Data, dp[1].Data
	}
	return d
}
