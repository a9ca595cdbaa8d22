package presentation

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-mli/certify/certify"
)

func TestTeXEscape(t *testing.T) {
	for in, want := range map[string]string{
		"mnist_train 50% & $x#{}": `mnist\_train 50\% \& \$x\#\{\}`,
		`a\b~c^d`:                 `a\textbackslash{}b\textasciitilde{}c\textasciicircum{}d`,
	} {
		if got := texEscape(in); got != want {
			t.Errorf("texEscape(%q) = %q, want %q", in, got, want)
		}
	}
	if got := texNum(1.5e-7); got != `1.5\times 10^{-7}` {
		t.Errorf("texNum = %q", got)
	}
}

// TestSummaryCompiles writes summary.tex for an analysed run with a
// certificate and a data name full of special characters, and compiles it
// with pdflatex (skipped only when pdflatex is absent); also draws
// certificate.png and checks it decodes.
func TestSummaryCompiles(t *testing.T) {
	p := overshootPath(t)
	r, err := certify.Analyze(context.Background(), p, certify.Options{Tolerance: 1e-3, Certificate: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != certify.NonMonotone || r.DeltaBounds == nil || r.Certificate == nil || !(r.DeltaBounds[0] <= 0.25 && 0.25 <= r.DeltaBounds[1]) {
		t.Fatalf("verdict %s, bounds %v", r.Verdict, r.DeltaBounds)
	}
	r.Data = `overshoot_test 100% & {x} $#~^\`
	// The longest rows: the stacked Gauss length's caveat and the witness.
	notConverged := false
	r.GaussLengthStackedConverged = &notConverged
	dir := t.TempDir()
	if err := WriteSummary(dir, r); err != nil {
		t.Fatal(err)
	}
	src, _ := os.ReadFile(filepath.Join(dir, SummaryTeX))
	for _, s := range []string{`\toprule`, `non\_monotone`, `overshoot\_test 100\% \& \{x\} \$\#`, `(not converged on the finest grid)`, `Witness`} {
		if !bytes.Contains(src, []byte(s)) {
			t.Errorf("summary.tex lacks %q", s)
		}
	}
	if err := WriteCertificateFigure(dir, r); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, FigureCertificate+".png"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(f); err != nil {
		t.Errorf("certificate.png: %v", err)
	}
	f.Close()
	if bytes.Contains(src, []byte(`\documentclass`)) || bytes.Contains(src, []byte(`\begin{document}`)) {
		t.Error("summary.tex is a document, not a fragment to \\input")
	}
	if !bytes.Contains(src, []byte(`\label{tab:certify-`)) || !bytes.Contains(src, []byte(`\caption{Monotonic linear interpolation of `)) {
		t.Errorf("summary.tex lacks a label or a caption naming the run:\n%s", src)
	}
	// A minimal article that \input-s it, and the standalone wrapper,
	// compile, and use no Type 3 (bitmap) font.
	os.WriteFile(filepath.Join(dir, "paper.tex"), []byte("\\documentclass{article}\n"+SummaryTeXPreamble+
		"\\begin{document}\nSee Table~\\ref{tab:certify-overshoot-test}.\n\\input{summary.tex}\n\\end{document}\n"), 0o644)
	for _, doc := range []string{"paper", "summary-standalone"} {
		pdf := compileTeX(t, dir, doc)
		checkNoType3(t, pdf)
	}
}

// compileTeX runs pdflatex on dir/name.tex and returns the PDF's path; it
// skips the test when pdflatex is absent.
func compileTeX(t *testing.T, dir, name string) string {
	t.Helper()
	if _, err := exec.LookPath("pdflatex"); err != nil {
		t.Skip("pdflatex not installed")
	}
	cmd := exec.Command("pdflatex", "-interaction=nonstopmode", "-halt-on-error", name+".tex")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pdflatex %s: %v\n%s", name, err, out[max(0, len(out)-2000):])
	}
	if strings.Contains(string(out), "Undefined control sequence") || strings.Contains(string(out), "Overfull \\hbox") {
		t.Errorf("pdflatex %s: undefined control sequence or overfull box:\n%s", name, out[max(0, len(out)-3000):])
	}
	return filepath.Join(dir, name+".pdf")
}

// checkNoType3 fails when pdffonts lists a Type 3 font in pdf (skipped when
// pdffonts is absent).
func checkNoType3(t *testing.T, pdf string) {
	t.Helper()
	if _, err := exec.LookPath("pdffonts"); err != nil {
		t.Skip("pdffonts not installed")
	}
	out, err := exec.Command("pdffonts", pdf).CombinedOutput()
	if err != nil {
		t.Fatalf("pdffonts %s: %v\n%s", pdf, err, out)
	}
	if strings.Contains(string(out), "Type 3") {
		t.Errorf("%s uses a Type 3 font:\n%s", pdf, out)
	}
}
