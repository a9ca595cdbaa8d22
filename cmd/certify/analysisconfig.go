package main

import (
	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/functionspace"
)

// analysisConfig is the analysis of one run as a typed configuration: every
// setting of `certify --run DIR` except where it reads and writes (--run,
// --out) and how it prints (--json, --quiet). Its keys (the fields' `flag`
// tags, internal/keyed) are the analysis flags' names, and they are what a
// sweep grid's "analysis" section sets: a grid value is parsed into a
// field here, never through the flag set. Adding an analysis flag means
// adding its field here with the flag's default and a line in apply;
// TestAnalysisFlagsAreConfigKeys fails until both agree.
type analysisConfig struct {
	Examples          examplesFlag `flag:"examples"`
	Alphas            int          `flag:"alphas"`
	Tolerance         float64      `flag:"tolerance"`
	GaussTol          float64      `flag:"gauss-tol"`
	GaussRelTol       float64      `flag:"gauss-rel-tol"`
	GaussMaxIntervals int          `flag:"gauss-max-intervals"`
	LossOnly          bool         `flag:"loss-only"`
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

// defaultAnalysisConfig returns the defaults of the analysis flags
// (newAnalyzeFlagSet, addVariantFlags).
func defaultAnalysisConfig() analysisConfig {
	return analysisConfig{
		Alphas:            50,
		GaussTol:          1e-4,
		GaussRelTol:       1e-3,
		GaussMaxIntervals: 4096,
		Chunk:             1000,
		MaxIntervals:      4096,
		ExampleIntervals:  32,
		MinWidth:          1e-9,
		DeltaTol:          certify.DefaultDeltaTol,
		AccuracyIntervals: 512,
		BN:                functionspace.BNInterpolate.String(),
		BNReference:       functionspace.DefaultBNReference,
		Precision:         functionspace.Float64.String(),
		Interpolate:       "all",
		Layer:             -1,
		From:              "init",
		Labels:            "trained",
	}
}

// apply sets af's analysis settings to c's, as parsing the flags of the
// same values would; af's --run, --out, --json and --quiet are left as
// they are.
func (c analysisConfig) apply(af *analyzeFlags) {
	af.examples = c.Examples
	af.opt.Alphas = c.Alphas
	af.opt.Tolerance = c.Tolerance
	af.opt.GaussTol = c.GaussTol
	af.opt.GaussRelTol = c.GaussRelTol
	af.opt.GaussMaxIntervals = c.GaussMaxIntervals
	af.opt.LossOnly = c.LossOnly
	af.workers = c.Workers
	af.chunk = c.Chunk
	af.noFigs = c.NoFigures
	af.noCert = c.NoCertificate
	af.opt.MaxIntervals = c.MaxIntervals
	af.opt.ExampleIntervals = c.ExampleIntervals
	af.opt.MinWidth = c.MinWidth
	af.opt.DeltaTol = c.DeltaTol
	af.opt.AccuracyIntervals = c.AccuracyIntervals
	af.bn = c.BN
	af.bnRef = c.BNReference
	af.prec = c.Precision
	af.variant.interpolate = c.Interpolate
	af.variant.layer = c.Layer
	af.variant.hold = c.Hold
	af.variant.from = c.From
	af.variant.labels = c.Labels
	af.opt.NoPerLayer = c.NoPerLayer
}
