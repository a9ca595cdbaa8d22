package certify

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// randomBlankResidualPath draws a small ResNet as randomConvResidualPath
// does (conv2d stem, a residual block with conv2d, batchnorm2d under the
// interpolate policy, relu, an identity or strided 1×1 conv shortcut, an
// optional residual scale, a pool, flatten and linear) whose θ0 has every
// BatchNorm at its reset (running mean 0, running variance 1, bias 0) and
// every bias 0, and whose inputs have a blank background: each image's
// pixels outside a random rectangle are exactly 0, and one example is
// blank everywhere. So at α = 0 the background reaches the ReLUs as
// exactly 0 (issue 13's trained resnet-8 at its first leaf) and leaves them
// with a velocity of either sign (θT is random).
func randomBlankResidualPath(t *rapid.T) *functionspace.Path {
	m, spec, k, scale, _ := drawResidualModel(t)
	c, h, loss := spec.InputShape[0], spec.InputShape[1], spec.Loss
	seed := rapid.Uint64().Draw(t, "seed")
	s0, _ := nn.Init(m, "pytorch", 1, seed)
	sT, _ := nn.Init(m, "pytorch", 1, seed+1)
	rng := rand.New(rand.NewPCG(seed, 17))
	randomizeNested(rng, scale, s0, sT)
	for key, v := range s0 { // the reset: μ = 0, σ² = 1, β = 0, every bias 0
		switch {
		case strings.HasSuffix(key, "running_mean") || strings.HasSuffix(key, "bias"):
			clear(v.Data)
		case strings.HasSuffix(key, "running_var"):
			for j := range v.Data {
				v.Data[j] = 1
			}
		}
	}
	n := rapid.IntRange(2, 5).Draw(t, "n")
	x, tg := testnets.RandomData(rng, n, spec.InputSize(), k, loss, 2)
	d := x.RawMatrix()
	for i := 0; i < n; i++ {
		r0, r1 := rapid.IntRange(0, h).Draw(t, "r0"), rapid.IntRange(0, h).Draw(t, "r1")
		c0, c1 := rapid.IntRange(0, h).Draw(t, "c0"), rapid.IntRange(0, h).Draw(t, "c1")
		for ch := 0; ch < c; ch++ {
			for r := 0; r < h; r++ {
				for q := 0; q < h; q++ {
					if i == 0 || r < r0 || r >= r1 || q < c0 || q >= c1 {
						d.Data[i*d.Stride+(ch*h+r)*h+q] = 0
					}
				}
			}
		}
	}
	p, err := functionspace.New(m, s0, sT, x, tg, functionspace.Options{Chunk: rapid.IntRange(1, 3).Draw(t, "chunk")})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestStartLeafEncloses: the left-end form on the first leaf [0, w]
// (startForm around the exact values at α = 0, startValues) keeps every
// enclosure of centredPass: on random small ResNets with a blank
// background and a reset BatchNorm at θ0 (randomBlankResidualPath, ReLU
// inputs exactly 0 at α = 0) and a first leaf of random width, on all rows
// or a random subset, each example's enclosures of ℓ_i over the leaf
// contain functionspace's dense float64 ℓ_i at 0, at w and at random α of
// the leaf, and its enclosures of ℓ_i′ and of the slope form ℓ_i′(c) +
// d2l_i·(α − c) + dk_i contain the dense ℓ_i′ at w and at random α in
// (0, w] (at α = 0 itself the dense jets take a one-sided σ′(0) that need
// not be α's right derivative, and the leaf's L′ is that of the loss on
// [0, w]).
func TestStartLeafEncloses(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := randomBlankResidualPath(t)
		e, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		w := rapid.SampledFrom([]float64{1e-9, 1e-6, 1e-3, 1e-2, 0.1}).Draw(t, "width")
		mid := w / 2
		ab := interval.I{Lo: 0, Hi: w}
		c, rows := drawChunkRows(t, e)
		ch := e.chunks[c]
		l, dl, d2l, _, jump, _, dlc, dk := e.centredPass(c, ab, mid, e.boxes(ab), e.boxes(interval.Point(mid)), rows)
		check := func(what string, al float64, enc []interval.I, slope bool) {
			s := p.At(al)
			for q := range enc {
				i := q
				if rows != nil {
					i = int(rows[q])
				}
				if jump[q] {
					continue
				}
				v := s.ExampleLoss[ch[0]+i]
				if slope {
					v = s.ExampleDLoss[ch[0]+i]
				}
				if sl := 1e-9 * (1 + math.Abs(v)); v < enc[q].Lo-sl || v > enc[q].Hi+sl {
					t.Fatalf("example %d: %s(%v) = %v outside [%v, %v] (leaf [0, %v])", ch[0]+i, what, al, v, enc[q].Lo, enc[q].Hi, w)
				}
			}
		}
		check("ℓ", 0, l, false)
		for _, al := range []float64{w, w * rapid.Float64Range(0, 1).Draw(t, "u1"), w * rapid.Float64Range(1e-6, 1e-3).Draw(t, "u2")} {
			if !(al > 0) {
				continue
			}
			check("ℓ", al, l, false)
			check("ℓ′", al, dl, true)
			if dk != nil {
				off := interval.I{Lo: interval.Down(al - mid), Hi: interval.Up(al - mid)}
				sf := make([]interval.I, len(dk))
				for q := range dk {
					i := q
					if rows != nil {
						i = int(rows[q])
					}
					sf[q] = interval.Add(interval.Add(dlc[i], interval.Mul(d2l[q], off)), dk[q])
				}
				check("ℓ′ (slope form)", al, sf, true)
			}
		}
	})
}

// TestBlankResidualCertificateSound: the certificate on random small ResNets
// whose ReLU inputs are exactly 0 at α = 0 (randomBlankResidualPath) gives
// no false verdict (checkBNCertificateSound: a leaf's L′ enclosure holds
// the dense L′, no certified_monotone when a 400-α dense grid rises above
// the tolerance, the upper bound covers the grid's Δ); the branch and bound
// splits down to first leaves [0, w] of width 1/128 and below.
func TestBlankResidualCertificateSound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		checkBNCertificateSound(t, randomBlankResidualPath(t))
	})
}

// TestStartLeafSmooth: a unit exactly 0 at α = 0 whose velocity has one
// sign is not a unit that may cross its kink on the first leaf. The net
// conv2d (1×1 channel, 3×3, no bias) → batchnorm2d → relu → flatten →
// linear on a blank (all-zero) 4×4 image, with the BatchNorm at its reset
// at θ0 and bias β_T = ±1 at θT (everything else equal): the pre-activation
// is exactly β(α) = ±α (the conv of a blank image is 0, μ(α) = 0), so on
// [0, w] the ReLU is the identity (β_T = 1) or 0 (β_T = −1) and the
// example is smooth; L(α) = (y(α) − t)²-type closed forms follow, and the
// leaf's L′ enclosure must hold the exact L′ and be narrow.
func TestStartLeafSmooth(t *testing.T) {
	for _, bT := range []float64{1, -1} {
		spec := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{1, 4, 4}, Loss: "mse", Layers: []nn.LayerSpec{
			{Type: "conv2d", In: 1, Out: 1, Kernel: nn.IntPair{3}, Padding: nn.IntPair{1}, Bias: new(bool)},
			{Type: "batchnorm2d", Features: 1},
			{Type: "relu"},
			{Type: "flatten"},
			{Type: "linear", In: 16, Out: 1},
		}}
		m, err := nn.Build(spec)
		if err != nil {
			t.Fatal(err)
		}
		s0, _ := nn.Init(m, "pytorch", 1, 7)
		sT := nn.State{}
		for key, v := range s0 {
			c := nn.NewTensor(v.Shape...)
			copy(c.Data, v.Data)
			sT[key] = c
		}
		for key, v := range s0 {
			switch {
			case key == "1.weight" || strings.HasSuffix(key, "running_var"):
				v.Data[0], sT[key].Data[0] = 1, 1
			case key == "1.bias" || strings.HasSuffix(key, "running_mean"):
				v.Data[0], sT[key].Data[0] = 0, 0
			}
		}
		sT["1.bias"].Data[0] = bT
		for j := range sT["4.weight"].Data { // a linear head that changes along the line
			sT["4.weight"].Data[j] += 0.5
		}
		x := mat.NewDense(1, 16, nil)
		tg := nn.Targets{Values: mat.NewDense(1, 1, []float64{1})}
		p, err := functionspace.New(m, s0, sT, x, tg, functionspace.Options{})
		if err != nil {
			t.Fatal(err)
		}
		e, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []float64{1e-9, 1e-4, 1.0 / 64} {
			ab := interval.I{Lo: 0, Hi: w}
			_, dl, _, kink, _, _, _, _ := e.centredPass(0, ab, w/2, e.boxes(ab), e.boxes(interval.Point(w/2)), nil)
			if kink[0] {
				t.Fatalf("β_T = %v, leaf [0, %v]: the example is kinked (its ReLU inputs are exactly 0 at α = 0 and of one sign after)", bT, w)
			}
			for _, al := range []float64{w, w / 3} {
				d := p.At(al).ExampleDLoss[0]
				if sl := 1e-9 * (1 + math.Abs(d)); d < dl[0].Lo-sl || d > dl[0].Hi+sl {
					t.Fatalf("β_T = %v: ℓ′(%v) = %v outside [%v, %v]", bT, al, d, dl[0].Lo, dl[0].Hi)
				}
			}
			if wd := dl[0].Hi - dl[0].Lo; !(wd < 1e-6+100*w) {
				t.Fatalf("β_T = %v, leaf [0, %v]: ℓ′ enclosure [%v, %v] too wide", bT, w, dl[0].Lo, dl[0].Hi)
			}
		}
	}
}
