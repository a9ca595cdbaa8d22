package presentation

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/certify-mli/certify/certify"
)

// This file aggregates the runs of a study into a table like Lucas et al.
// (2021), Tables 1–3: for each cell, a group of runs sharing the values of
// the row and column keys, the fraction of runs that are non-monotonic at the
// Δ threshold and the mean Δ over those runs (THEORY.md §5).

// TableSpec says how to lay out a study table.
type TableSpec struct {
	// Rows and Cols are configuration keys (StudyRun.Value); each distinct
	// tuple of their values is a row or a column. No key makes a single
	// row or column holding every run.
	Rows, Cols []string
	certify.StudyFilter
}

// Cell counts the runs of one cell of a table by class (Classify).
type Cell struct {
	NonMonotone, CertifiedMonotone, MonotoneOnGrid, Inconclusive int
	// DeltaSum is the sum of Δ (StudyDelta) over the non-monotonic runs;
	// OffGrid counts those whose Δ is not the grid's (the grid missed the
	// rise: continuous or certified Δ), marked in the outputs.
	DeltaSum float64
	OffGrid  int
}

// Runs is the number of runs in the cell, inconclusive ones included.
func (c Cell) Runs() int {
	return c.NonMonotone + c.CertifiedMonotone + c.MonotoneOnGrid + c.Inconclusive
}

// Decided is the number of runs whose class is known: non-monotonic,
// certified monotone or monotone on the grid (not inconclusive).
func (c Cell) Decided() int { return c.NonMonotone + c.CertifiedMonotone + c.MonotoneOnGrid }

// Fraction is NonMonotone / Decided, the fraction of decided runs that are
// non-monotonic; NaN when no run is decided. Inconclusive runs are in
// neither count. When MonotoneOnGrid > 0 it is a lower bound on the fraction
// over continuous α, since a bump can hide between grid points (THEORY.md §5).
func (c Cell) Fraction() float64 {
	if c.Decided() == 0 {
		return math.NaN()
	}
	return float64(c.NonMonotone) / float64(c.Decided())
}

// MeanDelta is the mean Δ (StudyDelta) over the non-monotonic runs; NaN
// when there are none.
func (c Cell) MeanDelta() float64 {
	if c.NonMonotone == 0 {
		return math.NaN()
	}
	return c.DeltaSum / float64(c.NonMonotone)
}

// Table is a study aggregated by BuildTable.
type Table struct {
	Spec TableSpec
	// RowLevels [R][len(Spec.Rows)] and ColLevels [C][len(Spec.Cols)] are
	// the distinct value tuples, sorted (numbers numerically, false before
	// true, missing values last); Cells is [R][C].
	RowLevels, ColLevels [][]certify.Level
	Cells                [][]Cell
	// Runs is the number of runs in the table; AboveMaxLoss and
	// NoTrainLoss count the runs left out by Spec.MaxTrainLoss.
	Runs, AboveMaxLoss, NoTrainLoss int
	// Variants is how many of the Runs are analysis variants of a run
	// (certify.StudyRun.Variant, from certify.LoadStudyVariants), stated
	// in the note so that n is not read as the number of trained networks.
	Variants int
	// Caption and Label are the LaTeX table's \caption and \label
	// (defaults from the keys when empty).
	Caption, Label string
	// MixedSettings lists the analysis settings that differ among the
	// table's runs ("examples 200, 600"), stated in the note: runs analysed
	// differently are not silently pooled.
	MixedSettings []string
}

// BuildTable groups runs into the cells of spec and counts each cell's runs
// by Classify at spec.Threshold, after spec's StudyFilter. It returns an error
// when a key of spec has no value in any run (a misspelt key), or when no run
// passes the filter.
func BuildTable(runs []certify.StudyRun, spec TableSpec) (*Table, error) {
	if err := certify.CheckKeys(runs, append(append([]string(nil), spec.Rows...), spec.Cols...)); err != nil {
		return nil, err
	}
	kept, above, missing := spec.Apply(runs)
	t := &Table{Spec: spec, Runs: len(kept), AboveMaxLoss: above, NoTrainLoss: missing}
	if len(kept) == 0 {
		return nil, fmt.Errorf("no run passes the filter (%d with train_loss above the maximum, %d without train_loss)", above, missing)
	}
	t.MixedSettings = mixedSettings(kept)
	for _, r := range kept {
		if r.Variant != "" {
			t.Variants++
		}
	}
	var rowOf, colOf []int
	t.RowLevels, rowOf = groupRuns(kept, spec.Rows)
	t.ColLevels, colOf = groupRuns(kept, spec.Cols)
	t.Cells = make([][]Cell, len(t.RowLevels))
	for i := range t.Cells {
		t.Cells[i] = make([]Cell, len(t.ColLevels))
	}
	for i, r := range kept {
		c := &t.Cells[rowOf[i]][colOf[i]]
		switch certify.Classify(r.Report, spec.Threshold) {
		case certify.NonMonotone:
			c.NonMonotone++
			d, src := certify.StudyDelta(r.Report)
			c.DeltaSum += d
			if src != certify.DeltaFromGrid {
				c.OffGrid++
			}
		case certify.CertifiedMonotone:
			c.CertifiedMonotone++
		case certify.MonotoneOnGrid:
			c.MonotoneOnGrid++
		default:
			c.Inconclusive++
		}
	}
	return t, nil
}

// mixedSettings lists, for each analysis setting whose value differs among
// runs, "name v1, v2, …" (values in first-seen order).
func mixedSettings(runs []certify.StudyRun) []string {
	type setting struct {
		name string
		of   func(r *certify.Report) string
	}
	settings := []setting{
		{"examples", func(r *certify.Report) string { return strconv.Itoa(r.Examples) }},
		{"grid α", func(r *certify.Report) string { return strconv.Itoa(len(r.Alphas)) }},
		{"tolerance", func(r *certify.Report) string { return strconv.FormatFloat(r.Tolerance, 'g', -1, 64) }},
		{"certificate", func(r *certify.Report) string { return strconv.FormatBool(r.Options.Certificate) }},
		{"loss only", func(r *certify.Report) string { return strconv.FormatBool(r.Options.LossOnly) }},
		{"BatchNorm", func(r *certify.Report) string { return r.BNPolicy }},
		{"precision", func(r *certify.Report) string { return r.Precision }},
	}
	var out []string
	for _, st := range settings {
		var vals []string
		seen := map[string]bool{}
		for _, r := range runs {
			if v := st.of(r.Report); !seen[v] {
				seen[v] = true
				vals = append(vals, v)
			}
		}
		if len(vals) > 1 {
			out = append(out, st.name+" "+strings.Join(vals, ", "))
		}
	}
	return out
}

// mixedText is the note's sentence on MixedSettings ("" when none).
func (t *Table) mixedText() string {
	if len(t.MixedSettings) == 0 {
		return ""
	}
	return "The runs were analysed with different settings (" + strings.Join(t.MixedSettings, "; ") + "). "
}

// groupRuns returns the sorted distinct level tuples of keys among runs and
// the index of each run's tuple.
func groupRuns(runs []certify.StudyRun, keys []string) ([][]certify.Level, []int) {
	tuples := make([][]certify.Level, len(runs))
	var levels [][]certify.Level
	for i := range runs {
		tuples[i] = runs[i].LevelsOf(keys)
		found := false
		for _, l := range levels {
			if certify.CompareTuples(l, tuples[i]) == 0 {
				found = true
				break
			}
		}
		if !found {
			levels = append(levels, tuples[i])
		}
	}
	sortTuples(levels)
	idx := make([]int, len(runs))
	for i, tu := range tuples {
		for j, l := range levels {
			if certify.CompareTuples(l, tu) == 0 {
				idx[i] = j
				break
			}
		}
	}
	return levels, idx
}

func sortTuples(ts [][]certify.Level) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && certify.CompareTuples(ts[j-1], ts[j]) > 0; j-- {
			ts[j-1], ts[j] = ts[j], ts[j-1]
		}
	}
}

// Table formats accepted by Table.Write.
const (
	FormatLaTeX    = "latex"
	FormatMarkdown = "markdown"
	FormatCSV      = "csv"
)

// Write writes the table in format FormatLaTeX, FormatMarkdown or FormatCSV,
// or returns an error for another format.
func (t *Table) Write(w io.Writer, format string) error {
	switch format {
	case FormatLaTeX:
		return t.WriteLaTeX(w)
	case FormatMarkdown:
		return t.WriteMarkdown(w)
	case FormatCSV:
		return t.WriteCSV(w)
	}
	return fmt.Errorf("unknown table format %q (want latex, markdown or csv)", format)
}

// WriteCSV writes one line per cell, with a header: a column per row key
// and per column key (named by the key) holding the cell's levels, then
// runs, non_monotone, certified_monotone, monotone_on_grid, inconclusive,
// fraction_non_monotone (Cell.Fraction) and mean_delta_non_monotone
// (Cell.MeanDelta), fractions and means in full precision and empty when
// NaN. Cells without runs are left out.
func (t *Table) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	head := append(append([]string(nil), t.Spec.Rows...), t.Spec.Cols...)
	head = append(head, "runs", "non_monotone", "certified_monotone", "monotone_on_grid", "inconclusive",
		"fraction_non_monotone", "mean_delta_non_monotone", "off_grid_delta_runs")
	if err := cw.Write(head); err != nil {
		return err
	}
	num := func(v float64) string {
		if math.IsNaN(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	for i, rl := range t.RowLevels {
		for j, cl := range t.ColLevels {
			c := t.Cells[i][j]
			if c.Runs() == 0 {
				continue
			}
			var rec []string
			for _, l := range rl {
				rec = append(rec, certify.FormatLevel(l))
			}
			for _, l := range cl {
				rec = append(rec, certify.FormatLevel(l))
			}
			rec = append(rec, strconv.Itoa(c.Runs()), strconv.Itoa(c.NonMonotone), strconv.Itoa(c.CertifiedMonotone),
				strconv.Itoa(c.MonotoneOnGrid), strconv.Itoa(c.Inconclusive), num(c.Fraction()), num(c.MeanDelta()), strconv.Itoa(c.OffGrid))
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// colTitle names a column group: "key = value, key = value", or "all runs".
func (t *Table) colTitle(j int, esc func(string) string) string {
	if len(t.Spec.Cols) == 0 {
		return "all runs"
	}
	parts := make([]string, len(t.Spec.Cols))
	for k, key := range t.Spec.Cols {
		parts[k] = esc(key) + " = " + esc(certify.FormatLevel(t.ColLevels[j][k]))
	}
	return strings.Join(parts, ", ")
}

// cellTexts returns a cell's three entries: "fraction (decided)" with a
// marker when some monotone runs are monotone on the grid only, the mean
// Δ, and the counts "certified/grid/inconclusive".
func cellTexts(c Cell, marker, offGrid string, delta func(float64) string) [3]string {
	if c.Runs() == 0 {
		return [3]string{"", "", ""}
	}
	frac := "–"
	if c.Decided() > 0 {
		frac = fmt.Sprintf("%.2f", c.Fraction())
	}
	frac += fmt.Sprintf(" (%d)", c.Decided())
	if c.MonotoneOnGrid > 0 {
		frac += marker
	}
	d := "–"
	if c.NonMonotone > 0 {
		d = delta(c.MeanDelta())
		if c.OffGrid > 0 {
			d += offGrid
		}
	}
	return [3]string{frac, d, fmt.Sprintf("%d/%d/%d", c.CertifiedMonotone, c.MonotoneOnGrid, c.Inconclusive)}
}

// hasGridOnly reports whether some cell has runs monotone on the grid only,
// the cells cellTexts marks † and the note explains.
func (t *Table) hasGridOnly() bool {
	for _, row := range t.Cells {
		for _, c := range row {
			if c.MonotoneOnGrid > 0 {
				return true
			}
		}
	}
	return false
}

// hasOffGrid reports whether some cell's mean Δ includes a Δ that is not
// the grid's (marked * and explained in the note).
func (t *Table) hasOffGrid() bool {
	for _, row := range t.Cells {
		for _, c := range row {
			if c.OffGrid > 0 {
				return true
			}
		}
	}
	return false
}

// offGridNote explains the * mark.
const offGridNote = "*: the grid missed the rise of some runs (grid Δ 0); their Δ is the continuous one, or the certificate's lower bound. "

// thresholdText describes the threshold and the filter for the notes.
func (t *Table) thresholdText() string {
	s := "A run is non-monotonic when its verdict is non_monotone at its own tolerance"
	if t.Spec.Threshold != nil {
		s = fmt.Sprintf("A run is non-monotonic when its grid Δ exceeds the threshold %g (or its verdict is non_monotone at a tolerance ≥ %g)",
			*t.Spec.Threshold, *t.Spec.Threshold)
	}
	s += fmt.Sprintf("; %d runs", t.Runs)
	if t.Variants > 0 {
		s += fmt.Sprintf(" (%d of them analysis variants of another run: its variants/NAME/variant.json)", t.Variants)
	}
	if t.Spec.MaxTrainLoss != nil {
		s += fmt.Sprintf(" with final training loss ≤ %g (%d above it and %d without train_loss left out)",
			*t.Spec.MaxTrainLoss, t.AboveMaxLoss, t.NoTrainLoss)
	}
	return s
}

// latexEscape escapes LaTeX's special characters in text mode.
func latexEscape(s string) string {
	r := strings.NewReplacer(`\`, `\textbackslash{}`, `&`, `\&`, `%`, `\%`, `$`, `\$`, `#`, `\#`, `_`, `\_`,
		`{`, `\{`, `}`, `\}`, `~`, `\textasciitilde{}`, `^`, `\textasciicircum{}`, `–`, `--`, `Δ`, `$\Delta$`, `≤`, `$\le$`, `≥`, `$\ge$`)
	return r.Replace(s)
}

// latexNumber writes v with 3 significant digits, a power of ten as
// $m\times10^{e}$.
func latexNumber(v float64) string {
	s := strconv.FormatFloat(v, 'g', 3, 64)
	m, e, ok := strings.Cut(s, "e")
	if !ok {
		return s
	}
	exp, _ := strconv.Atoi(e)
	return fmt.Sprintf(`$%s\times10^{%d}$`, m, exp)
}

// WriteLaTeX writes a booktabs table environment (needing
// \usepackage{booktabs} and \usepackage{graphicx}; the tabular is scaled
// down to \linewidth when wider, never up) with a caption and a label: one
// row per row tuple, and for each column tuple
// three columns: "NM (n)", the fraction of decided runs that are
// non-monotonic and their number, marked † when some monotone runs are
// monotone on the grid only (not certified); $\bar\Delta$, the mean grid Δ
// over the non-monotonic runs; and C/G/I, the numbers of certified
// monotone, monotone-on-grid and inconclusive runs. A note under the table
// explains the columns, explains † when some cell is marked, and states the
// threshold and filter.
func (t *Table) WriteLaTeX(w io.Writer) error {
	var b strings.Builder
	nr, nc := max(1, len(t.Spec.Rows)), len(t.ColLevels)
	fmt.Fprintf(&b, "%% certify table: %d runs; rows %s; columns %s; needs \\usepackage{booktabs,graphicx}\n", t.Runs,
		orAll(t.Spec.Rows), orAll(t.Spec.Cols))
	b.WriteString("\\begin{table}[tbp]\n\\centering\n")
	caption, label := t.Caption, t.Label
	if caption == "" {
		caption = fmt.Sprintf("Non-monotonic runs by %s (rows) and %s (columns), %s.", orAll(t.Spec.Rows), orAll(t.Spec.Cols), pluralRuns(t.Runs))
	}
	if label == "" {
		label = "tab:certify-" + labelName(strings.Join(t.Spec.Rows, "-")+"-by-"+strings.Join(t.Spec.Cols, "-"))
	}
	fmt.Fprintf(&b, "\\caption{%s}\n\\label{%s}\n", latexEscape(caption), label)
	b.WriteString("\\small\n\\setlength{\\tabcolsep}{4pt}\n")
	b.WriteString("\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n")
	b.WriteString("\\begin{tabular}{" + strings.Repeat("l", nr) + strings.Repeat("rrc", nc) + "}\n\\toprule\n")
	b.WriteString(strings.Repeat(" & ", nr-1))
	for j := range nc {
		fmt.Fprintf(&b, " & \\multicolumn{3}{c}{%s}", t.colTitle(j, latexEscape))
	}
	b.WriteString(" \\\\\n")
	for j := range nc {
		fmt.Fprintf(&b, "\\cmidrule(lr){%d-%d}", nr+3*j+1, nr+3*j+3)
	}
	b.WriteString("\n")
	if len(t.Spec.Rows) == 0 {
		b.WriteString("runs")
	} else {
		for i, k := range t.Spec.Rows {
			if i > 0 {
				b.WriteString(" & ")
			}
			b.WriteString(latexEscape(k))
		}
	}
	for range nc {
		b.WriteString(" & NM (n) & $\\bar\\Delta$ & C/G/I")
	}
	b.WriteString(" \\\\\n\\midrule\n")
	for i, rl := range t.RowLevels {
		if len(t.Spec.Rows) == 0 {
			b.WriteString("all")
		}
		for k, l := range rl {
			if k > 0 {
				b.WriteString(" & ")
			}
			b.WriteString(latexEscape(certify.FormatLevel(l)))
		}
		for j := range nc {
			for _, s := range cellTexts(t.Cells[i][j], "$^\\dagger$", "$^*$", latexNumber) {
				b.WriteString(" & " + strings.ReplaceAll(s, "–", "--"))
			}
		}
		b.WriteString(" \\\\\n")
	}
	b.WriteString("\\bottomrule\n\\end{tabular}}\n\n\\smallskip\n{\\footnotesize\n")
	b.WriteString("NM (n): fraction of the n decided runs that are non-monotonic; $\\bar\\Delta$: mean $\\Delta$ over them; " +
		"C/G/I: runs certified monotone / monotone on the grid only / inconclusive (inconclusive runs are not in n). ")
	if t.hasGridOnly() {
		b.WriteString("$^\\dagger$: some runs are monotone on the grid only, so the fraction is a lower bound for continuous $\\alpha$. ")
	}
	if t.hasOffGrid() {
		b.WriteString(latexEscape(offGridNote))
	}
	b.WriteString(latexEscape(t.mixedText()))
	b.WriteString(latexEscape(t.thresholdText()) + ".\\par}\n\\end{table}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func orAll(keys []string) string {
	if len(keys) == 0 {
		return "(none)"
	}
	return strings.Join(keys, ",")
}

// WriteMarkdown writes the table as a GitHub-flavoured Markdown table with
// the same columns as WriteLaTeX, and its note as a paragraph below.
func (t *Table) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	var head, align []string
	if len(t.Spec.Rows) == 0 {
		head, align = append(head, "runs"), append(align, ":--")
	}
	for _, k := range t.Spec.Rows {
		head, align = append(head, esc(k)), append(align, ":--")
	}
	for j := range t.ColLevels {
		title := t.colTitle(j, esc)
		head = append(head, title+": NM (n)", title+": mean Δ", title+": C/G/I")
		align = append(align, "--:", "--:", ":-:")
	}
	b.WriteString("| " + strings.Join(head, " | ") + " |\n")
	b.WriteString("| " + strings.Join(align, " | ") + " |\n")
	for i, rl := range t.RowLevels {
		var rec []string
		if len(t.Spec.Rows) == 0 {
			rec = append(rec, "all")
		}
		for _, l := range rl {
			rec = append(rec, esc(certify.FormatLevel(l)))
		}
		for j := range t.ColLevels {
			s := cellTexts(t.Cells[i][j], "†", "*", func(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) })
			rec = append(rec, s[:]...)
		}
		b.WriteString("| " + strings.Join(rec, " | ") + " |\n")
	}
	b.WriteString("\nNM (n): fraction of the n decided runs that are non-monotonic; mean Δ: mean Δ over them; " +
		"C/G/I: runs certified monotone / monotone on the grid only / inconclusive (inconclusive runs are not in n). ")
	if t.hasGridOnly() {
		b.WriteString("†: some runs are monotone on the grid only, so the fraction is a lower bound for continuous α. ")
	}
	if t.hasOffGrid() {
		b.WriteString(strings.ReplaceAll(offGridNote, "*", "\\*"))
	}
	b.WriteString(t.mixedText())
	b.WriteString(t.thresholdText() + ".\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func pluralRuns(n int) string {
	if n == 1 {
		return "1 run"
	}
	return fmt.Sprintf("%d runs", n)
}
