package main

import (
	"fmt"

	"github.com/certify-mli/certify/internal/keyed"
)

// analysisConfig is the analysis of one run as a typed configuration: every
// setting of `certify --run DIR` except where it reads and writes (--run,
// --out) and how it prints (--json, --quiet). Its keys (the fields' `flag`
// tags, internal/keyed) are the analysis flags' names, and they are what a
// sweep grid's "analysis" section sets: a grid value is parsed into a
// field here, never through the flag set. Adding an analysis flag means
// adding its field here (the default and the way to analyzeFlags are read
// from the flag set); TestAnalysisFlagsAreConfigKeys fails until every
// analysis flag has its key.
type analysisConfig struct {
	Examples          examplesFlag `flag:"examples"`
	Alphas            int          `flag:"alphas"`
	Tolerance         float64      `flag:"tolerance"`
	GaussTol          float64      `flag:"gauss-tol"`
	GaussRelTol       float64      `flag:"gauss-rel-tol"`
	GaussMaxIntervals int          `flag:"gauss-max-intervals"`
	LossOnly          bool         `flag:"loss-only"`
	NoGeometry        bool         `flag:"no-geometry"`
	Workers           int          `flag:"workers"`
	Chunk             int          `flag:"chunk"`
	NoFigures         bool         `flag:"no-figures"`
	NoCertificate     bool         `flag:"no-certificate"`
	MaxIntervals      int          `flag:"max-intervals"`
	ExampleIntervals  int          `flag:"example-intervals"`
	MinWidth          float64      `flag:"min-width"`
	DeltaTol          float64      `flag:"delta-tol"`
	AccuracyIntervals int          `flag:"accuracy-intervals"`
	BN                string       `flag:"bn"`
	BNReference       int          `flag:"bn-reference"`
	Precision         string       `flag:"precision"`
	// The line analysed (variants.go).
	Interpolate string `flag:"interpolate"`
	Layer       int    `flag:"layer"`
	Hold        string `flag:"hold"`
	From        string `flag:"from"`
	Labels      string `flag:"labels"`
	NoPerLayer  bool   `flag:"no-per-layer"`
}

// defaultAnalysisConfig returns the defaults of the analysis flags, read
// from the flag set itself (newAnalyzeFlagSet, addVariantFlags: each
// flag's DefValue parsed into its field), so a default is written once,
// where the flag is registered. A field whose key is not an analysis flag
// panics: that is a programming error TestAnalysisFlagsAreConfigKeys
// reports.
func defaultAnalysisConfig() analysisConfig {
	var af analyzeFlags
	fs := newAnalyzeFlagSet(&af)
	var c analysisConfig
	for _, k := range keyed.Keys(&c) {
		f := fs.Lookup(k)
		if f == nil {
			panic("analysisConfig key " + k + " is not an analysis flag")
		}
		if f.DefValue == "" && keyed.Kind(&c, k) != "string" {
			continue // unset by default (--examples): the zero field
		}
		if err := keyed.Set(&c, k, f.DefValue); err != nil {
			panic("analysisConfig key " + k + ": flag default " + f.DefValue + ": " + err.Error())
		}
	}
	return c
}

// flags returns the analysis flags as parsing c's values would set them:
// every key whose value differs from its flag's default is set through
// the flag set (flag.FlagSet.Set), so each value reaches the same field
// the command line would reach, by the same parser, with no list of
// fields to keep in step with the flags. --run, --out, --json and --quiet
// keep their defaults. Errors: a value the flag refuses (a key and value
// that keyed.Set accepted always parse; the error is a guard).
func (c analysisConfig) flags() (analyzeFlags, error) {
	var af analyzeFlags
	fs := newAnalyzeFlagSet(&af)
	for _, k := range keyed.Keys(&c) {
		v, err := keyed.Get(&c, k)
		if err != nil {
			return af, err
		}
		if f := fs.Lookup(k); f != nil && v == f.DefValue {
			continue
		}
		if err := fs.Set(k, v); err != nil {
			return af, fmt.Errorf("analysis --%s %s: %w", k, v, err)
		}
	}
	return af, nil
}
