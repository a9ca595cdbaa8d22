package certify

import (
	"os"
	"strconv"
	"testing"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/blasbackend"
	"github.com/certify-mli/certify/rundir"
)

// The env-gated live diagnostics (scale, accuracy, degenerate paths, the
// timed certificate) share this preamble: the run directory an environment
// variable names (skipped when unset), the BLAS CERTIFY_BLAS names, the
// example count. The resnet diagnostics keep their own (liveResNetRun: it
// selects a BLAS, auto, even when CERTIFY_BLAS is unset).

// liveRun reads the first n examples (0: all) of the run directory named
// by the environment variable key, skipping the test when it is unset,
// after selecting the BLAS named by CERTIFY_BLAS (e.g. auto) as certify's
// commands do; unset, the tests run on gonum's pure Go.
func liveRun(t *testing.T, key string, n int) *rundir.Run {
	t.Helper()
	dir := os.Getenv(key)
	if dir == "" {
		t.Skipf("set %s to a run directory", key)
	}
	if name := os.Getenv("CERTIFY_BLAS"); name != "" {
		b, note, err := blasbackend.Select(name)
		if err != nil {
			t.Fatal(err)
		}
		b.Use()
		t.Logf("BLAS %v %s", b, note)
	}
	run, err := rundir.Read(dir, n)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// liveEnv returns the number the environment variable key holds, or d when
// it is unset; a value that does not parse fails the test.
func liveEnv(t *testing.T, key string, d float64) float64 {
	t.Helper()
	s := os.Getenv(key)
	if s == "" {
		return d
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return v
}

// liveScalePath is the output path (default options) of the run that
// CERTIFY_SCALE_RUN names, on its first CERTIFY_SCALE_N examples (default
// 300): the certificate's and the accuracy bounds' scale diagnostics.
func liveScalePath(t *testing.T) *functionspace.Path {
	t.Helper()
	run := liveRun(t, "CERTIFY_SCALE_RUN", int(liveEnv(t, "CERTIFY_SCALE_N", 300)))
	p, err := functionspace.New(run.Model, run.Theta0, run.ThetaT, run.X, run.Targets, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
