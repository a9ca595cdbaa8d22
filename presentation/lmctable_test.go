package presentation

import (
	"bytes"
	"encoding/csv"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-mli/certify/certify"
)

// A pair with certified barrier bounds: the CSV holds them exactly, the
// Markdown table shows the interval, and the instability plot draws them
// as error bars; without a spawn step no pair is drawn.
func TestLMCTableBounds(t *testing.T) {
	k := 100
	r := certify.LMCReport{Split: "test", Examples: 10}
	r.Alphas = []float64{0, 0.5, 1}
	r.Loss = []certify.Num{1, 1.5, 2}
	r.Error = []certify.Num{0.1, 0.2, 0.1}
	r.BarrierLoss, r.MidpointGap, r.BarrierError = 0.25, 0.25, 0.1
	r.BarrierLossAinsworth, r.BarrierErrorAinsworth = 0, 0.1
	r.BarrierLossAlpha, r.BarrierErrorAlpha = 0.5, 0.5
	r.BarrierBounds = &[2]float64{0.2499, 0.2503}
	pairs := []certify.LMCPair{{Dir: "p", Report: r, SpawnStep: &k}}
	var b bytes.Buffer
	if err := WriteLMCTableCSV(&b, pairs); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]string{}
	for i, h := range recs[0] {
		col[h] = recs[1][i]
	}
	if col["barrier_bounds_lo"] != "0.2499" || col["barrier_bounds_hi"] != "0.2503" || col["spawn_step"] != "100" || col["unaligned_barrier_loss"] != "" {
		t.Errorf("csv row %v", col)
	}
	b.Reset()
	if err := WriteLMCTableMarkdown(&b, pairs); err != nil || !strings.Contains(b.String(), "[0.2499, 0.2503]") {
		t.Errorf("markdown: %v\n%s", err, b.String())
	}
	dir := t.TempDir()
	if n, err := WriteInstabilityFigure(dir, pairs, "", []string{"png"}); err != nil || n != 1 {
		t.Fatalf("figure: %d, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, FigureInstability+".png")); err != nil {
		t.Error(err)
	}
	// The LaTeX table compiles in a plain article and fits \textwidth.
	b.Reset()
	pairs[0].Dir = "runs/k_100 & more" // escaped
	if err := WriteLMCTableLaTeX(&b, pairs); err != nil {
		t.Fatal(err)
	}
	if pdflatex, err := exec.LookPath("pdflatex"); err == nil {
		doc := "\\documentclass{article}\n\\usepackage[utf8]{inputenc}\n\\usepackage[T1]{fontenc}\n\\usepackage{lmodern}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\begin{document}\n" + b.String() + "\\end{document}\n"
		if err := os.WriteFile(filepath.Join(dir, "t.tex"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(pdflatex, "-interaction=nonstopmode", "-halt-on-error", "t.tex")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil || bytes.Contains(out, []byte("Missing character")) || bytes.Contains(out, []byte("Overfull \\hbox")) {
			t.Errorf("pdflatex: %v\n%s\n%s", err, out, doc)
		}
	}
	pairs[0].SpawnStep = nil
	if _, err := WriteInstabilityFigure(dir, pairs, "", nil); err == nil {
		t.Error("no spawn pair: drawn")
	}
}

// boundsAxis widens the loss axis for certified upper bounds up to 1.5
// spans above the data and leaves larger ones off it.
func TestBoundsAxis(t *testing.T) {
	top, off := boundsAxis(0, 1, []float64{0.5, 2, 3})
	if math.Abs(top-2.12) > 1e-12 || off[0] || off[1] || !off[2] {
		t.Errorf("top %v, off %v; want 2.12, [false false true]", top, off)
	}
	top, off = boundsAxis(-1, 1, []float64{0.9, 127.8})
	if top != 1 || off[0] || !off[1] {
		t.Errorf("top %v, off %v; want 1, [false true]", top, off)
	}
	if top, off := boundsAxis(0, 1, nil); top != 1 || len(off) != 0 {
		t.Errorf("no bounds: top %v, off %v", top, off)
	}
}

// TestLMCTableLayerWiseEnds: a layer-wise pair's line does not run from A
// to B (certify lmc --layers: one end is a hybrid), so the ends column is
// not headed "L(A) → L(B)" once such a pair is in the table, and each
// layer-wise row names its hybrid end as certify lmc's summary does:
// hold a ends at A with B's layers, hold b starts at B with A's layers. A
// table of full lines keeps "L(A) → L(B)".
func TestLMCTableLayerWiseEnds(t *testing.T) {
	mk := func(dir string, l0, l1 certify.Num, layers *certify.LMCLayers) certify.LMCPair {
		r := certify.LMCReport{Split: "test", Examples: 10, LMCLayers: layers}
		r.Alphas = []float64{0, 0.5, 1}
		r.Loss = []certify.Num{l0, 2, l1}
		return certify.LMCPair{Dir: dir, Report: r}
	}
	full := mk("full", 1, 3, nil)
	holdA := mk("holdA", 1, 4, &certify.LMCLayers{Layers: []string{"0"}, Hold: "a"})
	holdB := mk("holdB", 5, 3, &certify.LMCLayers{Layers: []string{"2"}, Hold: "b"})
	table := func(pairs ...certify.LMCPair) (md, tex string) {
		var b, l bytes.Buffer
		if err := WriteLMCTableMarkdown(&b, pairs); err != nil {
			t.Fatal(err)
		}
		if err := WriteLMCTableLaTeX(&l, pairs); err != nil {
			t.Fatal(err)
		}
		return b.String(), l.String()
	}
	row := func(md, dir string) string {
		for _, line := range strings.Split(md, "\n") {
			if strings.HasPrefix(line, "| "+dir) {
				return line
			}
		}
		t.Fatalf("no row %s in\n%s", dir, md)
		return ""
	}
	md, tex := table(full)
	if !strings.Contains(md, "| L(A) → L(B) |") || !strings.Contains(tex, "$L_A \\to L_B$") {
		t.Errorf("full lines only: the head is not L(A) → L(B):\n%s\n%s", md, tex)
	}
	md, tex = table(full, holdA, holdB)
	if strings.Contains(md, "L(A) → L(B)") || !strings.Contains(md, "| L(α = 0) → L(α = 1) |") || strings.Contains(tex, "L_A \\to L_B") || !strings.Contains(tex, "$L(0) \\to L(1)$") {
		t.Errorf("with layer-wise pairs the head still says L(A) → L(B), or not L(α = 0) → L(α = 1):\n%s\n%s", md, tex)
	}
	for _, c := range []struct{ dir, want string }{{"full", "| 1 → 3 |"}, {"holdA", "| 1 → 4 (A → hybrid) |"}, {"holdB", "| 5 → 3 (hybrid → B) |"}} {
		if r := row(md, c.dir); !strings.Contains(r, c.want) {
			t.Errorf("%s: row %q lacks %q", c.dir, r, c.want)
		}
	}
}

// TestLMCTableCSVHold: the CSV carries what the Markdown and LaTeX rows
// say of a layer-wise pair: the moved layers and where the rest is held
// (hold, "a" or "b"; empty for a full line), so a hold-a and a hold-b pair
// of the same layers are told apart in the CSV as in the other formats.
func TestLMCTableCSVHold(t *testing.T) {
	mk := func(dir string, layers *certify.LMCLayers) certify.LMCPair {
		r := certify.LMCReport{Split: "test", Examples: 10, LMCLayers: layers}
		r.Alphas = []float64{0, 0.5, 1}
		r.Loss = []certify.Num{1, 2, 3}
		return certify.LMCPair{Dir: dir, Report: r}
	}
	pairs := []certify.LMCPair{mk("full", nil), mk("holdA", &certify.LMCLayers{Layers: []string{"0", "2"}, Hold: "a"}),
		mk("holdB", &certify.LMCLayers{Layers: []string{"0", "2"}, Hold: "b"})}
	var b bytes.Buffer
	if err := WriteLMCTableCSV(&b, pairs); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	if _, ok := col["hold"]; !ok || len(recs) != 4 {
		t.Fatalf("CSV without a hold column, or not one row per pair:\n%v", recs)
	}
	var md bytes.Buffer
	if err := WriteLMCTableMarkdown(&md, pairs); err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct{ dir, layers, hold, md string }{
		{"full", "", "", "| full |"}, {"holdA", "0;2", "a", "rest at a)"}, {"holdB", "0;2", "b", "rest at b)"}} {
		rec := recs[i+1]
		if rec[col["dir"]] != want.dir || rec[col["layers"]] != want.layers || rec[col["hold"]] != want.hold {
			t.Errorf("%s: dir %q layers %q hold %q, want layers %q hold %q", want.dir, rec[col["dir"]], rec[col["layers"]], rec[col["hold"]], want.layers, want.hold)
		}
		if !strings.Contains(md.String(), want.md) { // the Markdown says the same
			t.Errorf("%s: Markdown lacks %q:\n%s", want.dir, want.md, md.String())
		}
	}
}
