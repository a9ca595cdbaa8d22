package certify

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/certify-mli/certify/rundir"
)

// This file gathers analysed runs for cross-run studies (`certify table`,
// `certify figures`): it finds the runs under a directory, reads each run's
// config.json and certificate.json, looks up configuration keys, and decides,
// at a chosen Δ threshold, whether each run counts as non-monotonic
// (THEORY.md §5; Lucas et al. 2021, Tables 1–3).

// StudyRun is one analysed run of a study: a directory holding a
// certificate.json (RUN_FORMAT.md, "The report") and, usually, the
// config.json that trained it (rundir.RunConfig).
type StudyRun struct {
	// Dir is the run directory as found under the study's root (the root
	// joined with the relative path).
	Dir string
	// Config is config.json decoded as generic JSON (numbers as float64),
	// nil when the directory has none.
	Config map[string]any
	// Report is certificate.json, or for a variant its variant.json.
	Report *Report
	// Variant is the name of the variant's directory (DIR/variants/NAME,
	// e.g. "bn=recompute_loss-only") when the report is a variant of the run
	// in Dir's parent's parent (LoadStudyVariants); "" for a run's own
	// certificate.json.
	Variant string
}

// BadRun is a run directory that could not be read: Path names the file at
// fault and Err says why.
type BadRun struct {
	Path string
	Err  error
}

func (b BadRun) Error() string { return b.Err.Error() }

// LoadStudy finds every directory under root (root included, recursively,
// following no symbolic links) that contains a file certificate.json, and
// reads its certificate.json and, when present, its config.json. Other files
// (a sweep's sweep.json, checkpoints) are ignored. Runs are returned sorted by
// Dir.
//
// A run is bad when its certificate.json or config.json cannot be read or is
// not valid JSON, or when the report has an unknown verdict or a negative or
// non-finite delta or tolerance. With skipBad false the first bad run is
// returned as the error (a BadRun naming the file); with skipBad true bad runs
// are left out and listed in skipped. It also returns an error when root
// cannot be walked or holds no run at all.
func LoadStudy(root string, skipBad bool) (runs []StudyRun, skipped []BadRun, err error) {
	return loadStudy(root, skipBad, false)
}

// LoadStudyVariants is LoadStudy that also reads every analysis variant of
// the runs found (RUN/variants/NAME/variant.json, written by `certify --run
// RUN` with other settings than the run's own analysis, e.g. --bn
// recompute) as a StudyRun of its own: Dir is the variant's directory,
// Config the run's config.json, Variant NAME. A variant directory whose run
// has no certificate.json is read too (its Config from RUN/config.json).
// The derived keys "variant" and "bn" (StudyRun.Value) tell the variants of
// a run apart in a table.
func LoadStudyVariants(root string, skipBad bool) (runs []StudyRun, skipped []BadRun, err error) {
	return loadStudy(root, skipBad, true)
}

// VariantReport is the report's file name in a variant's directory
// (RUN/variants/NAME/variant.json; cmd/certify's VariantReportFile).
const VariantReport = "variant.json"

// variantRun returns the run directory and the variant name of a variant
// report's directory RUN/variants/NAME, or ok false.
func variantRun(dir string) (run, name string, ok bool) {
	parent := filepath.Dir(dir)
	if filepath.Base(parent) != "variants" {
		return "", "", false
	}
	return filepath.Dir(parent), filepath.Base(dir), true
}

func loadStudy(root string, skipBad, variants bool) (runs []StudyRun, skipped []BadRun, err error) {
	var dirs []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if d.Name() == "certificate.json" {
			dirs = append(dirs, filepath.Dir(path))
		} else if _, _, ok := variantRun(filepath.Dir(path)); ok && variants && d.Name() == VariantReport {
			dirs = append(dirs, filepath.Dir(path))
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(dirs) == 0 {
		what := "a directory holding certificate.json"
		if variants {
			what += ", or a variant's RUN/variants/NAME/" + VariantReport
		}
		return nil, nil, fmt.Errorf("%s: no run directory (%s) found", root, what)
	}
	sort.Strings(dirs)
	dirs = slices.Compact(dirs) // a variant directory holding both reports
	for _, dir := range dirs {
		var (
			r   *StudyRun
			bad *BadRun
		)
		if run, name, ok := variantRun(dir); ok && variants && !fileExists(filepath.Join(dir, "certificate.json")) {
			r, bad = readStudyReport(dir, filepath.Join(dir, VariantReport), run)
			if r != nil {
				r.Variant = name
			}
		} else {
			r, bad = readStudyRun(dir)
		}
		if bad != nil {
			if !skipBad {
				return nil, nil, *bad
			}
			skipped = append(skipped, *bad)
			continue
		}
		runs = append(runs, *r)
	}
	if len(runs) == 0 {
		return nil, skipped, fmt.Errorf("%s: every run directory found is bad (%d skipped)", root, len(skipped))
	}
	return runs, skipped, nil
}

// readStudyRun reads one run directory, or says which file is bad.
func readStudyRun(dir string) (*StudyRun, *BadRun) {
	return readStudyReport(dir, filepath.Join(dir, "certificate.json"), dir)
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

// readStudyReport reads the report certPath of the run directory dir, with
// the config.json of cfgDir (dir itself, or for a variant its run's).
func readStudyReport(dir, certPath, cfgDir string) (*StudyRun, *BadRun) {
	rep, err := ReadReport(certPath)
	if err != nil {
		return nil, &BadRun{certPath, err}
	}
	if err := checkStudyReport(rep); err != nil {
		return nil, &BadRun{certPath, fmt.Errorf("%s: %w", certPath, err)}
	}
	r := &StudyRun{Dir: dir, Report: rep}
	cfgPath := filepath.Join(cfgDir, "config.json")
	b, err := os.ReadFile(cfgPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, &BadRun{cfgPath, err}
	default:
		if err := json.Unmarshal(b, &r.Config); err != nil {
			return nil, &BadRun{cfgPath, fmt.Errorf("%s: invalid JSON: %w", cfgPath, err)}
		}
		if r.Config == nil {
			return nil, &BadRun{cfgPath, fmt.Errorf("%s: want a JSON object, found null", cfgPath)}
		}
	}
	return r, nil
}

// checkStudyReport checks the fields a study reads.
func checkStudyReport(r *Report) error {
	switch r.Verdict {
	case CertifiedMonotone, MonotoneOnGrid, NonMonotone, Inconclusive:
	case "":
		return errors.New("verdict: missing")
	default:
		return fmt.Errorf("verdict: unknown value %q", r.Verdict)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"delta", r.Delta}, {"tolerance", r.Tolerance}} {
		if !(f.v >= 0) || math.IsInf(f.v, 0) {
			return fmt.Errorf("%s: want a finite value ≥ 0, found %v", f.name, f.v)
		}
	}
	return nil
}

// Value returns the value of a configuration key for the run, as decoded
// from JSON (float64, string, bool, or a map or slice for a compound value),
// and whether the run has one. A key is, in order of precedence:
//
//   - a key of config.json, nested keys joined by "." (e.g. "data.name");
//     "-" and "_" are interchangeable ("init-scale" is "init_scale"), so
//     that a sweep's flag name is also a key;
//   - "variant", the variant's name (StudyRun.Variant), "run" for a run's
//     own certificate.json, and "bn", the report's BatchNorm policy
//     (bn_policy: interpolate, recompute, or none for a model without
//     BatchNorm), which tell a run's analyses apart (LoadStudyVariants);
//   - a numeric or boolean field of rundir.RunConfig absent from config.json,
//     which has its zero value (config.json omits zero values, e.g.
//     "momentum": 0 or "batchnorm": false);
//   - "depth", the number of hidden layers of the "arch" widths
//     (784-256-256-10 has depth 2), and "width", the largest hidden width
//     (256; absent when depth is 0); "bottleneck", the smallest hidden
//     width (an autoencoder's code size h: 16 for 784-512-16-512-784).
func (r *StudyRun) Value(key string) (any, bool) {
	if v, ok := lookupKey(r.Config, key); ok {
		return v, true
	}
	alt := strings.ReplaceAll(key, "-", "_")
	if v, ok := lookupKey(r.Config, alt); ok {
		return v, true
	}
	if v, ok := configZero(alt); ok {
		return v, true
	}
	switch key {
	case "variant":
		if r.Variant == "" {
			return "run", true
		}
		return r.Variant, true
	case "bn":
		if r.Report == nil || r.Report.BNPolicy == "" {
			return nil, false
		}
		return r.Report.BNPolicy, true
	case "depth", "width", "bottleneck":
		arch, ok := r.Config["arch"].(string)
		if !ok {
			return nil, false
		}
		widths, err := archWidths(arch)
		if err != nil {
			return nil, false
		}
		hidden := widths[1 : len(widths)-1]
		if key == "depth" {
			return float64(len(hidden)), true
		}
		if len(hidden) == 0 {
			return nil, false
		}
		if key == "bottleneck" {
			b := hidden[0]
			for _, h := range hidden {
				b = min(b, h)
			}
			return float64(b), true
		}
		w := 0
		for _, h := range hidden {
			w = max(w, h)
		}
		return float64(w), true
	}
	return nil, false
}

// lookupKey follows a dotted key through nested JSON objects.
func lookupKey(m map[string]any, key string) (any, bool) {
	if m == nil {
		return nil, false
	}
	if v, ok := m[key]; ok {
		return v, true
	}
	head, rest, ok := strings.Cut(key, ".")
	if !ok {
		return nil, false
	}
	sub, ok := m[head].(map[string]any)
	if !ok {
		return nil, false
	}
	return lookupKey(sub, rest)
}

// configZero returns the zero value, in JSON-decoded form, of the numeric or
// boolean field of rundir.RunConfig named by the dotted JSON key.
func configZero(key string) (any, bool) {
	t := reflect.TypeFor[rundir.RunConfig]()
	parts := strings.Split(key, ".")
	for i, p := range parts {
		var f reflect.StructField
		found := false
		for j := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(j).Tag.Get("json"), ",")
			if name == p {
				f, found = t.Field(j), true
				break
			}
		}
		if !found {
			return nil, false
		}
		t = f.Type
		if i < len(parts)-1 {
			if t.Kind() != reflect.Struct {
				return nil, false
			}
			continue
		}
	}
	switch t.Kind() {
	case reflect.Bool:
		return false, true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return 0.0, true
	}
	return nil, false
}

// archWidths parses "784-256-10" (config.json's arch) into layer widths.
func archWidths(s string) ([]int, error) {
	parts := strings.Split(s, "-")
	if len(parts) < 2 {
		return nil, fmt.Errorf("arch %q: want at least an input and an output width", s)
	}
	w := make([]int, len(parts))
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("arch %q: %q is not a positive width", s, p)
		}
		w[i] = v
	}
	return w, nil
}

// TrainLoss returns config.json's train_loss (the final training loss) and
// whether it is present and a finite number.
func (r *StudyRun) TrainLoss() (float64, bool) {
	v, ok := r.Config["train_loss"].(float64)
	return v, ok && isFinite(v)
}

// Classify says how a report counts in a study at the Δ threshold τ: one of
// NonMonotone, CertifiedMonotone, MonotoneOnGrid or Inconclusive. A nil
// threshold means τ = r.Tolerance, and then the report's verdict is returned
// unchanged. Otherwise:
//
//   - inconclusive stays inconclusive (it is never counted as monotone);
//   - non_monotone stands when τ ≤ r.Tolerance (its witness rises by more
//     than the tolerance);
//   - certified_monotone stands when τ ≥ r.Tolerance, or when r.DeltaBounds
//     is set and its upper bound is ≤ τ (the certificate bounds the
//     continuous Δ, THEORY.md §7);
//   - monotone_on_grid stands when τ ≥ r.Tolerance;
//   - in every other case the run is judged by its Δ (StudyDelta: the grid
//     Δ, THEORY.md §5, the paper's measure, or the continuous or certified
//     Δ when the grid missed the rise): NonMonotone when Δ > τ, else
//     MonotoneOnGrid.
//
// So a run counts as non-monotonic when its verdict is non_monotone at a
// tolerance no smaller than τ, or when its grid Δ exceeds τ.
func Classify(r *Report, threshold *float64) Verdict {
	if threshold == nil {
		return r.Verdict
	}
	tau := *threshold
	switch r.Verdict {
	case Inconclusive:
		return Inconclusive
	case NonMonotone:
		if tau <= r.Tolerance {
			return NonMonotone
		}
	case CertifiedMonotone:
		if tau >= r.Tolerance || (r.DeltaBounds != nil && r.DeltaBounds[1] <= tau) {
			return CertifiedMonotone
		}
	case MonotoneOnGrid:
		if tau >= r.Tolerance {
			return MonotoneOnGrid
		}
	}
	if d, _ := StudyDelta(r); d > tau {
		return NonMonotone
	}
	return MonotoneOnGrid
}

// StudyFilter selects the runs of a study and the threshold they are judged at.
type StudyFilter struct {
	// Threshold is the Δ threshold τ of Classify; nil means each report's
	// own tolerance.
	Threshold *float64
	// MaxTrainLoss, when not nil, keeps only runs whose config.json
	// train_loss is ≤ *MaxTrainLoss (the paper studied runs that fit their
	// training set); runs without a finite train_loss are left out.
	MaxTrainLoss *float64
}

// Apply returns the runs f keeps, in order, and how many it left out
// because their train_loss was above the maximum (above) or missing or
// non-finite (missing).
func (f StudyFilter) Apply(runs []StudyRun) (kept []StudyRun, above, missing int) {
	for _, r := range runs {
		if f.MaxTrainLoss != nil {
			l, ok := r.TrainLoss()
			if !ok {
				missing++
				continue
			}
			if l > *f.MaxTrainLoss {
				above++
				continue
			}
		}
		kept = append(kept, r)
	}
	return kept, above, missing
}

// Level is a value of a configuration key shared by a group of runs, as
// decoded from JSON; nil means the runs have no value for the key.
type Level = any

// FormatLevel spells a level: numbers with up to 12 significant digits
// (0.1·3 is "0.3"), "n/a" for a missing value, compound values as JSON.
func FormatLevel(v Level) string {
	switch x := v.(type) {
	case nil:
		return "n/a"
	case float64:
		return strconv.FormatFloat(x, 'g', 12, 64)
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// CompareLevels orders levels: numbers numerically, false before true,
// strings and compound values by their spelling, numbers before booleans
// before strings, and missing values last.
func CompareLevels(a, b Level) int {
	rank := func(v Level) int {
		switch v.(type) {
		case float64:
			return 0
		case bool:
			return 1
		case nil:
			return 3
		}
		return 2
	}
	ra, rb := rank(a), rank(b)
	if ra != rb {
		return ra - rb
	}
	switch x := a.(type) {
	case float64:
		y := b.(float64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case nil:
		return 0
	}
	return strings.Compare(FormatLevel(a), FormatLevel(b))
}

// CompareTuples orders level tuples lexicographically by CompareLevels.
func CompareTuples(a, b []Level) int {
	for i := range min(len(a), len(b)) {
		if c := CompareLevels(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// LevelsOf returns the run's levels for keys.
func (r *StudyRun) LevelsOf(keys []string) []Level {
	out := make([]Level, len(keys))
	for i, k := range keys {
		out[i], _ = r.Value(k)
	}
	return out
}

// CheckKeys returns an error naming the first key that no run has a value
// for (a misspelt key), listing the keys of the first run's config.json.
func CheckKeys(runs []StudyRun, keys []string) error {
	for _, k := range keys {
		found := false
		for i := range runs {
			if _, ok := runs[i].Value(k); ok {
				found = true
				break
			}
		}
		if !found {
			var have []string
			for i := range runs {
				if runs[i].Config != nil {
					for name := range runs[i].Config {
						have = append(have, name)
					}
					break
				}
			}
			sort.Strings(have)
			return fmt.Errorf("no run has a value for key %q (config.json keys: %s; derived: depth, width, bottleneck, variant, bn)", k, strings.Join(have, ", "))
		}
	}
	return nil
}

// Sources of StudyDelta.
const (
	DeltaFromGrid       = "grid"
	DeltaFromContinuous = "continuous"
	DeltaFromCertified  = "certified"
	DeltaFromWitness    = "witness"
)

// StudyDelta is the Δ a study's tables and figures show for a run, and
// where it comes from: the grid Δ (Report.Delta, the paper's measure)
// whenever it is positive; when the grid saw no rise but the analysis found
// one between grid points, the continuous Δ (delta_continuous), else the
// certificate's lower bound (delta_bounds[0]), else the witness's rise —
// the first of these that is finite and positive (THEORY.md §5, §7).
// Otherwise the grid Δ (0). A source other than DeltaFromGrid is marked in
// the outputs: without it a non-monotone run would sit on the Δ = 0 line.
func StudyDelta(r *Report) (float64, string) {
	if r.Delta > 0 || math.IsNaN(r.Delta) {
		return r.Delta, DeltaFromGrid
	}
	pos := func(v float64) bool { return v > 0 && !math.IsInf(v, 0) }
	if pos(r.DeltaContinuous) {
		return r.DeltaContinuous, DeltaFromContinuous
	}
	if r.DeltaBounds != nil && pos(r.DeltaBounds[0]) {
		return r.DeltaBounds[0], DeltaFromCertified
	}
	if r.Witness != nil && pos(r.Witness.Rise) {
		return r.Witness.Rise, DeltaFromWitness
	}
	return r.Delta, DeltaFromGrid
}

// isFinite reports whether v is neither NaN nor ±Inf.
func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
