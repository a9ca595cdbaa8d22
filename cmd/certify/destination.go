package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn/safetensors"
	"github.com/certify-mli/certify/rundir"
)

// examplesFlag is --examples: unset (the default evaluation set), 0 (every
// example the run has) or a count.
type examplesFlag struct {
	n   int
	set bool
}

func (e *examplesFlag) String() string {
	if e == nil || !e.set {
		return ""
	}
	return strconv.Itoa(e.n)
}

func (e *examplesFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("want a whole number, found %q", s)
	}
	e.n, e.set = n, true
	return nil
}

// load is the count for rundir.Read.
func (e examplesFlag) load() int {
	switch {
	case !e.set:
		return 0
	case e.n == 0:
		return rundir.AllExamples
	}
	return e.n
}

// defaultExamples is how many examples the default analysis evaluates on
// run (rundir.Read with 0), read without loading the data; -1 if unknown.
func defaultExamples(run *rundir.Run) int {
	dataPath := filepath.Join(run.Dir, "data.safetensors")
	if _, err := os.Stat(dataPath); err == nil {
		ts, _, err := safetensors.Read(dataPath)
		if err != nil {
			return -1
		}
		for _, t := range ts {
			if t.Name == "x" && len(t.Shape) > 0 {
				return t.Shape[0]
			}
		}
		return -1
	}
	if run.Config == nil {
		return -1
	}
	n := rundir.DefaultExamples
	if l := run.Config.Data.Limit; l > 0 && l < n {
		n = l
	}
	return n
}

// beyondTraining says, for a run trained on config.json's first data.limit
// examples and evaluated on more of them, that the report's loss is not
// the training loss; "" otherwise.
func beyondTraining(run *rundir.Run) string {
	if run.Config == nil || run.X == nil {
		return ""
	}
	if _, err := os.Stat(filepath.Join(run.Dir, "data.safetensors")); err == nil {
		return ""
	}
	n, _ := run.X.Dims()
	if l := run.Config.Data.Limit; l > 0 && n > l {
		return fmt.Sprintf("%d of the %d examples lie beyond the first %d the run was trained on (config.json data.limit): the loss is not the training loss", n-l, n, l)
	}
	return ""
}

// settingsParts names the settings of a report that differ from the
// default analysis's, as flag=value (flags without a value alone), in flag
// order: the name of its variants/NAME directory. defExamples is the
// default evaluation count (-1: unknown, then examples are not named).
func settingsParts(r *certify.Report, defExamples int) []string {
	var dflt analyzeFlags
	newAnalyzeFlagSet(&dflt)
	d := dflt.opt.WithDefaults()
	o := r.Options
	var parts []string
	add := func(differs bool, part string) {
		if differs {
			parts = append(parts, part)
		}
	}
	add(defExamples >= 0 && r.Examples != defExamples, fmt.Sprintf("examples=%d", r.Examples))
	add(o.Alphas != d.Alphas, fmt.Sprintf("alphas=%d", o.Alphas))
	add(o.Tolerance != d.Tolerance, fmt.Sprintf("tolerance=%g", o.Tolerance))
	add(o.GaussTol != d.GaussTol, fmt.Sprintf("gauss-tol=%g", o.GaussTol))
	add(o.GaussRelTol != d.GaussRelTol, fmt.Sprintf("gauss-rel-tol=%g", o.GaussRelTol))
	add(o.GaussMaxIntervals != d.GaussMaxIntervals, fmt.Sprintf("gauss-max-intervals=%d", o.GaussMaxIntervals))
	add(o.LossOnly, "loss-only")
	add(o.NoGeometry && !o.LossOnly, "no-geometry")
	add(!o.LossOnly && !o.Certificate, "no-certificate")
	add(o.Certificate && o.MaxIntervals != d.MaxIntervals, fmt.Sprintf("max-intervals=%d", o.MaxIntervals))
	add(o.Certificate && o.MinWidth != d.MinWidth, fmt.Sprintf("min-width=%g", o.MinWidth))
	add(o.Certificate && o.DeltaTol != d.DeltaTol, fmt.Sprintf("delta-tol=%g", o.DeltaTol))
	add(o.NoPerLayer && !o.LossOnly, "no-per-layer")
	add(r.Precision != "" && r.Precision != functionspace.Float64.String(), "precision="+r.Precision)
	add(r.BNPolicy == functionspace.BNRecompute.String() && o.BNReference != min(functionspace.DefaultBNReference, r.Examples), fmt.Sprintf("bn-reference=%d", o.BNReference))
	return parts
}

// settingsOf is what makes two reports comparable: the recorded options
// (without the data-dependent count), the examples, the BatchNorm policy
// and the precision, as JSON values by key.
func settingsOf(r *certify.Report) map[string]any {
	b, _ := json.Marshal(r.Options)
	m := map[string]any{}
	json.Unmarshal(b, &m)
	m["examples"] = r.Examples
	m["bn_policy"] = r.BNPolicy
	m["precision"] = r.Precision
	// Normalise numbers through JSON so that 5000 and 5000.0 compare equal.
	b, _ = json.Marshal(m)
	m = map[string]any{}
	json.Unmarshal(b, &m)
	return m
}

// settingsDiff lists the settings in which old and new differ, as
// "key old → new"; empty when they agree.
func settingsDiff(old, new *certify.Report) []string {
	a, b := settingsOf(old), settingsOf(new)
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var diff []string
	for k := range keys {
		if !reflect.DeepEqual(a[k], b[k]) {
			diff = append(diff, fmt.Sprintf("%s %s → %s", k, jsonText(a[k]), jsonText(b[k])))
		}
	}
	sort.Strings(diff)
	return diff
}

func jsonText(v any) string {
	if v == nil {
		return "(unset)"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// reportDestination is where the analysis af of run, whose settings plan
// records, writes its report and figures: --out DIR (created); else the
// run directory's certificate.json for the default analysis (for a sweep
// point: the grid's), DIR/variants/NAME/variant.json for any other
// settings (reportLocation). A report already there made with other
// settings is never replaced: that is refused with the ways forward. The
// directory is checked writable, so that a read-only run directory fails
// before the analysis, not after it.
func reportDestination(af analyzeFlags, run *rundir.Run, plan *certify.Report) (dir, file string, err error) {
	if af.out != "" {
		dir = af.out
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", "", badInputf("--out %s: %v", dir, err)
		}
		file = filepath.Join(dir, "certificate.json")
	} else {
		var extra []string
		if !af.sweepPoint {
			extra = settingsParts(plan, defaultExamples(run))
		}
		if !af.sweepPoint && sameSettingsAsRunReport(af.run, plan) {
			dir, file = af.run, filepath.Join(af.run, "certificate.json")
		} else if dir, file, err = reportLocation(af.run, plan, af.sweepPoint, extra); err != nil {
			return "", "", badInputf("%v (analyse a read-only run directory with --out DIR)", err)
		}
	}
	if st, err := os.Stat(file); err == nil && st.IsDir() {
		return "", "", badInputf("%s is a directory; move it away or use --out DIR", file)
	}
	// A sweep point's stage directory is the sweep's own (checkExisting
	// vets finished points against the grid): a report left there by an
	// interrupted attempt is replaced.
	if !af.sweepPoint {
		if err := refuseOtherSettings(file, plan); err != nil {
			return "", "", err
		}
	}
	probe, err := os.CreateTemp(dir, ".certify-write-test*")
	if err != nil {
		hint := " (analyse it with --out DIR, or print the report with --json)"
		if af.out != "" {
			hint = ""
		}
		return "", "", badInputf("cannot write into %s: %v%s", dir, err, hint)
	}
	probe.Close()
	os.Remove(probe.Name())
	return dir, file, nil
}

// sameSettingsAsRunReport reports whether runDir/certificate.json is a
// report made with exactly plan's settings (settingsDiff), e.g. a sweep
// point's analysis re-run with its "command": the analysis then refreshes
// that report in place rather than writing a variant beside it, so the
// refusal's advice "re-run with its settings" works.
func sameSettingsAsRunReport(runDir string, plan *certify.Report) bool {
	old, err := certify.ReadReport(filepath.Join(runDir, "certificate.json"))
	return err == nil && len(settingsDiff(old, plan)) == 0
}

// refuseOtherSettings refuses to replace the report at file when it was
// made with other settings than plan's, or cannot be read as a report.
func refuseOtherSettings(file string, plan *certify.Report) error {
	old, err := certify.ReadReport(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return badInputf("%s exists but cannot be read as a report (%v); it is not replaced: move it away or use --out DIR", file, err)
	}
	if d := settingsDiff(old, plan); len(d) > 0 {
		return badInputf("%s was made with other settings (%s); it is not replaced. Re-run with its settings (its \"command\" key), write elsewhere with --out DIR, print only with --json, or remove it first", file, strings.Join(d, "; "))
	}
	return nil
}
