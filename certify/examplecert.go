package certify

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// ExampleCertificateResult is the per-example rigorous certificate
// (ExampleCertificate): on each interval [Edges[k], Edges[k+1]] of a uniform
// partition of [0, 1], an enclosure [DLossLo[i][k], DLossHi[i][k]] of
// ℓ_i′ = d/dα ‖γ_i(α) − y_i‖² (unscaled, THEORY.md §4) for every example i.
type ExampleCertificateResult struct {
	Edges            []float64
	DLossLo, DLossHi [][]float64 // [N][intervals]
	// RangeEnd [N] is the end of the longest run of intervals from α = 0 on
	// which sup ℓ_i′ < 0: ℓ_i is rigorously strictly decreasing on
	// [0, RangeEnd[i]] (1: on all of [0, 1]).
	RangeEnd []float64
}

// ExampleCertificate encloses every example's ℓ_i′ on a uniform partition
// of [0, 1] into intervals pieces, in interval arithmetic (THEORY.md §7):
// per example the first-order enclosure of the interval pass, intersected,
// where the example has no kink on the interval, with the mean-value form
// ℓ_i′(c) + ℓ_i″([a,b])·([a,b] − c) centred at the midpoint c — the
// enclosures the certificate's leaves sum (Certify), kept per example. It
// costs 2·intervals interval passes over all examples, run on workers
// goroutines (0: GOMAXPROCS) over the path's chunks, and returns ctx.Err()
// when cancelled. It needs an mse path (ℓ_i is the per-example squared
// error).
func ExampleCertificate(ctx context.Context, p *functionspace.Path, intervals, workers int) (*ExampleCertificateResult, error) {
	if p.Model.Spec.Loss != "mse" {
		return nil, fmt.Errorf("per-example certificate: loss %q: Theorem B's per-example comparison is for mse", p.Model.Spec.Loss)
	}
	if intervals < 1 {
		return nil, fmt.Errorf("per-example certificate: want at least 1 interval, found %d", intervals)
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	e, err := NewIntervalPath(p)
	if err != nil {
		return nil, err
	}
	res := &ExampleCertificateResult{Edges: make([]float64, intervals+1), RangeEnd: make([]float64, p.N),
		DLossLo: make([][]float64, p.N), DLossHi: make([][]float64, p.N)}
	for k := range res.Edges {
		res.Edges[k] = float64(k) / float64(intervals)
	}
	for i := range res.DLossLo {
		res.DLossLo[i] = make([]float64, intervals)
		res.DLossHi[i] = make([]float64, intervals)
	}
	type task struct{ k, c int }
	tasks := make(chan task)
	var wg sync.WaitGroup
	bi := make([][]*nn.ParamBox, intervals)
	bc := make([][]*nn.ParamBox, intervals)
	for k := 0; k < intervals; k++ {
		a, b := res.Edges[k], res.Edges[k+1]
		bi[k] = e.boxes(interval.I{Lo: a, Hi: b})
		bc[k] = e.boxes(interval.Point(0.5*a + 0.5*b))
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range tasks {
				a, b := res.Edges[t.k], res.Edges[t.k+1]
				mid := 0.5*a + 0.5*b
				ab := interval.I{Lo: a, Hi: b}
				_, dl, d2l, kink, jump := e.pass(t.c, ab, bi[t.k], 2)
				_, dlc, _, _, _ := e.pass(t.c, interval.Point(mid), bc[t.k], 1)
				off := interval.Sub(ab, interval.Point(mid))
				lo := e.chunks[t.c][0]
				for i := range dl {
					enc := dl[i]
					if !kink[i] && d2l[i].Valid() {
						mv := interval.Intersect(enc, interval.Add(dlc[i], interval.Mul(d2l[i], off)))
						if mv.Lo <= mv.Hi {
							enc = mv
						}
					}
					if jump[i] || !(enc.Lo <= enc.Hi) {
						// NaN: no information. A possible jump (a softplus
						// input crossing PyTorch's threshold, issue 18): ℓ_i′
						// does not bound ℓ_i's change, so nothing is proved.
						enc = interval.I{Lo: math.Inf(-1), Hi: math.Inf(1)}
					}
					res.DLossLo[lo+i][t.k], res.DLossHi[lo+i][t.k] = enc.Lo, enc.Hi
				}
			}
		}()
	}
	var cerr error
loop:
	for k := 0; k < intervals; k++ {
		for c := range e.chunks {
			if cerr = ctx.Err(); cerr != nil {
				break loop
			}
			tasks <- task{k, c}
		}
	}
	close(tasks)
	wg.Wait()
	if cerr != nil {
		return nil, cerr
	}
	for i := range res.RangeEnd {
		for k := 0; k < intervals && res.DLossHi[i][k] < 0; k++ {
			res.RangeEnd[i] = res.Edges[k+1]
		}
	}
	return res, nil
}
