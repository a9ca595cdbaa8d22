package nn

import (
	"fmt"
	"math/big"
)

// Dyadic is the exact arithmetic of an evaluation at an end of the line
// θ(α) = θ0 + αδ: every input (θ0, δ, x, α ∈ {0, 1}) is a float64, so every
// value of a piecewise-linear network's forward pass and of its velocity
// is a dyadic rational. Each operation is done in big.Float at Prec bits
// and checked exact (big.Exact); Prec only decides how often the check
// gives up, never a value. Used by the certificate's endpoint-centred form
// after an exact fit (THEORY.md §7; issue 12).
type Dyadic struct {
	// Prec is the mantissa precision in bits.
	Prec uint
	// Side selects the end and the one-sided derivative: −1 is the left
	// derivative at α = 1 (parameters θ0 + δ), +1 the right derivative at
	// α = 0 (parameters θ0).
	Side int
	// Inexact is set when an operation was not exact at Prec bits (or
	// overflowed): the values are then not to be used.
	Inexact bool
	// Undecided is set when a piecewise-linear unit's input is exactly 0
	// with zero velocity: the one-sided derivative then depends on higher
	// orders.
	Undecided bool
}

// New returns a zero of precision d.Prec.
func (d *Dyadic) New() *big.Float { return new(big.Float).SetPrec(d.Prec) }

// Of returns v exactly (a float64 fits in any Prec ≥ 53).
func (d *Dyadic) Of(v float64) *big.Float { return d.New().SetFloat64(v) }

// Check records whether z was computed exactly and returns it.
func (d *Dyadic) Check(z *big.Float) *big.Float {
	if z.Acc() != big.Exact || z.IsInf() {
		d.Inexact = true
	}
	return z
}

// ExactMap maps one example's exact value h and velocity ḣ (h′ in α) at an
// end of the line to the layer's output value and velocity.
type ExactMap func(h, hd []*big.Float) (z, zd []*big.Float)

// ExactRule is declared by the layers a piecewise-linear network is made
// of, whose output and velocity at an end of the line can be computed
// exactly in dyadic arithmetic (Dyadic): linear, relu, leaky_relu,
// identity and flatten.
type ExactRule interface {
	Layer
	// ExactWork returns the number of products per example the rule
	// costs, and false where this layer (for example an activation of a
	// smooth kind) has no exact rule.
	ExactWork() (products int, ok bool)
	// ExactAt returns the rule at the end d.Side of the line, with the
	// layer's parameters θ0 and δ (LayerParams order; nil tensors read as
	// zero).
	ExactAt(d *Dyadic, theta, delta []*Tensor) ExactMap
}

// ExactEnd returns the exact rule of every layer of m at the end d.Side
// of the line from θ0 along δ, and the products per example they cost in
// all. It returns an error naming the first layer without an exact rule
// (a layer that does not declare ExactRule, or declares it but not for
// its kind), and checks nothing else: d.Inexact tells whether the
// parameters at the end were exact.
func (m *Model) ExactEnd(d *Dyadic, theta0, delta State) ([]ExactMap, int, error) {
	maps := make([]ExactMap, len(m.Layers))
	work := 0
	for i, l := range m.Layers {
		r, ok := l.(ExactRule)
		var w int
		if ok {
			w, ok = r.ExactWork()
		}
		if !ok {
			return nil, 0, fmt.Errorf("nn: layer %d (%s) has no exact endpoint rule", i, l.Type())
		}
		work += w
		maps[i] = r.ExactAt(d, m.LayerParams(theta0, i), m.LayerParams(delta, i))
	}
	return maps, work, nil
}

// ExactWork implements ExactRule: In·Out products per example.
func (l *Dense) ExactWork() (int, bool) { return l.In * l.Out, true }

// ExactAt implements ExactRule: z = W h + b, ż = Ẇ h + W ḣ + ḃ with W =
// θ0's weight (plus δ's at α = 1), Ẇ = δ's weight ([Out, In] row-major),
// likewise b.
func (l *Dense) ExactAt(d *Dyadic, theta, delta []*Tensor) ExactMap {
	at := func(ts []*Tensor, k, j int) float64 {
		if k >= len(ts) || ts[k] == nil {
			return 0
		}
		return ts[k].Data[j]
	}
	w, dw := make([]*big.Float, l.Out*l.In), make([]*big.Float, l.Out*l.In)
	b, db := make([]*big.Float, l.Out), make([]*big.Float, l.Out)
	for j := range w {
		w[j], dw[j] = d.Of(at(theta, 0, j)), d.Of(at(delta, 0, j))
		if d.Side < 0 {
			d.Check(w[j].Add(w[j], dw[j]))
		}
	}
	for o := range b {
		b[o], db[o] = d.Of(0), d.Of(0)
		if l.HasBias {
			b[o], db[o] = d.Of(at(theta, 1, o)), d.Of(at(delta, 1, o))
			if d.Side < 0 {
				d.Check(b[o].Add(b[o], db[o]))
			}
		}
	}
	return func(h, hd []*big.Float) ([]*big.Float, []*big.Float) {
		z, zd := make([]*big.Float, l.Out), make([]*big.Float, l.Out)
		t := d.New()
		for o := 0; o < l.Out; o++ {
			s, sd := d.New().Set(b[o]), d.New().Set(db[o])
			for j := 0; j < l.In; j++ {
				k := o*l.In + j
				d.Check(s.Add(s, d.Check(t.Mul(w[k], h[j]))))
				d.Check(sd.Add(sd, d.Check(t.Mul(dw[k], h[j]))))
				d.Check(sd.Add(sd, d.Check(t.Mul(w[k], hd[j]))))
			}
			z[o], zd[o] = s, sd
		}
		return z, zd
	}
}

// ExactWork implements ExactRule: no products; only the piecewise-linear
// kinds (relu, leaky_relu) and identity/flatten have an exact rule.
func (a *Activation) ExactWork() (int, bool) {
	return 0, a.identity() || a.Kind == ReLU || a.Kind == LeakyReLU
}

// ExactAt implements ExactRule. A relu-family unit is the identity times
// its slope on the side of the end the derivative is taken from: the sign
// of h, or where h = 0 exactly the sign of d.Side·ḣ (ḣ = 0 too: the unit
// is undecided, d.Undecided). Identity and flatten pass h and ḣ through.
func (a *Activation) ExactAt(d *Dyadic, _, _ []*Tensor) ExactMap {
	if a.identity() {
		return func(h, hd []*big.Float) ([]*big.Float, []*big.Float) { return h, hd }
	}
	on, off := a.Slopes()
	return func(h, hd []*big.Float) ([]*big.Float, []*big.Float) {
		z, zd := make([]*big.Float, len(h)), make([]*big.Float, len(h))
		for j := range h {
			sg := h[j].Sign()
			if sg == 0 {
				if sg = d.Side * hd[j].Sign(); sg == 0 {
					d.Undecided = true
				}
			}
			slope := on
			if sg < 0 {
				slope = off
			}
			z[j] = d.Check(d.New().Mul(h[j], d.Of(slope)))
			zd[j] = d.Check(d.New().Mul(hd[j], d.Of(slope)))
		}
		return z, zd
	}
}
