package presentation

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/certify-mli/certify/certify"
)

const studyDir = "../testdata/study"

// oracleRun is a run read by the test itself, without the package's reader.
type oracleRun struct {
	cfg, rep map[string]any
}

func readOracleRuns(t *testing.T, root string) []oracleRun {
	t.Helper()
	var runs []oracleRun
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "certificate.json" {
			return err
		}
		var r oracleRun
		for _, f := range []struct {
			name string
			dst  *map[string]any
		}{{"certificate.json", &r.rep}, {"config.json", &r.cfg}} {
			b, err := os.ReadFile(filepath.Join(filepath.Dir(p), f.name))
			if err != nil {
				return err
			}
			if err := json.Unmarshal(b, f.dst); err != nil {
				return err
			}
		}
		runs = append(runs, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// oracleClass restates the counting rule documented on Classify: the
// verdict at the report's own tolerance; otherwise non-monotonic when the
// verdict is non_monotone at a tolerance ≥ τ or the grid Δ exceeds τ, and
// never monotone when inconclusive.
func oracleClass(rep map[string]any, tau float64, own bool) string {
	v := rep["verdict"].(string)
	if own || v == "inconclusive" {
		return v
	}
	delta, tol := rep["delta"].(float64), rep["tolerance"].(float64)
	if v == "non_monotone" && tol >= tau || delta > tau {
		return "non_monotone"
	}
	if v == "certified_monotone" {
		b, _ := rep["delta_bounds"].([]any)
		if tau >= tol || len(b) == 2 && b[1].(float64) <= tau {
			return "certified_monotone"
		}
	}
	return "monotone_on_grid"
}

// TestTableNumbersRecomputed recomputes every cell of `rows optim,batchnorm,
// cols lr` from the certificate.json and config.json files of
// testdata/study and compares with the CSV output, for several thresholds
// and training-loss filters.
func TestTableNumbersRecomputed(t *testing.T) {
	runs, skipped, err := certify.LoadStudy(studyDir, false)
	if err != nil {
		t.Fatal(err)
	}
	oracle := readOracleRuns(t, studyDir)
	if len(runs) != len(oracle) || len(skipped) != 0 || len(runs) < 8 {
		t.Fatalf("LoadStudy found %d runs (skipped %d), the test's walk %d", len(runs), len(skipped), len(oracle))
	}
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		threshold, maxLoss *float64
	}{{nil, nil}, {f(1e-3), nil}, {f(0.01), nil}, {f(0), nil}, {nil, f(0.1)}, {f(0.005), f(0.1)}} {
		name := fmt.Sprintf("threshold=%v,maxloss=%v", deref(tc.threshold), deref(tc.maxLoss))
		t.Run(name, func(t *testing.T) {
			type agg struct {
				runs, nm, cert, grid, inc int
				dsum                      float64
			}
			want := map[string]*agg{}
			for _, r := range oracle {
				if tc.maxLoss != nil {
					l, ok := r.cfg["train_loss"].(float64)
					if !ok || l > *tc.maxLoss {
						continue
					}
				}
				bn := "n/a"
				if b, ok := r.cfg["batchnorm"].(bool); ok {
					bn = strconv.FormatBool(b)
				}
				key := fmt.Sprintf("%s,%s,%v", r.cfg["optim"], bn, r.cfg["lr"])
				a := want[key]
				if a == nil {
					a = &agg{}
					want[key] = a
				}
				a.runs++
				tau := 0.0
				if tc.threshold != nil {
					tau = *tc.threshold
				}
				switch oracleClass(r.rep, tau, tc.threshold == nil) {
				case "non_monotone":
					a.nm++
					a.dsum += r.rep["delta"].(float64)
				case "certified_monotone":
					a.cert++
				case "monotone_on_grid":
					a.grid++
				default:
					a.inc++
				}
			}
			tab, err := BuildTable(runs, TableSpec{Rows: []string{"optim", "batchnorm"}, Cols: []string{"lr"},
				StudyFilter: certify.StudyFilter{Threshold: tc.threshold, MaxTrainLoss: tc.maxLoss}})
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := tab.WriteCSV(&buf); err != nil {
				t.Fatal(err)
			}
			recs, err := csv.NewReader(&buf).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			wantHead := "optim,batchnorm,lr,runs,non_monotone,certified_monotone,monotone_on_grid,inconclusive,fraction_non_monotone,mean_delta_non_monotone,off_grid_delta_runs"
			if got := strings.Join(recs[0], ","); got != wantHead {
				t.Fatalf("header %s, want %s", got, wantHead)
			}
			if len(recs)-1 != len(want) {
				t.Errorf("%d cells, want %d", len(recs)-1, len(want))
			}
			for _, rec := range recs[1:] {
				key := strings.Join(rec[:3], ",")
				a := want[key]
				if a == nil {
					t.Errorf("unexpected cell %s", key)
					continue
				}
				ints := []int{a.runs, a.nm, a.cert, a.grid, a.inc}
				for k, w := range ints {
					if got, _ := strconv.Atoi(rec[3+k]); got != w {
						t.Errorf("cell %s column %s = %s, want %d", key, recs[0][3+k], rec[3+k], w)
					}
				}
				decided := a.nm + a.cert + a.grid
				checkFloat(t, key+" fraction", rec[8], float64(a.nm)/float64(decided), decided > 0)
				checkFloat(t, key+" mean Δ", rec[9], a.dsum/float64(a.nm), a.nm > 0)
			}
		})
	}
}

func deref(p *float64) any {
	if p == nil {
		return "nil"
	}
	return *p
}

func checkFloat(t *testing.T, what, got string, want float64, present bool) {
	t.Helper()
	if !present {
		if got != "" {
			t.Errorf("%s = %q, want empty", what, got)
		}
		return
	}
	v, err := strconv.ParseFloat(got, 64)
	if err != nil || math.Abs(v-want) > 1e-12*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %q, want %v", what, got, want)
	}
}

// TestTableLaTeXCompiles runs pdflatex on the LaTeX table inside a minimal
// document (skipped when pdflatex is absent).
func TestTableLaTeXCompiles(t *testing.T) {
	runs, _, err := certify.LoadStudy(studyDir, false)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := BuildTable(runs, TableSpec{Rows: []string{"optim", "batchnorm"}, Cols: []string{"lr", "data.name"}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tab.WriteLaTeX(&buf); err != nil {
		t.Fatal(err)
	}
	tex := buf.String()
	label := "tab:certify-optim-batchnorm-by-lr-data-name"
	for _, s := range []string{`\toprule`, `\midrule`, `\bottomrule`, `data.name = fashion-mnist`, `$^\dagger$`, `\caption{Non-monotonic runs by optim,batchnorm`, `\label{` + label + `}`} {
		if !strings.Contains(tex, s) {
			t.Errorf("LaTeX lacks %q:\n%s", s, tex)
		}
	}
	pdflatex, err := exec.LookPath("pdflatex")
	if err != nil {
		t.Skip("pdflatex not installed")
	}
	dir := t.TempDir()
	// A plain article (portrait, default margins): the table must fit
	// \textwidth, with the preamble the table's comment names.
	doc := "\\documentclass{article}\n\\usepackage[utf8]{inputenc}\n\\usepackage[T1]{fontenc}\n\\usepackage{lmodern}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\begin{document}\nTable~\\ref{" + label + "}.\n" + tex + "\\end{document}\n"
	if err := os.WriteFile(filepath.Join(dir, "t.tex"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pdflatex, "-interaction=nonstopmode", "-halt-on-error", "t.tex")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pdflatex: %v\n%s\n%s", err, out, doc)
	}
	if bytes.Contains(out, []byte("Missing character")) || bytes.Contains(out, []byte("Overfull \\hbox")) {
		t.Errorf("pdflatex dropped characters or the table is wider than \\textwidth:\n%s", out)
	}
	checkNoType3(t, filepath.Join(dir, "t.pdf"))
	if b, err := os.ReadFile(filepath.Join(dir, "t.pdf")); err != nil || !bytes.HasPrefix(b, []byte("%PDF-")) {
		t.Fatalf("no PDF written: %v", err)
	}
}

// TestTableMarkdown checks the Markdown layout: a header, an alignment row,
// one line per row tuple, each with the same number of cells.
func TestTableMarkdown(t *testing.T) {
	runs, _, err := certify.LoadStudy(studyDir, false)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := BuildTable(runs, TableSpec{Rows: []string{"optim"}, Cols: []string{"lr"}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tab.Write(&buf, FormatMarkdown); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	// Two optimizers, two learning rates: 1 + 2·3 columns.
	for i, l := range lines[:4] {
		if n := strings.Count(l, "|") - strings.Count(l, `\|`); n != 8 {
			t.Errorf("line %d has %d bars, want 8: %s", i, n, l)
		}
	}
	if !strings.HasPrefix(lines[2], "| adam |") || !strings.HasPrefix(lines[3], "| sgd |") {
		t.Errorf("rows not sorted adam, sgd:\n%s", buf.String())
	}
	if err := tab.Write(&buf, "html"); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestBuildTableErrors(t *testing.T) {
	runs, _, err := certify.LoadStudy(studyDir, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := BuildTable(runs, TableSpec{Rows: []string{"optimiser"}}); err == nil || !strings.Contains(err.Error(), `"optimiser"`) {
		t.Errorf("misspelt key: err = %v", err)
	}
	tiny := -1.0
	if _, err := BuildTable(runs, TableSpec{StudyFilter: certify.StudyFilter{MaxTrainLoss: &tiny}}); err == nil {
		t.Error("empty table accepted")
	}
	// No keys: one cell holding every run.
	tab, err := BuildTable(runs, TableSpec{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Cells) != 1 || len(tab.Cells[0]) != 1 || tab.Cells[0][0].Runs() != len(runs) {
		t.Errorf("no keys: cells %+v, want one with %d runs", tab.Cells, len(runs))
	}
}

func TestCell(t *testing.T) {
	c := Cell{NonMonotone: 3, CertifiedMonotone: 1, MonotoneOnGrid: 2, Inconclusive: 4, DeltaSum: 0.6}
	if c.Runs() != 10 || c.Decided() != 6 || c.Fraction() != 0.5 || math.Abs(c.MeanDelta()-0.2) > 1e-15 {
		t.Errorf("%+v: runs %d decided %d fraction %v mean %v", c, c.Runs(), c.Decided(), c.Fraction(), c.MeanDelta())
	}
	if e := (Cell{Inconclusive: 2}); !math.IsNaN(e.Fraction()) || !math.IsNaN(e.MeanDelta()) {
		t.Error("an all-inconclusive cell has a fraction or a mean")
	}
}

func TestLatexHelpers(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"weight_decay", `weight\_decay`}, {"a&b%c#d$", `a\&b\%c\#d\$`}, {"Δ ≤ 1", `$\Delta$ $\le$ 1`},
	} {
		if got := latexEscape(c.in); got != c.want {
			t.Errorf("latexEscape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, c := range []struct {
		v    float64
		want string
	}{{0.0123, "0.0123"}, {1.5e-5, `$1.5\times10^{-5}$`}, {2, "2"}} {
		if got := latexNumber(c.v); got != c.want {
			t.Errorf("latexNumber(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}

// TestTableDaggerNote checks that the note explains † exactly when a cell is
// marked: a table with one cell holding a run monotone on the grid only has
// the mark on that cell and the sentence in the note; a table whose monotone
// runs are all certified has neither.
func TestTableDaggerNote(t *testing.T) {
	const sentence = "lower bound for continuous"
	for _, format := range []struct {
		name, mark string
	}{{FormatLaTeX, `$^\dagger$`}, {FormatMarkdown, "†"}} {
		for _, tc := range []struct {
			name  string
			cells []Cell
			marks int // cells marked †
		}{
			{"grid-only cell", []Cell{{NonMonotone: 1, DeltaSum: 0.5, CertifiedMonotone: 1}, {MonotoneOnGrid: 1, CertifiedMonotone: 2}}, 1},
			{"two grid-only cells", []Cell{{MonotoneOnGrid: 2}, {NonMonotone: 1, DeltaSum: 0.25, MonotoneOnGrid: 1}}, 2},
			{"all certified", []Cell{{NonMonotone: 1, DeltaSum: 0.5, CertifiedMonotone: 1}, {CertifiedMonotone: 2, Inconclusive: 1}}, 0},
		} {
			t.Run(format.name+"/"+tc.name, func(t *testing.T) {
				tab := &Table{
					Spec:      TableSpec{Cols: []string{"lr"}},
					RowLevels: [][]certify.Level{{}},
					ColLevels: [][]certify.Level{{0.01}, {0.1}},
					Cells:     [][]Cell{tc.cells},
				}
				for _, c := range tc.cells {
					tab.Runs += c.Runs()
				}
				var buf bytes.Buffer
				if err := tab.Write(&buf, format.name); err != nil {
					t.Fatal(err)
				}
				out := buf.String()
				body, note, ok := strings.Cut(out, "NM (n): fraction")
				if !ok {
					t.Fatalf("no note:\n%s", out)
				}
				if got := strings.Count(body, format.mark); got != tc.marks {
					t.Errorf("%d cells marked %s, want %d:\n%s", got, format.mark, tc.marks, out)
				}
				wantNote := tc.marks > 0
				if got := strings.Contains(note, sentence); got != wantNote {
					t.Errorf("note has the † sentence: %v, want %v:\n%s", got, wantNote, note)
				}
				if got := strings.Contains(note, format.mark); got != wantNote {
					t.Errorf("note has %s: %v, want %v:\n%s", format.mark, got, wantNote, note)
				}
			})
		}
	}
}
