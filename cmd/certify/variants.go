package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/rundir"
)

// variantFlags are the flags of `certify --run` that choose which line is
// analysed (certify.Variant, THEORY.md §8) and on which labels.
type variantFlags struct {
	interpolate string
	layer       int
	hold        string
	from        string
	labels      string
}

// addVariantFlags registers the variant flags on the analysis flag set.
func addVariantFlags(fs *flag.FlagSet, vf *variantFlags, opt *certify.Options) {
	fs.StringVar(&vf.interpolate, "interpolate", "all", "tensors that move from the start to θT: all, weights (every *.weight) or biases (every *.bias; Wang et al. 2023's plateau); the rest are held (see --hold)")
	fs.IntVar(&vf.layer, "layer", -1, "move only this state_dict layer index (Vlaar & Frankle 2022's layer-wise interpolation; with --interpolate, only that kind in that layer); -1: every layer")
	fs.StringVar(&vf.hold, "hold", "", "where the tensors that do not move stay: final (θT, the default when some are held) or init (the start)")
	fs.StringVar(&vf.from, "from", "init", "start of the line: init (the run's init.safetensors) or a checkpoint file, e.g. checkpoints/step-K.safetensors (relative paths are also looked up in the run directory) or another run's init.safetensors")
	fs.StringVar(&vf.labels, "labels", "trained", "labels of a run trained with --label-noise: trained (the corrupted ones it was trained on: its training loss) or clean (the dataset's)")
	fs.BoolVar(&opt.NoPerLayer, "no-per-layer", false, "skip the per-layer contributions to L′ (one pass per layer and grid α)")
}

// variant returns the certify.Variant the flags name.
func (vf variantFlags) variant() certify.Variant {
	v := certify.Variant{Hold: vf.hold}
	if vf.interpolate != "all" {
		v.Interpolate = vf.interpolate
	}
	if vf.layer >= 0 {
		l := vf.layer
		v.Layer = &l
	}
	if vf.from != "init" {
		v.From = vf.from
	}
	return v
}

// applyVariant builds the endpoints of the line the flags choose (the run's
// θ0 → θT by default) and switches the run to clean labels when asked. It
// records the variant and the labels in opt, so the report states them.
// Errors are bad input.
func applyVariant(run *rundir.Run, vf variantFlags, opt *certify.Options) (start, end nn.State, err error) {
	switch vf.labels {
	case "trained":
	case "clean":
		opt.Labels = "clean"
		if run.CleanLabels != nil {
			run.Targets = nn.Targets{Labels: run.CleanLabels}
			run.DataSource += " (evaluated on the clean labels)"
		}
	default:
		return nil, nil, badInputf("--labels: want trained or clean, found %q", vf.labels)
	}
	if vf.layer < -1 {
		return nil, nil, badInputf("--layer %d: want a layer index, or -1 for every layer", vf.layer)
	}
	v := vf.variant()
	if v.IsDefault() {
		return run.Theta0, run.ThetaT, nil
	}
	start, end, err = certify.Endpoints(run, v)
	if err != nil {
		return nil, nil, badInput(err)
	}
	opt.Variant = &v
	return start, end, nil
}

// printVariant adds the variant's lines to the summary: the line followed
// and the measurements of THEORY.md §8.
func printVariant(w io.Writer, r *certify.Report) {
	if v := r.Options.Variant; v != nil {
		fmt.Fprintf(w, "  line               %s\n", v)
	}
	// plateau_length bounds the accuracy from above only (it may fall on
	// the plateau: certify.PlateauLength), so the line says "≤", not the
	// two-sided "flat (±)" of certified_plateau
	plateau := fmt.Sprintf("accuracy ≤ its α = 0 value + %g for α ≤ %.3f", r.Options.PlateauTolerance, r.PlateauLength)
	if r.PlateauLength == 0 {
		plateau = fmt.Sprintf("accuracy above its α = 0 value + %g from the first grid step", r.Options.PlateauTolerance)
	}
	fmt.Fprintf(w, "  plateau, barrier   %s; loss above its chord by at most %s\n", plateau, fnum("%.4g", r.BarrierHeight))
}

// VariantReportFile is the report's name in a variant's directory: not
// certificate.json, so that `certify table` and `certify figures`, which
// take every directory holding a certificate.json for a run, do not count a
// variant as a run of its own (unless `certify table --variants` asks
// for them: certify.LoadStudyVariants).
const VariantReportFile = certify.VariantReport

// reportLocation is where the analysis writes its report and figures: the
// run directory and its certificate.json for the run's own line on the
// labels it was trained on; otherwise DIR/variants/NAME/variant.json, NAME
// spelling the variant's flags (e.g. "interpolate=biases_layer=3", or
// "bn=recompute" for BatchNorm statistics recomputed along the line, whose
// path differs from the run's own), created if needed, so that a variant
// never replaces the run's certificate. A sweep point (sweepPoint) whose
// grid asks for --bn recompute keeps it in certificate.json: there the
// policy is the study's analysis, not a variant of it. extra are further
// parts of NAME (settingsParts: other analysis settings than the
// default's, e.g. "loss-only" or "examples=30000").
func reportLocation(runDir string, r *certify.Report, sweepPoint bool, extra []string) (dir, file string, err error) {
	opt := r.Options
	var parts []string
	if r.BNPolicy == functionspace.BNRecompute.String() && !sweepPoint {
		parts = append(parts, "bn="+r.BNPolicy)
	}
	if v := opt.Variant; v != nil {
		if v.From != "" {
			parts = append(parts, "from="+v.From)
		}
		if v.Interpolate != "" {
			parts = append(parts, "interpolate="+v.Interpolate)
		}
		if v.Layer != nil {
			parts = append(parts, fmt.Sprintf("layer=%d", *v.Layer))
		}
		if v.Hold != "" {
			parts = append(parts, "hold="+v.Hold)
		}
	}
	if opt.Labels != "" {
		parts = append(parts, "labels="+opt.Labels)
	}
	parts = append(parts, extra...)
	if len(parts) == 0 {
		return runDir, filepath.Join(runDir, "certificate.json"), nil
	}
	name := strings.Map(func(r rune) rune {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._=+-", r)) {
			return r
		}
		return '-'
	}, strings.Join(parts, "_"))
	dir = filepath.Join(runDir, "variants", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	return dir, filepath.Join(dir, VariantReportFile), nil
}
