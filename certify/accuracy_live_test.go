package certify

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/certify-mli/certify/internal/blasbackend"
)

// TestAccuracyScaleLive (issue 12, acc-share round) runs the analysis's
// certificate and then its accuracy bounds on a run directory named by
// CERTIFY_SCALE_RUN (CERTIFY_SCALE_N examples, default 300), as Analyze
// does, and logs each phase's CPU seconds, leaves and a digest of the
// accuracy intervals (so two binaries can be compared: the same digest is
// the same bounds). CERTIFY_SCALE_TOL sets the certificate's tolerance (default 0) and
// CERTIFY_SCALE_NOCARRY=1 forces the general passes (no carried second
// layer, cert-carry); CERTIFY_SCALE_NOACC=1 stops after the certificate; CERTIFY_SCALE_NOTAP=1 runs the accuracy bounds without the certificate's verdicts (accTap, acc-5000); CERTIFY_SCALE_INIT and CERTIFY_SCALE_ACCINIT set the initial leaves of the certificate and of the accuracy bounds (default 32); CERTIFY_SCALE_ICHUNK the interval passes' chunk of examples (intervalChunk). CERTIFY_SCALE_PROFILE=P writes the CPU profiles of the
// two phases to P.cert and P.acc. Skipped when unset; it measures, and
// asserts only that the bounds are ordered.
func TestAccuracyScaleLive(t *testing.T) {
	p := liveScalePath(t)
	tol := liveEnv(t, "CERTIFY_SCALE_TOL", 0)
	if os.Getenv("CERTIFY_SCALE_NOCARRY") != "" { // the general passes, for comparison (cert-carry)
		noCarry = true
		defer func() { noCarry = false }()
	}
	if v := int(liveEnv(t, "CERTIFY_SCALE_ICHUNK", -1)); v >= 0 { // the interval passes' chunk (intervalChunk)
		old := intervalChunk
		intervalChunk = v
		defer func() { intervalChunk = old }()
	}
	prof := os.Getenv("CERTIFY_SCALE_PROFILE")
	phase := func(name string, f func()) {
		if prof != "" {
			fh, err := os.Create(prof + "." + name)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			if err := pprof.StartCPUProfile(fh); err != nil {
				t.Fatal(err)
			}
			defer pprof.StopCPUProfile()
		}
		f()
	}
	var c *Certificate
	var err error
	var tap *accTap
	if os.Getenv("CERTIFY_SCALE_NOTAP") == "" && os.Getenv("CERTIFY_SCALE_NOACC") == "" { // as Analyze: the certificate's passes classify for the accuracy (acc-5000)
		tap = newAccTap(p)
	}
	c0, w0 := cpuSeconds(t), time.Now()
	phase("cert", func() {
		defer blasbackend.SerialProducts()() // as Analyze runs it
		c, _, err = certify(context.Background(), p, CertifyOptions{Tolerance: tol, DeltaTol: DefaultDeltaTol, InitialIntervals: int(liveEnv(t, "CERTIFY_SCALE_INIT", 0)), acc: tap})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("certificate: %d examples: %s, Δ ∈ [%.13g, %.13g], %d leaves, %d passes, CPU %.2f s, wall %.2f s",
		p.N, c.Verdict, c.DeltaLower, c.DeltaUpper, c.Leaves, c.Evaluations, cpuSeconds(t)-c0, time.Since(w0).Seconds())
	if os.Getenv("CERTIFY_SCALE_NOACC") != "" { // the certificate alone (cert-carry)
		return
	}
	var a *AccuracyBounds
	c0, w0 = cpuSeconds(t), time.Now()
	phase("acc", func() {
		a, err = certifyAccuracy(context.Background(), p, AccuracyOptions{InitialIntervals: int(liveEnv(t, "CERTIFY_SCALE_ACCINIT", 0))}, tap)
	})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(a.Intervals)
	lo, hi := a.Range()
	t.Logf("accuracy: %d leaves (%d undecided), %d intervals, range [%v, %v], converged %v (%s), %d passes, digest %x, CPU %.2f s, wall %.2f s",
		a.Leaves, a.UndecidedLeaves, len(a.Intervals), lo, hi, a.Converged, a.Reason, a.Evaluations, sha256.Sum256(js), cpuSeconds(t)-c0, time.Since(w0).Seconds())
	w := a.work
	t.Logf("accuracy work: %d leaves from the certificate's verdicts (%d (leaf, example) pairs decided there), %d inherited from a parent; carried coefficients: %d rows by the product, %d derived; %d rows in order-0 passes, %d in order-1 ones",
		w.tapLeaves, w.tapDecided, w.rowsReused, w.coefRows, w.coefDerived, w.stageRows[0], w.stageRows[1])
	if lo > hi {
		t.Errorf("accuracy range [%v, %v] is empty", lo, hi)
	}
}
