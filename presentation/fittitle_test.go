package presentation

import (
	"strings"
	"testing"

	"github.com/certify-mli/certify/certify"
	"gonum.org/v1/plot/vg"
	"pgregory.net/rapid"
)

// TestFitTitleProperties: after fitTitle every line of the title fits the
// width (in the title's font) unless it is one word wider than the width;
// the words, in order, are those of the original title; lines that fitted
// are unchanged. (A first-user look at the resnet-8 certificate's figures
// found their heading clipped at both edges.)
func TestFitTitleProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		words := rapid.SliceOfN(rapid.StringMatching(`[a-zA-Z0-9_.=()α-]{1,14}`), 1, 40).Draw(t, "words")
		seps := rapid.SliceOfN(rapid.SampledFrom([]string{" ", ", ", " — ", "\n"}), len(words)-1, len(words)-1).Draw(t, "seps")
		var b strings.Builder
		for i, w := range words {
			b.WriteString(w)
			if i < len(seps) {
				b.WriteString(seps[i])
			}
		}
		text := b.String()
		width := vg.Length(rapid.Float64Range(30, 600).Draw(t, "width"))
		p := newPlot()
		p.Title.Text = text
		fitTitle(p, width)
		sty := p.Title.TextStyle
		for _, line := range strings.Split(p.Title.Text, "\n") {
			if sty.Width(line) > width && strings.ContainsAny(line, " ") {
				t.Fatalf("line %q is %v wide, more than %v, and has several words", line, sty.Width(line), width)
			}
		}
		if got, want := strings.Fields(p.Title.Text), strings.Fields(text); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("words changed: %q -> %q", text, p.Title.Text)
		}
		for _, line := range strings.Split(text, "\n") {
			if sty.Width(line) <= width && !strings.Contains("\n"+p.Title.Text+"\n", "\n"+line+"\n") {
				t.Fatalf("the fitting line %q was rewrapped: %q", line, p.Title.Text)
			}
		}
	})
}

// TestFigureHeadingFits: the heading of a report with a long run name and
// every setting (the resnet-8 certificate's) is wrapped into lines that fit
// the figure, breaking after the heading's commas.
func TestFigureHeadingFits(t *testing.T) {
	r := &certify.Report{Data: "fashion-mnist train (first 256 examples)", Command: []string{"certify", "--run", "/tmp/runs/resnet-8-bn-fashion-mnist-seed1"},
		LossKind: "cross_entropy", Examples: 256, Alphas: make([]float64, 50), Tolerance: 1e-3, BNPolicy: "interpolate"}
	p := newPlot()
	p.Title.Text = figureHeading(r) + "L′ enclosure: certified monotone, Δ in [0, 0.00098]"
	width := FigureWidth - vg.Points(10)
	if p.Title.TextStyle.Width(strings.Split(p.Title.Text, "\n")[0]) <= width {
		t.Fatalf("the heading %q already fits: the test needs a longer one", p.Title.Text)
	}
	fitTitle(p, width)
	lines := strings.Split(p.Title.Text, "\n")
	if len(lines) < 3 {
		t.Errorf("heading not wrapped: %q", p.Title.Text)
	}
	for _, l := range lines {
		if w := p.Title.TextStyle.Width(l); w > width {
			t.Errorf("line %q is %v wide, more than the figure's %v", l, w, width)
		}
	}
	if !strings.HasSuffix(lines[0], ",") {
		t.Errorf("first line %q does not end at one of the heading's commas", lines[0])
	}

	// a parenthesised clause that fits a line is kept whole (a study
	// figure's "(runs: DIR)", which a test and a reader look for)
	q := newPlot()
	dir := "/tmp/TestStudyCommandErrors3685000044/002/runs"
	q.Title.Text = "Non-monotonicity Δ against the distance between θ0 and θT (runs: " + dir + ")"
	fitTitle(q, width)
	if !strings.Contains(q.Title.Text, "(runs: "+dir+")") {
		t.Errorf("the clause (runs: …) was broken: %q", q.Title.Text)
	}
}

// TestGaussHistSaysWhyEmpty: the Gauss-length histogram of a report without
// per-example Gauss lengths says which flag skipped them (a walkthrough
// found "none recorded" under --no-geometry, which reads as a fault).
func TestGaussHistSaysWhyEmpty(t *testing.T) {
	for _, tc := range []struct {
		o    certify.Options
		want string
	}{
		{certify.Options{NoGeometry: true}, "Gauss length per example: not computed (--no-geometry)"},
		{certify.Options{LossOnly: true}, "Gauss length per example: not computed (--loss-only)"},
		{certify.Options{}, "Gauss length per example: none recorded"},
	} {
		r := &certify.Report{Options: tc.o, Alphas: []float64{0, 1}, Loss: []float64{1, 0.5}}
		if got := gaussHistPlot(r).Title.Text; !strings.HasSuffix(got, tc.want) {
			t.Errorf("options %+v: title %q, want it to end %q", tc.o, got, tc.want)
		}
	}
}
