package certify

import (
	"context"
	"fmt"
	"math"
	"syscall"
	"testing"
	"time"
)

// TestResNetHalves (issue 13, halves; a live diagnostic like
// TestResNetLeafWidths, skipped unless CERTIFY_RESNET_RUN names a run):
// for each shared end x of CERTIFY_RESNET_PAIRS (default 0.5, 0.875,
// 0.125) the two adjacent leaves [x − w, x] and [x, x + w] (w from
// CERTIFY_RESNET_WIDTH, default 2⁻⁸) are evaluated, L at x − w, x and
// x + w enclosed, and it prints each leaf's Rise, RiseLeft, RiseRight, the
// sums a run through x costs with whole leaves (Rise_f + Rise_{f+1}) and
// with halves (RiseRight_f + RiseLeft_{f+1}), and the two leaves' bounds
// on Δ over [x − w, x + w] as Monotonicity.Bound computes them (whole
// leaves, half-leaves), with the CPU seconds of the process.
func TestResNetHalves(t *testing.T) {
	p, ip := liveResNetPath(t, 64)
	xs := floatsEnv("CERTIFY_RESNET_PAIRS", []float64{0.5, 0.875, 0.125})
	w := floatsEnv("CERTIFY_RESNET_WIDTH", []float64{1.0 / 256})[0]
	cpu := func() float64 {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	for _, x := range xs {
		s0 := cpu()
		ls := []*Leaf{{A: x - w, B: x}, {A: x, B: x + w}}
		if err := ip.evalLeaves(context.Background(), ls, 1); err != nil {
			t.Fatal(err)
		}
		s1 := cpu()
		v := ip.points([]float64{x - w, x, x + w}, 1)
		s2 := cpu()
		ls[0].LA, ls[0].LB, ls[1].LA, ls[1].LB = v[0], v[1], v[1], v[2]
		for _, l := range ls {
			fmt.Printf("[%g, %g] N=%d: L′=[%.6g,%.6g] L(c)=[%.9g,%.9g] Rise %.4g RiseLeft %.4g RiseRight %.4g smooth %d\n",
				l.A, l.B, p.N, l.DL.Lo, l.DL.Hi, l.LC.Lo, l.LC.Hi, l.Rise, l.RiseLeft, l.RiseRight, l.Smooth)
		}
		end, in := leafBounds(ls)
		m := &Monotonicity{}
		up, _, _ := m.riseBound(ls, end, in)
		fmt.Printf("x=%g w=%g: Rise_f+Rise_f+1 = %.4g, RiseRight_f+RiseLeft_f+1 = %.4g; bound over the pair: whole leaves %.4g, halves %.4g (used %.4g); L(x−w)=[%.9g,%.9g] L(x)=[%.9g,%.9g] L(x+w)=[%.9g,%.9g]; CPU %.1f s leaves, %.1f s points\n",
			x, w, ls[0].Rise+ls[1].Rise, ls[0].RiseRight+ls[1].RiseLeft, m.upperWhole, m.upperHalves, up,
			v[0].Lo, v[0].Hi, v[1].Lo, v[1].Hi, v[2].Lo, v[2].Hi, s1-s0, s2-s1)
		if math.IsNaN(up) {
			t.Errorf("x=%g: bound NaN", x)
		}
	}
}
