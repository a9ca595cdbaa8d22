package certify

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

// bnCertPath draws a small MLP with batchnorm1d after every hidden linear
// layer, BatchNorm weight, bias and running statistics moving between θ0
// and θT (running_var positive at both ends), under the given policy.
func bnCertPath(t *rapid.T, policy functionspace.BNPolicy) *functionspace.Path {
	return bnPath(t, policy, false)
}

// bnPath is bnCertPath, with a reference batch of a drawn size (2 to N) for
// the recompute policy when drawReference is set (else the default: all N).
func bnPath(t *rapid.T, policy functionspace.BNPolicy, drawReference bool) *functionspace.Path {
	act := rapid.SampledFrom([]string{"relu", "tanh"}).Draw(t, "act")
	loss := rapid.SampledFrom([]string{"mse", "cross_entropy"}).Draw(t, "loss")
	in := rapid.IntRange(1, 3).Draw(t, "in")
	k := rapid.IntRange(2, 3).Draw(t, "k")
	sizes := []int{in}
	for range rapid.IntRange(1, 2).Draw(t, "depth") {
		sizes = append(sizes, rapid.IntRange(2, 4).Draw(t, "hidden"))
	}
	sizes = append(sizes, k)
	m, err := nn.Build(nn.InsertBatchNorm(nn.MLPSpec(sizes, act, loss)))
	if err != nil {
		t.Fatal(err)
	}
	seed := rapid.Uint64().Draw(t, "seed")
	s0, _ := nn.Init(m, "pytorch", 1, seed)
	sT, _ := nn.Init(m, "pytorch", 1, seed+1)
	rng := rand.New(rand.NewPCG(seed, 5))
	testnets.RandomizeBatchNorm(m, rng, 0.1, s0, sT)
	n := rapid.IntRange(2, 7).Draw(t, "n")
	x, tg := testnets.RandomData(rng, n, in, k, loss, 2)
	opt := functionspace.Options{Chunk: rapid.IntRange(1, 3).Draw(t, "chunk"), BNPolicy: policy}
	if drawReference {
		opt.BNReference = rapid.IntRange(2, n).Draw(t, "reference")
	}
	p, err := functionspace.New(m, s0, sT, x, tg, opt)
	if err != nil {
		t.Fatal(err)
	}
	if drawReference && (p.BNPolicy() != functionspace.BNRecompute || p.BNReference() != opt.BNReference) {
		t.Fatalf("policy %q reference %d", p.BNPolicy(), p.BNReference())
	}
	return p
}

// TestBatchNormCertificateSound: on random BatchNorm networks (interpolate
// policy, nn.BatchNorm.IntervalJet), the certificate is never
// certified_monotone when a dense grid of 400 α rises above the tolerance,
// its upper bound covers the grid's Δ, and the L′ enclosure on random leaves
// contains functionspace's L′ inside.
func TestBatchNormCertificateSound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { checkBNCertificateSound(t, bnCertPath(t, functionspace.BNInterpolate)) })
}

// checkBNCertificateSound asserts, for one BatchNorm path p (either
// policy), the properties of TestBatchNormCertificateSound.
func checkBNCertificateSound(t *rapid.T, p *functionspace.Path) {
	{
		e, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		a := rapid.Float64Range(0, 0.8).Draw(t, "a") // b < 1: a leaf ending at 1 needs ℓ′(1) first
		w := rapid.SampledFrom([]float64{1e-6, 1e-3, 0.1}).Draw(t, "width")
		l := &Leaf{A: a, B: a + w}
		if err := e.evalLeaves(context.Background(), []*Leaf{l}, 2); err != nil {
			t.Fatal(err)
		}
		for q := 0; q < 5; q++ {
			al := a + w*rapid.Float64Range(0, 1).Draw(t, "u")
			d := p.At(al).DLoss
			if s := 1e-10 * (1 + math.Abs(d)); d < l.DL.Lo-s || d > l.DL.Hi+s {
				t.Fatalf("L′(%v) = %v outside [%v, %v]", al, d, l.DL.Lo, l.DL.Hi)
			}
		}
		tol := rapid.SampledFrom([]float64{0, 1e-3}).Draw(t, "tol")
		cert, err := Certify(context.Background(), p, CertifyOptions{Tolerance: tol, MaxIntervals: 128, InitialIntervals: 8, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		denseSound(t, p, cert, tol)
	}
}

// TestBatchNormRecomputeCertificate: under bn_policy recompute Analyze
// attaches the rigorous certificate (reference statistics enclosed by
// nn.IntervalBatchStats), its bounds bracket the grid's Δ up to rounding,
// and it records the policy and the reference batch's size.
func TestBatchNormRecomputeCertificate(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := bnCertPath(t, functionspace.BNRecompute)
		r, err := Analyze(context.Background(), p, Options{Alphas: 11, Certificate: true, LossOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.BNPolicy != "recompute" || r.Options.BNReference != p.N || r.Certificate == nil || r.DeltaBounds == nil {
			t.Fatalf("bn_policy %q reference %d certificate %v bounds %v", r.BNPolicy, r.Options.BNReference, r.Certificate, r.DeltaBounds)
		}
		d := Delta(r.Loss)
		if re := 2 * RoundingError(r.Loss[0], p.N); r.DeltaBounds[1] < d-re {
			t.Fatalf("upper bound %v below the grid's Δ %v", r.DeltaBounds[1], d)
		}
		if r.Verdict != r.Certificate.Verdict {
			t.Fatalf("verdict %q, certificate's %q", r.Verdict, r.Certificate.Verdict)
		}
	})
}
