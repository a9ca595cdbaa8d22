package presentation

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/certify-mli/certify/certify"
)

// drawAll writes every figure of a run (PNG and SVG), certificate.png
// when r has a certificate, and summary.tex into a new directory, and
// returns the files by name.
func drawAll(t *testing.T, r *certify.Report) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	if err := WriteFigureFormats(dir, r, "png", "svg"); err != nil {
		t.Fatal(err)
	}
	if r.Certificate != nil {
		if err := WriteCertificateFigure(dir, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteSummary(dir, r); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

// TestRedrawFromCertificateJSON: the figures and summary.tex drawn from a
// report written to certificate.json and read back (certify.ReadReport)
// are byte for byte those drawn from the report in memory, so a run's
// presentation can be redrawn from certificate.json alone. Two reports: an
// analysed run with a certificate (typed conditions in memory, a JSON map
// on disk), and the synthetic figure report with a certificate whose
// enclosures include unbounded ends (null on disk) and a non-finite
// per-example Gauss length. The analysed report written again from the one
// read back is byte for byte the first.
func TestRedrawFromCertificateJSON(t *testing.T) {
	analysed, err := certify.Analyze(context.Background(), overshootPath(t), certify.Options{Tolerance: 1e-3, Certificate: true})
	if err != nil {
		t.Fatal(err)
	}
	synthetic := figureReport(true)
	synthetic.GaussLengthPerExample[3] = math.NaN()
	synthetic.Certificate = &certify.Certificate{Verdict: certify.Inconclusive, DeltaUpper: 1, Leaves: 3, UnsettledCount: 1,
		Intervals: []certify.CertLeaf{{A: 0, B: 0.5, Inf: -2, Sup: -0.5}, {A: 0.5, B: 0.75, Inf: math.Inf(-1), Sup: math.Inf(1)}, {A: 0.75, B: 1, Inf: -1, Sup: 0.25}}}
	for name, r := range map[string]*certify.Report{"analysed": analysed, "synthetic": synthetic} {
		if len(r.GaussLengthPerExample) == 0 || r.Certificate == nil || len(r.Certificate.Intervals) == 0 {
			t.Fatalf("%s: the report lacks the data under test", name)
		}
		want := drawAll(t, r)
		file := filepath.Join(t.TempDir(), "certificate.json")
		if err := r.Write(file); err != nil {
			t.Fatal(err)
		}
		back, err := certify.ReadReport(file)
		if err != nil {
			t.Fatal(err)
		}
		// With typed conditions a report of finite numbers round-trips
		// too. (Non-finite ones are null on disk, with a note naming the
		// value: they read back as NaN, so they do not.)
		if j0, j1 := mustJSON(t, r), mustJSON(t, back); name == "analysed" && !bytes.Equal(j0, j1) {
			t.Errorf("%s: certificate.json written again from the report read back differs", name)
		}
		got := drawAll(t, back)
		if len(got) != len(want) || len(want) < 5 {
			t.Fatalf("%s: %d files from disk, %d from memory", name, len(got), len(want))
		}
		for f, w := range want {
			if !bytes.Equal(got[f], w) {
				t.Errorf("%s: %s drawn from certificate.json differs from the one drawn in memory", name, f)
			}
		}
	}
}

func mustJSON(t *testing.T, r *certify.Report) []byte {
	t.Helper()
	b, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
