package certify

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	r, err := Analyze(context.Background(), p, Options{Tolerance: 1e-3, Certificate: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != NonMonotone || r.DeltaBounds == nil || r.Certificate == nil || !(r.DeltaBounds[0] <= 0.25 && 0.25 <= r.DeltaBounds[1]) {
		t.Fatalf("verdict %s, bounds %v", r.Verdict, r.DeltaBounds)
	}
	r.Data = `overshoot_test 100% & {x} $#~^\`
	dir := t.TempDir()
	if err := WriteSummary(dir, r); err != nil {
		t.Fatal(err)
	}
	src, _ := os.ReadFile(filepath.Join(dir, SummaryTeX))
	for _, s := range []string{`\toprule`, `non\_monotone`, `overshoot\_test 100\% \& \{x\} \$\#`} {
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
	if _, err := exec.LookPath("pdflatex"); err != nil {
		t.Skip("pdflatex not installed")
	}
	cmd := exec.Command("pdflatex", "-interaction=nonstopmode", "-halt-on-error", SummaryTeX)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pdflatex: %v\n%s", err, out[max(0, len(out)-2000):])
	}
	if _, err := os.Stat(filepath.Join(dir, "summary.pdf")); err != nil || strings.Contains(string(out), "Undefined control sequence") {
		t.Fatalf("no PDF: %v", err)
	}
}
