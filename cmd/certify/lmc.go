package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/align"
	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/atomicfile"
	"github.com/certify-mli/certify/internal/progress"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/nn/dataset"
	"github.com/certify-mli/certify/nn/npz"
	"github.com/certify-mli/certify/nn/safetensors"
	"github.com/certify-mli/certify/presentation"
	"github.com/certify-mli/certify/rundir"
)

// lmcFlags are the flags of certify lmc A B.
type lmcFlags struct {
	model          string
	aState, bState string
	split          string
	data           string
	examples       int
	alphas         int
	bn             string
	align          string
	out            string
	json           bool
	noFigures      bool
	force          bool
	noCert         bool
	deltaTol       float64
	maxIntervals   int
	accIntervals   int
	workers        int
	layers, hold   string
}

// lmcEnd is one endpoint of the line: its architecture and its state.
type lmcEnd struct {
	ep       certify.LMCEndpoint
	specPath string
	spec     *nn.Spec
	model    *nn.Model
	state    nn.State
	isDir    bool
	// checkErr is the state's mismatch with the model (Model.Check), kept
	// so that a checkpoint file that does not fit --model is reported
	// against the other end's checkpoint (checkpointMismatch).
	checkErr error
}

func lmcCmd(ctx context.Context, args []string) (err error) {
	var f lmcFlags
	fs := flag.NewFlagSet("lmc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.model, "model", "", "model.json of A and/or B when they are checkpoint files (.safetensors or .npz); a run directory uses its own")
	fs.StringVar(&f.aState, "a-state", "final", "which checkpoint of run directory A: init (θ0) or final (θT)")
	fs.StringVar(&f.bState, "b-state", "final", "which checkpoint of run directory B: init (θ0) or final (θT)")
	fs.StringVar(&f.split, "split", "train", "data to evaluate on: train (the run's evaluation data) or test (the held-out split of config.json's dataset)")
	fs.StringVar(&f.data, "data", "", "evaluation data file (data.safetensors or .npz: x, y) instead of A's (or B's) run directory's")
	fs.IntVar(&f.examples, "examples", 0, "first N examples (0: as certify --run: all of data.safetensors, or the first 5000 of the dataset; with --split test, the whole test split)")
	fs.IntVar(&f.alphas, "alphas", 51, "number of equally spaced α from 0 to 1 (51 puts α = ½ on the grid)")
	fs.StringVar(&f.bn, "bn", "interpolate", "BatchNorm along the line: interpolate (running statistics like parameters) or recompute (statistics of a reference batch at every α)")
	fs.StringVar(&f.align, "align", "none", "none, or weights: permute B's hidden units to match A first (weight matching, THEORY.md §10)")
	fs.StringVar(&f.out, "out", "", "directory for lmc.json, lmc.png, summary.tex (and the aligned checkpoint); created if missing")
	fs.BoolVar(&f.json, "json", false, "print the report as JSON on stdout instead of the summary (with --out DIR: also write it there)")
	fs.BoolVar(&f.noFigures, "no-figures", false, "do not draw lmc.png")
	fs.BoolVar(&f.force, "force", false, "replace an lmc.json already in --out DIR")
	fs.BoolVar(&f.noCert, "no-certificate", false, "skip the certified barrier and accuracy bounds (barrier_bounds, barrier_witness, accuracy_bounds null)")
	fs.Float64Var(&f.deltaTol, "delta-tol", 1e-3, "certified barrier: stop once upper − lower ≤ this times max(|L(A)|, |L(B)|) (relative width of barrier_bounds)")
	fs.IntVar(&f.maxIntervals, "max-intervals", 4096, "budget of the certified barrier: largest number of leaf α-intervals")
	fs.IntVar(&f.accIntervals, "accuracy-intervals", 512, "budget of the certified accuracy: largest number of leaf α-intervals (leaves where an example's arg-max changes stay undecided however narrow)")
	fs.IntVar(&f.workers, "workers", 0, "concurrent interval passes of the certified bounds (0: one per core)")
	fs.StringVar(&f.layers, "layers", "", "layer-wise LMC: move only these layers from A to B (comma-separated top-level indices or state_dict prefixes, e.g. 0,2 or 1.body); the rest are held (--hold)")
	fs.StringVar(&f.hold, "hold", "a", "with --layers: where the other tensors stay, a (θA) or b (θB)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: certify lmc A B [--out DIR | --json] [flags]\n\n"+
			"Loss and 0–1 error along θ(α) = (1−α)θA + αθB and the barriers of linear mode connectivity\n"+
			"(THEORY.md §10). A and B are run directories (their final checkpoints unless --a-state/--b-state)\n"+
			"or checkpoint files with --model.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return badInputf("lmc: want two runs or checkpoints A B, found %d arguments %q (certify lmc A B --out DIR)", len(pos), pos)
	}
	if f.out == "" && !f.json {
		return badInputf("lmc: --out DIR is required (or --json to print the report only)")
	}
	switch f.split {
	case "train", "test":
	default:
		return badInputf("lmc: --split: want train or test, found %q", f.split)
	}
	switch f.align {
	case "none", "weights":
	default:
		return badInputf("lmc: --align: want none or weights, found %q", f.align)
	}
	if f.examples < 0 {
		return badInputf("lmc: --examples: want ≥ 0, found %d", f.examples)
	}
	if !(f.deltaTol > 0) || f.deltaTol >= 1 {
		return badInputf("lmc: --delta-tol: want a relative width in (0, 1), found %g", f.deltaTol)
	}
	if f.maxIntervals < 1 {
		return badInputf("lmc: --max-intervals: want ≥ 1, found %d", f.maxIntervals)
	}
	if f.accIntervals < 1 {
		return badInputf("lmc: --accuracy-intervals: want ≥ 1, found %d", f.accIntervals)
	}
	if f.workers < 0 {
		return badInputf("lmc: --workers %d: want 0 (one per core) or a positive count", f.workers)
	}
	if f.out != "" && !f.force && fileExists(filepath.Join(f.out, "lmc.json")) {
		return badInputf("lmc: %s exists (made by an earlier certify lmc, perhaps with other settings); choose another --out DIR or pass --force to replace it", filepath.Join(f.out, "lmc.json"))
	}
	layers, err := lmcLayerFlags(f)
	if err != nil {
		return badInput(err)
	}
	alphas, err := certify.LMCGrid(f.alphas)
	if err != nil {
		return badInput(err)
	}
	start := time.Now()
	a, err := loadLMCEnd(pos[0], f.aState, f.model, "--a-state")
	if err != nil {
		return badInput(err)
	}
	b, err := loadLMCEnd(pos[1], f.bState, f.model, "--b-state")
	if err != nil {
		return badInput(err)
	}
	if err := checkpointMismatch(a, b); err != nil {
		return badInput(err)
	}
	if f.model != "" && a.isDir && b.isDir {
		return badInputf("lmc: --model %s: A and B are run directories, read with their own model.json; --model is for checkpoint files", f.model)
	}
	if err := sameArchitecture(a, b); err != nil {
		return badInput(err)
	}
	x, t, source, err := lmcData(f, a, b)
	if err != nil {
		return badInput(err)
	}
	r := &certify.LMCReport{
		Command:  "certify lmc " + strings.Join(args, " "),
		A:        a.ep,
		B:        b.ep,
		LossKind: a.spec.Loss,
		Split:    f.split,
		DataFile: f.data,
		Data:     source,
		Examples: t.Len(),
		Notes:    []string{},
	}
	if f.data != "" {
		r.Split = "data" // the file is its own data: neither a run's training data nor a held-out split
	}
	if note := lmcDatasetNote(a, b, source); note != "" {
		r.Notes = append(r.Notes, note)
	}
	if t.Labels == nil {
		r.Notes = append(r.Notes, "error, convexity_gap_error, barrier_error*, midpoint_gap_error: the targets are float values without class labels, so there is no 0–1 error; null")
	}
	opt := functionspace.Options{BNPolicy: functionspace.BNPolicy(f.bn)}
	st := newLMCStatus(f)
	defer func() {
		if err != nil {
			st.bar.Stop() // the error's own line is the last word, not "done"
			return
		}
		st.bar.Done()
	}()
	thetaB := b.state
	if f.align == "weights" {
		if err := ctx.Err(); err != nil {
			return st.interrupted(err)
		}
		st.phase(progress.Phase{Name: "weight matching"})
		al, err := alignWeights(a, b)
		if err != nil {
			return badInput(err)
		}
		s0, s1, err := lmcLine(r, layers, f.hold, a.state, b.state)
		if err != nil {
			return badInput(err)
		}
		p, err := functionspace.New(a.model, s0, s1, x, t, opt)
		if err != nil {
			return badInput(err)
		}
		un, err := st.grid(ctx, p, alphas, "unaligned line")
		if err != nil {
			return err
		}
		if err := lmcCertified(ctx, p, &un, f, "unaligned line", r, st); err != nil {
			return err
		}
		r.Unaligned = &un
		r.Aligned, r.Permutations, r.AlignSweeps = true, al.permutations, al.sweeps
		thetaB = al.state
	}
	s0, s1, err := lmcLine(r, layers, f.hold, a.state, thetaB)
	if err != nil {
		return badInput(err)
	}
	p, err := functionspace.New(a.model, s0, s1, x, t, opt)
	if err != nil {
		return badInput(err)
	}
	r.BNPolicy = p.BNPolicy().String()
	if note := bnNoEffect(f.bn, p.BNPolicy()); note != "" {
		r.Notes = append(r.Notes, note)
	}
	line := "line"
	if r.Aligned {
		line = "aligned line"
	}
	if r.LMCMeasures, err = st.grid(ctx, p, alphas, line); err != nil {
		return err
	}
	if err := lmcCertified(ctx, p, &r.LMCMeasures, f, line, r, st); err != nil {
		return err
	}
	if f.out != "" {
		st.phase(progress.Phase{Name: "writing " + f.out})
		if err := os.MkdirAll(f.out, 0o755); err != nil {
			return err
		}
		if r.Aligned {
			r.AlignedCheckpoint = filepath.Join(f.out, "b_aligned.safetensors")
			if err := writeStateAtomic(r.AlignedCheckpoint, thetaB); err != nil {
				return err
			}
		}
	}
	r.Seconds = time.Since(start).Seconds()
	body, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	body = append(body, '\n')
	if f.out != "" {
		if err := atomicfile.Write(filepath.Join(f.out, "lmc.json"), body); err != nil {
			return err
		}
		if err := presentation.WriteLMCSummary(f.out, r); err != nil {
			return err
		}
		if !f.noFigures {
			if err := presentation.WriteLMCFigure(f.out, r); err != nil {
				fmt.Fprintf(stderr, "certify: lmc: figure: %v\n", err)
			}
		}
		if err := removeStaleLMC(f.out, r.Aligned, f.noFigures); err != nil {
			return err
		}
	}
	if f.json {
		_, err := stdout.Write(body)
		return err
	}
	fmt.Fprint(stdout, presentation.LMCText(r, f.out))
	return nil
}

// lmcCertified computes the certified barrier of the line p into m
// (certify.CertifyBarrier, THEORY.md §10) with the gap --delta-tol asks
// for, and the certified accuracy (certify.CertifyAccuracy; class labels
// only), or leaves them null with a note in r naming why (--no-certificate, a layer
// without an interval rule). line ("line", "aligned line" or "unaligned
// line") names the line in st's phases; the notes name the key path of its
// measures ("unaligned." for the unaligned line).
func lmcCertified(ctx context.Context, p *functionspace.Path, m *certify.LMCMeasures, f lmcFlags, line string, r *certify.LMCReport, st *lmcStatus) error {
	prefix := ""
	if line == "unaligned line" {
		prefix = "unaligned."
	}
	keys := prefix + "barrier_bounds, " + prefix + "barrier_witness, " + prefix + "accuracy_bounds"
	if f.noCert {
		r.Notes = append(r.Notes, keys+": not computed (--no-certificate); null")
		return nil
	}
	if err := p.Model.Require(nn.RuleInterval); err != nil {
		r.Notes = append(r.Notes, fmt.Sprintf("%s: not computed: the certified bounds need interval rules for every layer: %v; null", keys, err))
		return nil
	}
	n := len(m.Loss)
	gap := certify.BarrierGap(f.deltaTol, float64(m.Loss[0]), float64(m.Loss[n-1]))
	report := st.leaves(line)
	c, err := certify.CertifyBarrier(ctx, p, certify.BarrierOptions{Gap: gap, MaxIntervals: f.maxIntervals, Workers: f.workers, Progress: report})
	if err != nil {
		if ctx.Err() != nil {
			return st.interrupted(ctx.Err())
		}
		return fmt.Errorf("lmc: certified barrier: %w", err)
	}
	if err := m.AttachBarrier(c, p.N); err != nil {
		return err
	}
	if m.BarrierBounds == nil {
		r.Notes = append(r.Notes, prefix+"barrier_bounds: null: an enclosure overflowed, so the upper bound is not finite; "+prefix+"barrier_certificate.lower is still proven")
	}
	if !c.Converged {
		r.Notes = append(r.Notes, fmt.Sprintf("%sbarrier_bounds: wider than --delta-tol %g asks (gap %.3g): %s", prefix, f.deltaTol, gap, c.Reason))
	}
	if p.Targets.Labels == nil {
		r.Notes = append(r.Notes, prefix+"accuracy_bounds: the targets are float values without class labels, so there is no 0–1 accuracy; null")
		return nil
	}
	a, err := certify.CertifyAccuracy(ctx, p, certify.AccuracyOptions{MaxIntervals: f.accIntervals, Workers: f.workers, Progress: report})
	if err != nil {
		if ctx.Err() != nil {
			return st.interrupted(ctx.Err())
		}
		return fmt.Errorf("lmc: certified accuracy: %w", err)
	}
	if err := m.AttachAccuracy(a); err != nil {
		return err
	}
	if !a.Converged {
		r.Notes = append(r.Notes, fmt.Sprintf("%saccuracy_bounds: %d of %d leaves keep undecided examples (counted in hi only): %s", prefix, a.UndecidedLeaves, a.Leaves, a.Reason))
	}
	return nil
}

// removeStaleLMC removes from dir the outputs an earlier lmc (replaced
// with --force) wrote and this one did not: the aligned checkpoint when
// this line is not aligned, the figure under --no-figures. Otherwise
// they would sit beside the new lmc.json as if made with its settings.
// It runs after lmc.json is written, so an interrupted run leaves the old
// outputs whole.
func removeStaleLMC(dir string, aligned, noFigures bool) error {
	var stale []string
	if !aligned {
		stale = append(stale, "b_aligned.safetensors")
	}
	if noFigures {
		stale = append(stale, presentation.FigureLMC+".png")
	}
	for _, name := range stale {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("lmc: removing the earlier run's %s: %w", name, err)
		}
	}
	return nil
}

// writeStateAtomic writes a float64 checkpoint under a temporary name and
// renames it.
func writeStateAtomic(path string, s nn.State) error {
	tmp := path + ".tmp"
	if err := nn.WriteState(tmp, s, "F64"); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// loadLMCEnd reads one endpoint: a run directory's init or final checkpoint
// (state), or a checkpoint file with the model.json given by --model.
func loadLMCEnd(path, state, model, stateFlag string) (*lmcEnd, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("lmc: %w", err)
	}
	e := &lmcEnd{isDir: st.IsDir()}
	ckpt := path
	if e.isDir {
		switch state {
		case "init", "final":
		default:
			return nil, fmt.Errorf("lmc: %s: want init or final, found %q", stateFlag, state)
		}
		if err := rundir.ForeignRun(path); err != nil {
			return nil, err
		}
		e.specPath = filepath.Join(path, "model.json")
		ckpt = filepath.Join(path, state+".safetensors")
		if _, err := os.Stat(ckpt); errors.Is(err, fs.ErrNotExist) {
			if alt := filepath.Join(path, state+".npz"); fileExists(alt) {
				ckpt = alt
			}
		}
		e.ep = certify.LMCEndpoint{Path: path, Checkpoint: ckpt, State: state}
	} else {
		if model == "" {
			return nil, fmt.Errorf("lmc: %s is a checkpoint file: --model model.json is needed to read it", path)
		}
		if state != "final" {
			return nil, fmt.Errorf("lmc: %s %s: applies to run directories; %s is a checkpoint file", stateFlag, state, path)
		}
		e.specPath = model
		e.ep = certify.LMCEndpoint{Path: path, Checkpoint: path, State: "file"}
	}
	if e.spec, err = nn.ReadSpec(e.specPath); err != nil {
		return nil, err
	}
	if e.model, err = nn.Build(e.spec); err != nil {
		return nil, fmt.Errorf("%s: %w", e.specPath, err)
	}
	if e.state, err = nn.ReadState(ckpt); err != nil {
		return nil, err
	}
	if err := e.model.Check(e.state, ckpt); err != nil {
		e.checkErr = err
		return e, nil
	}
	if err := nn.CheckBuffers(e.state, ckpt); err != nil {
		return nil, err
	}
	return e, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// sameArchitecture refuses two endpoints that are not one architecture:
// the error names both files and the first difference (layer count, a
// layer, the loss, or the first tensor whose name or shape differs).
func sameArchitecture(a, b *lmcEnd) error {
	files := lmcFiles(a, b)
	if la, lb := len(a.spec.Layers), len(b.spec.Layers); la != lb {
		return fmt.Errorf("lmc: %s are not one architecture: %d layers in A, %d in B%s", files, la, lb, firstTensorDiff(a, b, "; "))
	}
	for i := range a.spec.Layers {
		if ta, tb := a.spec.Layers[i].Type, b.spec.Layers[i].Type; ta != tb {
			return fmt.Errorf("lmc: %s are not one architecture: layer %d is %s in A, %s in B%s", files, i, ta, tb, firstTensorDiff(a, b, "; "))
		}
	}
	ea, eb := a.model.Expected(), b.model.Expected()
	for i := range min(len(ea), len(eb)) {
		if ea[i].Key != eb[i].Key || !sameInts(ea[i].Shape, eb[i].Shape) {
			return fmt.Errorf("lmc: %s are not one architecture: first differing tensor %s %s in A, %s %s in B", files, ea[i].Key, nn.ShapeString(ea[i].Shape), eb[i].Key, nn.ShapeString(eb[i].Shape))
		}
	}
	if len(ea) != len(eb) {
		return fmt.Errorf("lmc: %s are not one architecture: %d tensors in A, %d in B", files, len(ea), len(eb))
	}
	for i := range a.spec.Layers {
		ja, _ := json.Marshal(a.spec.Layers[i])
		jb, _ := json.Marshal(b.spec.Layers[i])
		if string(ja) != string(jb) {
			return fmt.Errorf("lmc: %s are not one architecture: layer %d is %s in A, %s in B", files, i, ja, jb)
		}
	}
	if a.spec.Loss != b.spec.Loss || a.spec.Reduction() != b.spec.Reduction() {
		return fmt.Errorf("lmc: %s are not one architecture: loss %s (%s) in A, %s (%s) in B", files, a.spec.Loss, a.spec.Reduction(), b.spec.Loss, b.spec.Reduction())
	}
	if !sameInts(a.spec.InputShape, b.spec.InputShape) {
		return fmt.Errorf("lmc: %s are not one architecture: input_shape %s in A, %s in B", files, nn.ShapeString(a.spec.InputShape), nn.ShapeString(b.spec.InputShape))
	}
	return nil
}

// lmcFiles names both ends' model.json and checkpoint for a message.
func lmcFiles(a, b *lmcEnd) string {
	return fmt.Sprintf("A (%s, %s) and B (%s, %s)", a.specPath, a.ep.Checkpoint, b.specPath, b.ep.Checkpoint)
}

// firstTensorDiff is "first differing tensor K [shape] in A, K′ [shape] in
// B" for the first tensor of the two checkpoints, in the order of A's then
// B's model.json, whose name or shape differs (or that one checkpoint lacks),
// after prefix; "" when the checkpoints hold the same names and shapes.
func firstTensorDiff(a, b *lmcEnd, prefix string) string {
	var keys []string
	seen := map[string]bool{}
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for _, e := range [2]*lmcEnd{a, b} {
		for _, n := range e.model.Expected() {
			add(n.Key)
		}
	}
	var rest []string
	for _, s := range [2]nn.State{a.state, b.state} {
		for k := range s {
			if !seen[k] {
				rest = append(rest, k)
			}
		}
	}
	slices.Sort(rest)
	for _, k := range rest {
		add(k)
	}
	desc := func(s nn.State, k string) string {
		if t, ok := s[k]; ok && t != nil {
			return k + " " + nn.ShapeString(t.Shape)
		}
		return "no " + k
	}
	for _, k := range keys {
		ta, oka := a.state[k]
		tb, okb := b.state[k]
		if oka != okb || (oka && ta != nil && tb != nil && !sameInts(ta.Shape, tb.Shape)) {
			return fmt.Sprintf("%sfirst differing tensor %s in A, %s in B", prefix, desc(a.state, k), desc(b.state, k))
		}
	}
	return ""
}

// checkpointMismatch refuses an end whose checkpoint does not fit its
// model.json (a checkpoint file read with --model): the message names both
// ends' files and the first tensor in which the two checkpoints differ, or,
// when they agree with each other, the end's own mismatch with the model.
func checkpointMismatch(a, b *lmcEnd) error {
	if a.checkErr == nil && b.checkErr == nil {
		return nil
	}
	if d := firstTensorDiff(a, b, ""); d != "" {
		return fmt.Errorf("lmc: %s are not one architecture: %s", lmcFiles(a, b), d)
	}
	if a.checkErr != nil {
		return a.checkErr
	}
	return b.checkErr
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// lmcData returns the evaluation examples: --data's file, else the first of
// A and B that is a run directory (its data.safetensors or config.json's
// dataset; --split test: the dataset's test split).
func lmcData(f lmcFlags, a, b *lmcEnd) (*mat.Dense, nn.Targets, string, error) {
	in := a.spec.InputSize()
	if f.data != "" {
		if f.split == "test" {
			return nil, nn.Targets{}, "", fmt.Errorf("lmc: --split test reads the held-out split of a run's dataset; with --data the file is the data (leave --split out)")
		}
		var ts []safetensors.Tensor
		var err error
		if strings.EqualFold(filepath.Ext(f.data), ".npz") {
			ts, err = npz.Read(f.data)
		} else {
			ts, _, err = safetensors.Read(f.data)
		}
		if err != nil {
			return nil, nn.Targets{}, "", err
		}
		var x, y *safetensors.Tensor
		for i := range ts {
			switch ts[i].Name {
			case "x":
				x = &ts[i]
			case "y":
				y = &ts[i]
			}
		}
		if x == nil || y == nil {
			return nil, nn.Targets{}, "", fmt.Errorf("%s: needs tensors x and y", f.data)
		}
		xm, t, err := nn.DataFromTensors(x, y, f.data, "--examples", f.examples)
		if err != nil {
			return nil, nn.Targets{}, "", err
		}
		if _, d := xm.Dims(); d != in {
			return nil, nn.Targets{}, "", fmt.Errorf("%s: x: %d features per example, model.json needs %d", f.data, d, in)
		}
		if err := nn.CheckInputShape(f.data, "x", x.Shape, a.spec.InputShape); err != nil {
			return nil, nn.Targets{}, "", err // same size in another layout (channels-last images)
		}
		if err := nn.CheckTargets(t, a.model.OutSize(), a.spec.Loss, f.data); err != nil {
			return nil, nn.Targets{}, "", err
		}
		return xm, t, fmt.Sprintf("%s (%d examples)", f.data, t.Len()), nil
	}
	var dir string
	for _, e := range []*lmcEnd{a, b} {
		if e.isDir {
			dir = e.ep.Path
			break
		}
	}
	if dir == "" {
		return nil, nn.Targets{}, "", fmt.Errorf("lmc: A and B are checkpoint files: --data FILE (x, y) is needed")
	}
	n := f.examples
	if f.split == "test" {
		n = 1 // only its config.json is used: --examples counts test examples, not training ones
	}
	run, err := rundir.Read(dir, n)
	if err != nil {
		return nil, nn.Targets{}, "", err
	}
	if f.split == "train" {
		return run.X, run.Targets, run.DataSource, nil
	}
	if run.Config == nil || run.Config.Data.Name == "" {
		return nil, nn.Targets{}, "", fmt.Errorf("lmc: --split test: %s has no config.json naming a dataset, so it has no held-out split; give the held-out examples as a file with --data FILE (x, y; .safetensors or .npz) instead", dir)
	}
	spec := run.Config.Data
	spec.Split, spec.Limit = "test", f.examples
	if f.examples == 0 {
		spec.Limit = 0 // all of the test split
	}
	set, err := dataset.Load(spec)
	if err != nil {
		if f.examples > 0 {
			// the limit is --examples, not config.json's: name both sources
			return nil, nn.Targets{}, "", badInputf("lmc: --examples %d --split test: the test split of %s's dataset (%s: data): %v", f.examples, dir, filepath.Join(dir, "config.json"), err)
		}
		return nil, nn.Targets{}, "", fmt.Errorf("%s: data: %w", filepath.Join(dir, "config.json"), err)
	}
	if set.D != in {
		return nil, nn.Targets{}, "", fmt.Errorf("%s: data: test examples have %d features, model.json needs %d", filepath.Join(dir, "config.json"), set.D, in)
	}
	x := mat.NewDense(set.N, set.D, set.X)
	t := nn.Targets{Labels: set.Y}
	src := fmt.Sprintf("%s %s (first %d examples)", set.Name, set.Split, set.N)
	if run.Config.Task == rundir.TaskAutoencoder {
		t = nn.Targets{Values: mat.DenseCopyOf(x)}
		src += ", targets = inputs (autoencoder)"
	}
	return x, t, src, nil
}

// lmcTrainData returns the training set named by a run directory's
// config.json (its data key) and whether there is one to read.
func lmcTrainData(e *lmcEnd) (dataset.Spec, bool) {
	if !e.isDir {
		return dataset.Spec{}, false
	}
	body, err := os.ReadFile(filepath.Join(e.ep.Path, "config.json"))
	if err != nil {
		return dataset.Spec{}, false
	}
	var c struct {
		Data dataset.Spec `json:"data"`
	}
	if json.Unmarshal(body, &c) != nil || c.Data.Name == "" {
		return dataset.Spec{}, false
	}
	return c.Data, true
}

// describeData names a training set: "fashion-mnist (first 256 examples,
// from /dir)".
func describeData(d dataset.Spec) string {
	var parts []string
	if d.Limit > 0 {
		parts = append(parts, fmt.Sprintf("first %d examples", d.Limit))
	}
	if d.Dir != "" {
		parts = append(parts, "from "+d.Dir)
	}
	if len(parts) == 0 {
		return d.Name
	}
	return d.Name + " (" + strings.Join(parts, ", ") + ")"
}

// lmcDatasetNote is the report's note when A and B are run directories
// whose config.json name different training data (another dataset, another
// directory or another number of examples): one line evaluates both on the
// same examples (source), which then are not both networks' training data,
// so the barrier compares a network on its own training set with one on
// foreign data. "" when they agree or either is not known.
func lmcDatasetNote(a, b *lmcEnd, source string) string {
	da, okA := lmcTrainData(a)
	db, okB := lmcTrainData(b)
	if !okA || !okB {
		return ""
	}
	norm := func(n string) string { return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(n)), "_", "-") }
	if norm(da.Name) == norm(db.Name) && filepath.Clean(da.Dir) == filepath.Clean(db.Dir) && da.Limit == db.Limit {
		return ""
	}
	return fmt.Sprintf("data: A and B were trained on different data (config.json): A (%s) on %s, B (%s) on %s; both are evaluated on %s",
		a.ep.Path, describeData(da), b.ep.Path, describeData(db), source)
}

// lmcAlignment is B permuted to match A (align.WeightMatching).
type lmcAlignment struct {
	state        nn.State
	permutations map[string][]int
	sweeps       int
}

// alignWeights runs weight matching of B onto A (THEORY.md §10) with a
// fixed seed for the order in which the layers are visited.
func alignWeights(a, b *lmcEnd) (*lmcAlignment, error) {
	res, err := align.WeightMatching(a.spec, a.state, b.state, 0)
	if err != nil {
		return nil, fmt.Errorf("lmc: --align weights: %w", err)
	}
	return &lmcAlignment{state: res.State, permutations: res.Permutations, sweeps: res.Sweeps}, nil
}

// lmcLayerFlags checks --layers and --hold and returns the layers (nil:
// every tensor moves).
func lmcLayerFlags(f lmcFlags) ([]string, error) {
	if f.layers == "" {
		if f.hold != "a" {
			return nil, fmt.Errorf("lmc: --hold %s: every tensor moves; --hold needs --layers", f.hold)
		}
		return nil, nil
	}
	if f.hold != "a" && f.hold != "b" {
		return nil, fmt.Errorf("lmc: --hold: want a or b, found %q", f.hold)
	}
	return certify.ParseLayers(f.layers)
}

// lmcLine returns the endpoints of the line from a to b: a and b
// themselves, or with --layers the layer-wise line (certify.LayerEndpoints),
// recorded in r.
func lmcLine(r *certify.LMCReport, layers []string, hold string, a, b nn.State) (nn.State, nn.State, error) {
	if layers == nil {
		return a, b, nil
	}
	s0, s1, moved, err := certify.LayerEndpoints(a, b, layers, hold)
	if err != nil {
		return nil, nil, fmt.Errorf("lmc: %w", err)
	}
	r.LMCLayers = &certify.LMCLayers{Layers: layers, Hold: hold, Moved: moved}
	return s0, s1, nil
}

// lmcLogInterval is how often lmc's progress writes a line when stderr is
// not a terminal (progress.LogInterval; tests shorten it).
var lmcLogInterval = progress.LogInterval

// lmcAfterAlpha, when set (by tests), is called after each α of lmc's grid
// with the α done so far.
var lmcAfterAlpha func(done int)

// lmcStatus is lmc's progress: one bar for the whole command (on a terminal
// a bar, elsewhere a line about every 10 s with the time since the start,
// the phase, done/total and an ETA; none with --json), so the elapsed time
// runs on across the phases and both lines of --align weights. It
// remembers the phase and its counts for the message of an interruption.
// Its methods are safe for concurrent use (the certified searches report
// from their workers).
type lmcStatus struct {
	bar         *progress.Bar // nil: silent
	mu          sync.Mutex
	name        string // the current phase
	done, total int    // its last counts (total 0: none)
	unit        string
}

// newLMCStatus returns the status of one lmc command: its bar writes to
// stderr (a bar on a terminal, lines every lmcLogInterval elsewhere) unless
// --json.
func newLMCStatus(f lmcFlags) *lmcStatus {
	st := &lmcStatus{name: "preparing the line"}
	if f.json {
		return st
	}
	if fh, ok := stderr.(*os.File); ok && progress.IsTerminal(fh) {
		st.bar = progress.New(fh, "lmc")
	} else {
		st.bar = progress.NewLog(stderr, "lmc", lmcLogInterval)
	}
	return st
}

// phase starts phase p.
func (st *lmcStatus) phase(p progress.Phase) {
	st.mu.Lock()
	st.name, st.done, st.total, st.unit = p.Name, 0, 0, p.Unit
	st.mu.Unlock()
	st.bar.SetPhase(p)
}

// update reports done of total in the current phase.
func (st *lmcStatus) update(done, total int) {
	st.mu.Lock()
	st.done, st.total = done, total
	st.mu.Unlock()
	st.bar.Update(done, total, "")
}

// grid evaluates the measures of line p on alphas (certify.LineMeasuresContext)
// as the phase "loss on the grid (line)", counting α; a cancelled ctx stops
// it within one chunk of examples and returns the interruption's error.
func (st *lmcStatus) grid(ctx context.Context, p *functionspace.Path, alphas []float64, line string) (certify.LMCMeasures, error) {
	if err := ctx.Err(); err != nil {
		return certify.LMCMeasures{}, st.interrupted(err)
	}
	st.phase(progress.Phase{Name: "loss on the grid (" + line + ")", Unit: "α"})
	m, err := certify.LineMeasuresContext(ctx, p, alphas, func(done, total int) {
		st.update(done, total)
		if lmcAfterAlpha != nil && done > 0 {
			lmcAfterAlpha(done)
		}
	})
	if err != nil {
		if ctx.Err() != nil {
			return certify.LMCMeasures{}, st.interrupted(ctx.Err())
		}
		return certify.LMCMeasures{}, err
	}
	return m, nil
}

// leaves is the Progress of the certified searches on line: the phase
// "certified barrier (line)" or "certified accuracy (line)", counting leaves
// against the budget.
func (st *lmcStatus) leaves(line string) func(stage string, done, total int) {
	return func(stage string, done, total int) {
		name := "certified " + stage + " (" + line + ")"
		st.mu.Lock()
		same := st.name == name
		st.mu.Unlock()
		if !same {
			st.phase(progress.Phase{Name: name, Unit: "leaves", Budget: true})
		}
		st.update(done, total)
	}
}

// interrupted is the error of lmc stopped by its context (Ctrl-C, SIGTERM)
// with the line run prints: the phase and how far it got. lmc writes its
// outputs only at the end, so nothing is written and nothing resumes.
func (st *lmcStatus) interrupted(err error) error {
	st.mu.Lock()
	where := st.name
	if st.total > 0 {
		where += fmt.Sprintf(", %d/%d %s done", st.done, st.total, st.unit)
	}
	st.mu.Unlock()
	return interrupted(err, "lmc interrupted during %s; nothing written (lmc does not resume: run the same command again)", where)
}
