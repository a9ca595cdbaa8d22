package certify

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// TestResNetLeafWidths prints the certificate's leaf enclosures of L′
// (evalLeaves: the centred per-layer forms and the mean-value form) over
// leaves of decreasing width around α = 0.5 and 0.05 (CERTIFY_RESNET_WIDTHS,
// CERTIFY_RESNET_CENTRES: comma-separated lists; or the leaves listed in
// CERTIFY_RESNET_LEAVES as a1,b1,a2,b2,…) for the run named by
// CERTIFY_RESNET_RUN (CERTIFY_RESNET_EXAMPLES examples, default 32); an
// issue 13 diagnostic, skipped when unset.
func TestResNetLeafWidths(t *testing.T) {
	p, ip := liveResNetPath(t, 32)
	centres := floatsEnv("CERTIFY_RESNET_CENTRES", []float64{0.5, 0.05})
	widths := floatsEnv("CERTIFY_RESNET_WIDTHS", []float64{1e-6, 1e-4, 1.0 / 2048, 1.0 / 256, 1.0 / 32})
	var leaves [][2]float64
	for _, c := range centres {
		for _, w := range widths {
			leaves = append(leaves, [2]float64{c - w/2, c + w/2})
		}
	}
	if ab := floatsEnv("CERTIFY_RESNET_LEAVES", nil); len(ab) > 0 { // a1,b1,a2,b2,…: these leaves instead
		leaves = leaves[:0]
		for k := 0; k+1 < len(ab); k += 2 {
			leaves = append(leaves, [2]float64{ab[k], ab[k+1]})
		}
	}
	for _, ab := range leaves {
		{
			c, w := 0.5*ab[0]+0.5*ab[1], ab[1]-ab[0]
			st := time.Now()
			l := &Leaf{A: ab[0], B: ab[1]}
			if err := ip.evalLeaves(context.Background(), []*Leaf{l}, 1); err != nil {
				t.Fatal(err)
			}
			fmt.Printf("c=%g w=%g L′=[%.6g,%.6g] (w %.3g) L′(c)=[%.6g,%.6g] rise %.3g smooth %d/%d %.1fs\n", c, w, l.DL.Lo, l.DL.Hi, l.DL.Hi-l.DL.Lo, l.DLC.Lo, l.DLC.Hi, l.Rise, l.Smooth, p.N, time.Since(st).Seconds())
		}
	}
}

// floatsEnv reads a comma-separated list of floats from the environment
// variable name (def when unset or unreadable).
func floatsEnv(name string, def []float64) []float64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []float64
	for _, f := range strings.Split(v, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return def
		}
		out = append(out, x)
	}
	return out
}

// TestResNetLossGrid prints L(α) and L′(α) (functionspace, float64) at the
// α of CERTIFY_RESNET_ALPHAS (default 0, 0.05, …, 1, in a coarse-to-fine
// order) for the run named by CERTIFY_RESNET_RUN on CERTIFY_RESNET_EXAMPLES
// examples (default 32), and the largest rise between the printed points:
// whether the line's loss rises (non_monotone needs only a witness) or
// falls; an issue 13 diagnostic, skipped when unset.
func TestResNetLossGrid(t *testing.T) {
	p, _ := liveResNetPath(t, 32)
	alphas := floatsEnv("CERTIFY_RESNET_ALPHAS", []float64{0, 1, 0.5, 0.25, 0.75, 0.125, 0.375, 0.625, 0.875, 0.05, 0.95, 0.9, 0.975, 0.99})
	type pt struct{ a, l float64 }
	var pts []pt
	for _, a := range alphas {
		st := time.Now()
		s := p.At(a)
		pts = append(pts, pt{a, s.Loss})
		rise := 0.0
		for _, x := range pts {
			for _, y := range pts {
				if x.a < y.a && y.l-x.l > rise {
					rise = y.l - x.l
				}
			}
		}
		fmt.Printf("α=%g L=%.10g L′=%.6g (largest rise so far %.3g) %.1fs\n", a, s.Loss, s.DLoss, rise, time.Since(st).Seconds())
	}
}

// TestResNetSlopeTerms prints, for leaves of the widths in
// CERTIFY_RESNET_WIDTHS centred at the first of CERTIFY_RESNET_CENTRES
// (default 0.5; a leaf is clipped at α = 0) on the run named by
// CERTIFY_RESNET_RUN (CERTIFY_RESNET_EXAMPLES examples, default 32), what
// the loss's slope form across kinks is made of (centredPass: the mean
// widths over the examples of ℓ_i′'s enclosure, of ℓ_i″·(α − c) and of the
// jump term dk_i) and, on the plain interval pass, the mean widths of every
// top-level layer's D1, D2·w/2 and DK (nn.IJet.DK): which of the
// almost-everywhere slope and the jumps of the ReLU units that may cross
// 0 limits the enclosure, and where it grows; and how many examples have
// sup ℓ_i′ ≤ 0 on the leaf (those a split could drop); an issue 13
// diagnostic, skipped when unset.
func TestResNetSlopeTerms(t *testing.T) {
	_, ip := liveResNetPath(t, 32)
	c := floatsEnv("CERTIFY_RESNET_CENTRES", []float64{0.5})[0]
	for _, w := range floatsEnv("CERTIFY_RESNET_WIDTHS", []float64{1.0 / 2048}) {
		ab := interval.I{Lo: math.Max(c-w/2, 0), Hi: c + w/2}
		off := interval.Sub(ab, interval.Point(c))
		_, dl, d2l, _, _, _, dlc, dk := ip.centredPass(0, ab, c, ip.boxes(ab), ip.boxes(interval.Point(c)), nil)
		if dk == nil {
			t.Fatal("the model's layers carry no jump term (nn.IJet.DK)")
		}
		var sdl, s2, sk, m2, mk float64
		settled := 0 // examples with sup ℓ_i′ ≤ 0 on the leaf (first-order ∩ slope form)
		for i := range dl {
			x := interval.Mul(d2l[i], off)
			sdl, s2, sk = sdl+dl[i].Hi-dl[i].Lo, s2+x.Hi-x.Lo, sk+dk[i].Hi-dk[i].Lo
			m2, mk = math.Max(m2, x.Hi-x.Lo), math.Max(mk, dk[i].Hi-dk[i].Lo)
			if math.Min(dl[i].Hi, interval.Add(interval.Add(dlc[i], x), dk[i]).Hi) <= 0 {
				settled++
			}
		}
		n := float64(len(dl))
		fmt.Printf("c=%g w=%g mean widths over %d examples: ℓ′ %.4g, ℓ″·(α−c) %.4g (largest %.4g), jump term %.4g (largest %.4g); examples with sup ℓ_i′ ≤ 0: %d\n", c, w, len(dl), sdl/n, s2/n, m2, sk/n, mk, settled)
		ip.jetHook(0, ab, ip.boxes(ab), 2, nil, func(i int, j *nn.IJet) *nn.IJet {
			if !j.HasDK() {
				return j
			}
			var a, b, d1 float64
			for q := range j.D2.Lo {
				a, b, d1 = a+(j.D2.Hi[q]-j.D2.Lo[q])*w/2, b+j.DK.Hi[q]-j.DK.Lo[q], d1+j.D1.Hi[q]-j.D1.Lo[q]
			}
			m := float64(len(j.D2.Lo))
			fmt.Printf("  layer %d (plain pass): mean width D1 %.3g, D2·w/2 %.3g, DK %.3g\n", i, d1/m, a/m, b/m)
			return j
		}, nil)
	}
}

// TestResNetStartSites prints, for the first leaf [0, w] (w the first of
// CERTIFY_RESNET_WIDTHS, default 1/1024) on the run named by
// CERTIFY_RESNET_RUN (first chunk), after every layer and sub-layer: how
// many output entries are exactly 0 at α = 0 (startValues), how many
// straddle 0 there without being exactly 0, and, in the leaf's pass with
// the centred and left-end forms, how many straddle 0 (units that may
// cross a ReLU kink when a ReLU reads them), how many of those are exactly
// 0 at α = 0, and how many of those have a velocity enclosure D1 that
// straddles 0: what keeps the first leaf's examples kinked; an issue 13
// diagnostic, skipped when unset.
func TestResNetStartSites(t *testing.T) {
	_, ip := liveResNetPath(t, 32)
	w := floatsEnv("CERTIFY_RESNET_WIDTHS", []float64{1.0 / 1024})[0]
	ab := interval.I{Lo: 0, Hi: w}
	start := ip.startValues(0, nil)
	centre := map[jetSite]*nn.IJet{}
	bc := ip.boxes(interval.Point(w / 2))
	ip.jetHook(0, interval.Point(w/2), bc, 1, nil, func(i int, j *nn.IJet) *nn.IJet {
		centre[jetSite{i, -1, -1}] = j
		return j
	}, func(i, b, k int, j *nn.IJet) *nn.IJet {
		centre[jetSite{i, b, k}] = j
		return j
	})
	report := func(s jetSite, j *nn.IJet) {
		v0 := start[s]
		var zero, str0, str, strZero, strD1 int
		for t := range v0.Lo {
			if v0.Lo[t] == 0 && v0.Hi[t] == 0 {
				zero++
			} else if v0.Lo[t] < 0 && v0.Hi[t] > 0 {
				str0++
			}
			if j.V.Lo[t] < 0 && j.V.Hi[t] > 0 {
				str++
				if v0.Lo[t] == 0 && v0.Hi[t] == 0 {
					strZero++
				}
				if j.D1.Lo[t] < 0 && j.D1.Hi[t] > 0 {
					strD1++
				}
			}
		}
		fmt.Printf("site %v: %d entries; at α=0 exactly 0: %d, straddling: %d; on the leaf straddling: %d (of them exactly 0 at α=0: %d, D1 straddling: %d)\n", s, len(v0.Lo), zero, str0, str, strZero, strD1)
	}
	ip.jetRec(0, ab, ip.boxes(ab), 2, nil, func(i int, j *nn.IJet) *nn.IJet {
		s := jetSite{i, -1, -1}
		if i >= ip.start {
			centredForm(j, centre[s], nil, ab, w/2)
		}
		startForm(j, start[s], w)
		report(s, j)
		return j
	}, func(i, b, k int, j *nn.IJet) *nn.IJet {
		s := jetSite{i, b, k}
		centredForm(j, centre[s], nil, ab, w/2)
		startForm(j, start[s], w)
		report(s, j)
		return j
	}, nil)
}

// TestResNetDropSettled measures the drop-out of settled examples on the
// run named by CERTIFY_RESNET_RUN (CERTIFY_RESNET_EXAMPLES examples,
// default 32): it evaluates the parent leaf CERTIFY_RESNET_LEAVES (a,b;
// default [0.5, 0.5 + 2⁻⁹]) keeping every settled example (smooth or
// kinked, keepKinkedFrac 0), prints how many are settled and how close
// their sup ℓ_i′ is to ℓ_i′ at the midpoint, then evaluates the two
// children without drop-out and with the kept rows of each fraction in
// CERTIFY_RESNET_KEEPFRAC (default 0.5, 0), each with the midpoint's pass
// on every row (IntervalPath.midAllRows, before the leafcost round) and on
// the other rows only, paired in this process: their L′ enclosures, rise
// bounds, LC and L′(c) and CPU seconds (getrusage, one worker); an issue 13
// diagnostic, skipped when unset.
func TestResNetDropSettled(t *testing.T) {
	p, ip := liveResNetPath(t, 32)
	ab := floatsEnv("CERTIFY_RESNET_LEAVES", []float64{0.5, 0.5 + 1.0/512})
	fracs := floatsEnv("CERTIFY_RESNET_KEEPFRAC", []float64{0.5, 0})
	cpu := func() float64 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	show := func(name string, l *Leaf, s float64) {
		fmt.Printf("%s [%g, %g]: L′=[%.6g,%.6g] rise %.3g LC=[%.10g,%.10g] (w %.3g) L′(c)=[%.6g,%.6g] smooth %d/%d, %.1f s CPU\n", name, l.A, l.B, l.DL.Lo, l.DL.Hi, l.Rise, l.LC.Lo, l.LC.Hi, l.LC.Hi-l.LC.Lo, l.DLC.Lo, l.DLC.Hi, l.Smooth, p.N, s)
	}
	ip.dropSettled = true
	saved := keepKinkedFrac
	defer func() { keepKinkedFrac = saved }()
	keepKinkedFrac = 0
	par := &Leaf{A: ab[0], B: ab[1]}
	s0 := cpu()
	if err := ip.evalLeaves(context.Background(), []*Leaf{par}, 1); err != nil {
		t.Fatal(err)
	}
	show("parent", par, cpu()-s0)
	if par.kept == nil {
		t.Fatal("no example settled on the parent leaf")
	}
	for _, f := range append([]float64{1}, fracs...) {
		n, nk := 0, 0
		for _, ck := range par.kept.chunks {
			for q := range ck.rows {
				if !ck.kink[q] || ck.dl[q].Hi <= f*ck.dlc[q].Hi {
					n++
					if ck.kink[q] {
						nk++
					}
				}
			}
		}
		fmt.Printf("settled on the parent with sup ℓ_i′ ≤ %g·ℓ_i′(c) (kinked) or smooth: %d of %d (%d kinked)\n", f, n, p.N, nk)
	}
	m := 0.5*par.A + 0.5*par.B
	children := func(name string, kr *keptRows) {
		ls := []*Leaf{{A: par.A, B: m, parent: kr}, {A: m, B: par.B, parent: kr}}
		for _, l := range ls {
			s := cpu()
			if err := ip.evalLeaves(context.Background(), []*Leaf{l}, 1); err != nil {
				t.Fatal(err)
			}
			show(name, l, cpu()-s)
			if kr != nil { // evalLeaves released the parent's rows; the next child takes them too
				kr.released = false
				ip.keptTotal += kr.examples
			}
		}
	}
	ip.dropSettled = false
	children("child, no drop-out", nil)
	for _, f := range fracs {
		kr := &keptRows{}
		for _, ck := range par.kept.chunks {
			var nk *chunkKeep
			if ck != nil {
				nk = &chunkKeep{mid: ck.mid}
				for q, r := range ck.rows {
					if !ck.kink[q] || ck.dl[q].Hi <= f*ck.dlc[q].Hi {
						nk.rows, nk.kink = append(nk.rows, r), append(nk.kink, ck.kink[q])
						nk.dl, nk.d2l, nk.l, nk.dlc = append(nk.dl, ck.dl[q]), append(nk.d2l, ck.d2l[q]), append(nk.l, ck.l[q]), append(nk.dlc, ck.dlc[q])
						nk.lc, nk.dlcm = append(nk.lc, ck.lc[q]), append(nk.dlcm, ck.dlcm[q])
					}
				}
				kr.examples += len(nk.rows)
			}
			kr.chunks = append(kr.chunks, nk)
		}
		// the midpoint's pass on every row (before the leafcost round) and
		// on the other rows only, kept rows' L(c) from the parent: paired
		// in this process
		for _, all := range []bool{true, false} {
			ip.midAllRows = all
			children(fmt.Sprintf("child, kept %d (frac %g), midpoint pass on all rows %v", kr.examples, f, all), kr)
		}
		ip.midAllRows = false
	}
}
