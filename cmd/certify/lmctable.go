package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/internal/atomicfile"
	"github.com/certify-mli/certify/presentation"
)

// lmcTableCmd is `certify lmc-table DIR...`: the table across pairs of the
// lmc.json files at or below each DIR (presentation.WriteLMCTable).
func lmcTableCmd(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("lmc-table", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "latex", "output format: latex (booktabs), markdown or csv")
	out := fs.String("out", "", "write the table to FILE, atomically (default: stdout)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: certify lmc-table DIR... [--format latex|markdown|csv] [--out FILE]\n\n"+
			"One row per certify lmc result (every lmc.json at or below each DIR), sorted by spawn step k:\n"+
			"the losses at A and B, the grid barriers (both definitions), the midpoint gap, the error barrier,\n"+
			"the certified barrier bounds (not computed while null) and the barrier before alignment.\n"+
			"certify table DIR does the same when DIR holds lmc.json files and no certificate.json.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	dirs, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		return badInputf("lmc-table: want at least one DIR holding lmc.json (certify lmc-table DIR... )")
	}
	return writeLMCTable(dirs, *format, *out)
}

// writeLMCTable loads the pairs under dirs and writes their table in
// format to out (stdout when empty).
func writeLMCTable(dirs []string, format, out string) error {
	switch format {
	case presentation.FormatLaTeX, presentation.FormatMarkdown, presentation.FormatCSV:
	default:
		return badInputf("lmc-table: --format: want latex, markdown or csv, found %q", format)
	}
	pairs, err := certify.LoadLMCPairs(dirs)
	if err != nil {
		return badInputf("lmc-table: %v", err)
	}
	var buf bytes.Buffer
	if err := presentation.WriteLMCTable(&buf, pairs, format); err != nil {
		return err
	}
	if out == "" {
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	return atomicfile.Write(out, buf.Bytes())
}

// lmcOnly reports whether dir holds lmc.json files (certify lmc results) at
// or below it and no certificate.json (a run's report): then certify table
// and certify figures treat it as a set of pairs, not a study of runs.
func lmcOnly(dir string) bool {
	lmc, cert := false, false
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		switch d.Name() {
		case certify.LMCReportFile:
			lmc = true
		case "certificate.json":
			cert = true
			return fs.SkipAll
		}
		return nil
	})
	return lmc && !cert
}

// lmcFigures is certify figures on a set of lmc results: the instability
// plot (presentation.WriteInstabilityFigure) into out.
func lmcFigures(dir, out string, formats []string) error {
	pairs, err := certify.LoadLMCPairs([]string{dir})
	if err != nil {
		return badInputf("figures: %v", err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	n, err := presentation.WriteInstabilityFigure(out, pairs, dir, formats)
	if err != nil {
		return badInputf("figures: %s: %v", dir, err)
	}
	if skipped := len(pairs) - n; skipped > 0 {
		fmt.Fprintf(stderr, "certify: figures: %d lmc.json not between two spawns of one parent at one step; not drawn\n", skipped)
	}
	fmt.Fprintf(stdout, "wrote %s for %d pairs of spawns to %s\n", presentation.FigureInstability, n, out)
	return nil
}

// lmcOnlyFlags refuses, naming it, a flag set on fs other than allowed: the
// study flags of certify table and figures (rows, filters, heatmap keys)
// do not apply to lmc results.
func lmcOnlyFlags(fs *flag.FlagSet, allowed ...string) error {
	var bad string
	fs.Visit(func(f *flag.Flag) {
		if bad == "" && !slices.Contains(allowed, f.Name) {
			bad = f.Name
		}
	})
	if bad != "" {
		return badInputf("%s: --%s does not apply to certify lmc results (lmc.json, no certificate.json); they take only --%s", fs.Name(), bad, strings.Join(allowed, " and --"))
	}
	return nil
}
