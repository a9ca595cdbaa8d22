package rundir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/internal/atomicfile"
	"github.com/certify-mli/certify/internal/progress"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/nn/dataset"
	"github.com/certify-mli/certify/nn/optim"
	"github.com/certify-mli/certify/nn/safetensors"
)

// Files of a run directory written by Train (RUN_FORMAT.md "Files").
const (
	ModelFile   = "model.json"
	InitFile    = "init.safetensors"
	FinalFile   = "final.safetensors"
	ConfigFile  = "config.json"
	MetricsFile = "metrics.jsonl"
	// CheckpointDir holds step-K.safetensors (θ after K steps, F64) and
	// step-K.optim.safetensors (the optimizer's buffers, for resuming).
	CheckpointDir = "checkpoints"
)

// Options say where and how Train writes.
type Options struct {
	// Out is the run directory to write; Train works in Out.partial
	// (Partial) and renames it to Out when complete.
	Out string
	// Force replaces an existing Out (and discards an interrupted
	// Out.partial); Resume continues Out.partial from its last checkpoint.
	Force, Resume bool
	// Progress, when not nil, is updated after every step.
	Progress *progress.Bar
	// AfterStep, when set (by tests), is called after every step.
	AfterStep func(step int)
}

// Stopped is Train's error when its context is cancelled at Step: Saved
// tells whether that step's checkpoint is in Out.partial (so that Resume
// continues from it); SaveErr is why not. It wraps the context's error.
type Stopped struct {
	Step    int
	Saved   bool
	SaveErr error
	Err     error
}

func (e *Stopped) Error() string {
	if !e.Saved {
		return fmt.Sprintf("interrupted at step %d; saving its checkpoint failed: %v", e.Step, e.SaveErr)
	}
	return fmt.Sprintf("interrupted at step %d", e.Step)
}
func (e *Stopped) Unwrap() error { return e.Err }

// Partial is the directory Train writes before renaming it to out.
func Partial(out string) string { return strings.TrimRight(out, "/") + ".partial" }

// CheckPartial refuses to start a run over an interrupted one: out.partial
// exists and neither resume (continue it) nor force (discard it) is set.
func CheckPartial(out string, force, resume bool) error {
	partial := Partial(out)
	if resume || force {
		return nil
	}
	if _, err := os.Stat(partial); err != nil {
		return nil
	}
	last := "no checkpoint saved"
	if ents, err := os.ReadDir(partial + "/" + CheckpointDir); err == nil && len(ents) > 0 {
		last = fmt.Sprintf("%d checkpoint(s), the last %s", len(ents), ents[len(ents)-1].Name())
	}
	return &Error{Err: fmt.Errorf("train: %s holds an interrupted run (%s); continue it with the same flags and --resume, or start over with --force (discards it)", partial, last)}
}

func inputErr(err error) error { return &Error{Err: err} }

// Train trains the run tc describes into o.Out and returns its config.json
// (results filled in). It writes everything into Out.partial and renames it
// to Out at the end, so a run directory is either complete or absent.
// Interrupted (ctx cancelled), it saves a checkpoint so that Resume
// continues from it, and returns a *Stopped. Bad input (the configuration,
// the data, an existing Out) is an *Error; it prints nothing.
func Train(ctx context.Context, tc TrainConfig, o Options) (*RunConfig, error) {
	c := tc.RunConfig
	if o.Out == "" {
		return nil, inputErr(errors.New("train: --out DIR is required"))
	}
	if err := tc.Validate(); err != nil {
		return nil, err
	}
	if err := CheckPartial(o.Out, o.Force, o.Resume); err != nil {
		return nil, err
	}
	dtype := strings.ToUpper(tc.DType)
	modelSpec, _ := resolveModel(&c)      // checked by Validate
	widths, _ := archWidths(c, modelSpec) // checked by Validate
	ResolveTask(&c)
	ae := c.Task == TaskAutoencoder
	spec := nn.MLPSpec(widths, c.Act, c.Loss)
	if c.Reduction != nn.ReductionMean {
		spec.LossReduction = c.Reduction
	}
	if c.BatchNorm {
		spec = nn.InsertBatchNorm(spec)
	}
	if modelSpec != nil {
		if modelSpec.Loss != c.Loss || modelSpec.Reduction() != c.Reduction {
			return nil, fieldErrorf("loss", "train: --loss %s (reduction %s) but %s says %s (reduction %s)", c.Loss, c.Reduction, c.Model, modelSpec.Loss, modelSpec.Reduction())
		}
		spec = modelSpec
	}
	if err := spec.Validate(); err != nil {
		return nil, fieldErrorf("act", "train: --act %q: %v", c.Act, err)
	}
	m, _ := nn.Build(spec)
	opt, err := newOptimizer(c)
	if err != nil {
		return nil, fieldErrorf("optim", "train: %v", err)
	}
	epochStart, err := schedule(&c, opt)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(o.Out); err == nil && !o.Force {
		return nil, inputErr(fmt.Errorf("train: %s exists; pass --force to replace it", o.Out))
	}
	c.Data.Split = "train"
	trainSet, err := dataset.Load(c.Data)
	if err != nil {
		return nil, inputErr(err)
	}
	if trainSet.D != widths[0] {
		if modelSpec != nil {
			return nil, fieldErrorf("model", "train: --model %s: input_shape %s has %d inputs but %s examples have %d features", c.Model, nn.ShapeString(modelSpec.InputShape), widths[0], trainSet.Name, trainSet.D)
		}
		return nil, fieldErrorf("arch", "train: --arch %s starts with %d inputs but %s examples have %d features", c.Arch, widths[0], trainSet.Name, trainSet.D)
	}
	if !ae && trainSet.Classes > widths[len(widths)-1] {
		if modelSpec != nil {
			return nil, fieldErrorf("model", "train: --model %s: the last layer has %d outputs but %s has %d classes", c.Model, widths[len(widths)-1], trainSet.Name, trainSet.Classes)
		}
		return nil, fieldErrorf("arch", "train: --arch %s ends with %d outputs but %s has %d classes", c.Arch, widths[len(widths)-1], trainSet.Name, trainSet.Classes)
	}
	if modelSpec != nil && c.Model != "" {
		c.Arch, c.Act = "", "" // config.json: the architecture is model.json's, not an MLP's
	}
	testSpec := c.Data
	testSpec.Split, testSpec.Limit = "test", 0
	testSet, err := dataset.Load(testSpec)
	if err != nil {
		return nil, inputErr(err)
	}
	x := mat.NewDense(trainSet.N, trainSet.D, trainSet.X)
	if err := checkSpawnStep(c, trainSet.N); err != nil { // before anything is written
		return nil, err
	}
	targets := nn.Targets{Labels: trainSet.Y}
	xTest := mat.NewDense(testSet.N, testSet.D, testSet.X)
	testTargets := nn.Targets{Labels: testSet.Y}
	if ae {
		targets, testTargets = nn.Targets{Values: x}, nn.Targets{Values: xTest}
	}
	// label noise: the corruption depends on (labels, p, seed) only, so a
	// resumed run draws the same labels.
	var noise nn.LabelNoise
	if c.LabelNoise != 0 {
		noisy, rec, err := nn.CorruptLabels(trainSet.Y, trainSet.Classes, c.LabelNoise, c.Seed)
		if err != nil {
			return nil, fieldErrorf("label-noise", "train: --label-noise: %v", err)
		}
		targets, noise = nn.Targets{Labels: noisy}, rec
		c.LabelNoiseCount = len(rec.Index)
	}

	partial := Partial(o.Out)
	theta, startStep := nn.State(nil), 0
	metrics := []byte{}
	if o.Resume {
		theta, startStep, metrics, err = resumeState(partial, m, opt)
		if err != nil {
			return nil, err
		}
	} else {
		if theta, err = writeStart(partial, spec, m, c, dtype); err != nil {
			return nil, err
		}
	}
	if err := writeJSON(filepath.Join(partial, ConfigFile), c); err != nil {
		return nil, err
	}
	if c.LabelNoise != 0 {
		if err := nn.WriteLabelNoise(filepath.Join(partial, nn.LabelNoiseFile), noise); err != nil {
			return nil, err
		}
	}
	var stepper nn.Stepper = opt
	if c.InitAnchor != 0 {
		// θ0 as the run directory holds it (also when resuming).
		s0, err := nn.ReadState(filepath.Join(partial, InitFile))
		if err != nil {
			return nil, err
		}
		var p0 [][]float64
		for _, k := range m.Trainable() {
			p0 = append(p0, s0[k].Data)
		}
		stepper = nn.Anchored(opt, p0, c.InitAnchor)
	}
	start := time.Now()
	keys := m.Trainable()
	saveCheckpoint := func(step int) error {
		return writeCheckpoint(partial, step, theta, opt, keys, metrics)
	}
	lastStep := startStep
	hook := func(si nn.StepInfo) error {
		lastStep = si.Step
		if o.AfterStep != nil {
			o.AfterStep(si.Step)
		}
		if si.Step%50 == 0 || si.EpochEnd {
			metrics = appendMetrics(metrics, si, ae)
		}
		o.Progress.Update(si.Step, si.TotalSteps, fmt.Sprintf("epoch %d loss %.4f", si.Epoch+1, si.BatchLoss))
		if c.CheckpointEvery > 0 && si.Step%c.CheckpointEvery == 0 {
			return saveCheckpoint(si.Step)
		}
		return nil
	}
	err = trainRun(ctx, c, m, theta, stepper, x, targets, nn.TrainConfig{Epochs: c.Epochs, Batch: c.Batch, Seed: c.Seed, StartStep: startStep, EpochStart: epochStart}, hook)
	o.Progress.Done()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			serr := saveCheckpoint(lastStep)
			return nil, &Stopped{Step: lastStep, Saved: serr == nil, SaveErr: serr, Err: err}
		}
		return nil, err
	}
	c.Steps = lastStep
	c.Seconds = time.Since(start).Seconds()
	chunk := evalChunk(m)
	c.TrainLoss, c.TrainAccuracy = nn.Evaluate(m, theta, x, targets, chunk)
	c.TestLoss, c.TestAccuracy = nn.Evaluate(m, theta, xTest, testTargets, chunk)
	if ae {
		// Arg-max agreement of a reconstruction with its input is no
		// accuracy: not computed (absent from config.json), not 0.
		c.TrainAccuracy, c.TestAccuracy = 0, 0
	}
	if err := writeEnd(partial, o.Out, theta, dtype, metrics, c); err != nil {
		return nil, err
	}
	return &c, nil
}

// evalActivationElems bounds the elements of one layer's output matrix in
// the evaluation after training (32 MiB in float64).
const evalActivationElems = 1 << 22

// evalChunk is the number of examples the evaluation after training
// (train and test loss and accuracy for config.json) forwards at once: at
// most 2000 (what MLPs always used), and fewer when the widest layer
// output, at any depth (residual bodies included), times the chunk would
// exceed evalActivationElems. A resnet-20 on 28×28 inputs has outputs of
// 16·28·28 = 12,544 values per example: chunks of 2000 made matrices of
// 200 MB per layer, 3.2 GiB resident and as much system time (page
// faults) as arithmetic; chunks of 334 keep each under 32 MiB. The chunk
// changes only the order of a sum (the mean loss), not what is computed.
func evalChunk(m *nn.Model) int {
	widest := m.Layers[0].InSize()
	_ = m.WalkSites(func(_ nn.Site, l nn.Layer) error {
		widest = max(widest, l.OutSize())
		return nil
	})
	return max(1, min(2000, evalActivationElems/max(1, widest)))
}

// writeStart makes a fresh partial directory with model.json and θ0 (in
// dtype), and returns θ0 as written: training starts from exactly what
// init.safetensors holds.
func writeStart(partial string, spec *nn.Spec, m *nn.Model, c RunConfig, dtype string) (nn.State, error) {
	if err := os.RemoveAll(partial); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(partial, 0o755); err != nil {
		return nil, err
	}
	theta, err := nn.Init(m, c.Init, c.InitScale, c.Seed)
	if err != nil {
		return nil, fieldErrorf("init", "train: --init: %v", err)
	}
	if s0, err := spawnInit(c, m); err != nil || s0 != nil { // a spawn starts from its parent's θ0
		if err != nil {
			return nil, err
		}
		theta = s0
	}
	if c.ZeroInitResidual && len(nn.ZeroInitResidual(m, theta)) == 0 {
		return nil, fieldErrorf("zero-init-residual", "train: --zero-init-residual: the model has no residual block whose body has a batchnorm1d or batchnorm2d")
	}
	if err := spec.Write(filepath.Join(partial, ModelFile)); err != nil {
		return nil, err
	}
	if err := nn.WriteState(filepath.Join(partial, InitFile), theta, dtype); err != nil {
		return nil, err
	}
	return nn.ReadState(filepath.Join(partial, InitFile))
}

// writeEnd writes θT, metrics.jsonl and the final config.json into partial
// and renames it to out.
func writeEnd(partial, out string, theta nn.State, dtype string, metrics []byte, c RunConfig) error {
	if err := nn.WriteState(filepath.Join(partial, FinalFile), theta, dtype); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(partial, MetricsFile), metrics); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(partial, ConfigFile), c); err != nil {
		return err
	}
	return ReplaceDir(partial, out)
}

// appendMetrics appends one metrics.jsonl line: step, epoch and the batch
// loss, and at an epoch's end its mean training loss (and accuracy, for a
// classifier).
func appendMetrics(metrics []byte, si nn.StepInfo, ae bool) []byte {
	rec := map[string]any{"step": si.Step, "epoch": si.Epoch, "batch_loss": si.BatchLoss}
	if si.EpochEnd {
		rec["train_loss"] = si.EpochMeanLoss
		if !ae {
			rec["train_accuracy"] = si.EpochAccuracy
		}
	}
	b, _ := json.Marshal(rec)
	return append(append(metrics, b...), '\n')
}

// writeCheckpoint writes checkpoints/step-K.safetensors (θ, F64), its
// optimizer state and metrics.jsonl so far into dir.
func writeCheckpoint(dir string, step int, theta nn.State, opt optim.Optimizer, keys []string, metrics []byte) error {
	// made with the first checkpoint: no empty checkpoints/ without one
	if err := os.MkdirAll(filepath.Join(dir, CheckpointDir), 0o755); err != nil {
		return err
	}
	name := filepath.Join(dir, CheckpointDir, fmt.Sprintf("step-%d", step))
	if err := nn.WriteState(name+".safetensors", theta, "F64"); err != nil {
		return err
	}
	if err := writeOptimState(name+".optim.safetensors", opt, keys); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, MetricsFile), metrics)
}

// ReplaceDir renames src to dst, replacing an existing dst only after src
// is complete.
func ReplaceDir(src, dst string) error {
	old := ""
	if _, err := os.Stat(dst); err == nil {
		old = dst + ".old"
		os.RemoveAll(old)
		if err := os.Rename(dst, old); err != nil {
			return err
		}
	}
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}

// writeJSON writes v as indented JSON and a newline, atomically.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'))
}

// writeOptimState saves the optimizer's buffers (keyed "i.name" by
// parameter position, as torch's optimizer state_dict) next to a checkpoint.
func writeOptimState(path string, opt optim.Optimizer, keys []string) error {
	st := opt.State()
	var ts []safetensors.Tensor
	for _, k := range st.Names() {
		ts = append(ts, safetensors.Tensor{Name: k, DType: "F64", Shape: []int{len(st[k])}, Float: st[k]})
	}
	return safetensors.Write(path, ts, "F64", map[string]string{"params": strings.Join(keys, ",")})
}

var stepFile = regexp.MustCompile(`^step-(\d+)\.optim\.safetensors$`)

// resumeState finds the latest checkpoint with optimizer state in dir and
// loads it into opt.
func resumeState(dir string, m *nn.Model, opt optim.Optimizer) (nn.State, int, []byte, error) {
	ents, err := os.ReadDir(filepath.Join(dir, CheckpointDir))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, nil, inputErr(fmt.Errorf("train: --resume: no checkpoint with optimizer state in %s (train with --checkpoint-every K)", dir))
		}
		return nil, 0, nil, inputErr(fmt.Errorf("train: --resume: %v", err))
	}
	var steps []int
	for _, e := range ents {
		if sm := stepFile.FindStringSubmatch(e.Name()); sm != nil {
			n, _ := strconv.Atoi(sm[1])
			steps = append(steps, n)
		}
	}
	if len(steps) == 0 {
		return nil, 0, nil, inputErr(fmt.Errorf("train: --resume: no checkpoint with optimizer state in %s", filepath.Join(dir, CheckpointDir)))
	}
	sort.Ints(steps)
	step := steps[len(steps)-1]
	base := filepath.Join(dir, CheckpointDir, fmt.Sprintf("step-%d", step))
	theta, err := nn.ReadState(base + ".safetensors")
	if err != nil {
		return nil, 0, nil, err
	}
	if err := m.Check(theta, base+".safetensors"); err != nil {
		return nil, 0, nil, inputErr(err)
	}
	ts, _, err := safetensors.Read(base + ".optim.safetensors")
	if err != nil {
		return nil, 0, nil, err
	}
	st := optim.State{}
	for _, t := range ts {
		st[t.Name] = t.Float
	}
	if err := opt.SetState(st); err != nil {
		return nil, 0, nil, inputErr(fmt.Errorf("%s: %v", base+".optim.safetensors", err))
	}
	metrics, _ := os.ReadFile(filepath.Join(dir, MetricsFile))
	return theta, step, metrics, nil
}

// Resumable reports whether partial (an interrupted Train of the same
// configuration) can be continued: it holds a checkpoint with optimizer
// state and its config.json is the one tc would write.
func Resumable(partial string, tc TrainConfig) bool {
	ents, err := os.ReadDir(filepath.Join(partial, CheckpointDir))
	if err != nil {
		return false
	}
	has := false
	for _, e := range ents {
		has = has || stepFile.MatchString(e.Name())
	}
	if !has {
		return false
	}
	b, err := os.ReadFile(filepath.Join(partial, ConfigFile))
	if err != nil {
		return false
	}
	var got RunConfig
	if json.Unmarshal(b, &got) != nil {
		return false
	}
	// Results are filled in only at the end of training.
	got.TrainLoss, got.TrainAccuracy, got.TestLoss, got.TestAccuracy, got.Steps, got.Seconds = 0, 0, 0, 0, 0, 0
	want := tc.RunConfig
	want.Data.Split = "train"
	if ResolveTask(&want) != nil {
		return false
	}
	return reflect.DeepEqual(got, want)
}

// resolveModel reads c.Model (`--model model.json`, any architecture the
// format describes) and stands its "IN-OUT" widths in for c.Arch, its loss
// and reduction for unset ones; nil when c trains the MLP of c.Arch. Errors
// name the file and the field (nn.TrainSpec).
//
// A built-in architecture (`--arch resnet-20-bn`, nn.BuiltinArchs) is
// resolved here too: its model.json is nn.BuiltinSpec's (loss
// cross_entropy unless --loss says mse), bn-identity sets
// ZeroInitResidual, and --batchnorm or an --act other than relu is refused
// (the built-ins state their own normalisation and are ReLU networks).
// c.Arch keeps the name: Train writes it to config.json.
func resolveModel(c *RunConfig) (*nn.Spec, error) {
	if c.Model == "" && nn.IsBuiltinArch(c.Arch) {
		return builtinModel(c)
	}
	if c.Model == "" {
		return nil, nil
	}
	spec, arch, err := nn.TrainSpec(c.Model, c.BatchNorm)
	if err != nil {
		return nil, fieldErrorf("model", "train: --model: %v", err)
	}
	c.Arch = arch
	if c.Loss == "" {
		c.Loss = spec.Loss
	}
	if c.Reduction == "" {
		c.Reduction = spec.Reduction()
	}
	return spec, nil
}

// archWidths is ParseArch(c.Arch), or for a built-in architecture the
// input and output widths of spec (resolveModel's).
func archWidths(c RunConfig, spec *nn.Spec) ([]int, error) {
	if spec == nil || c.Model != "" {
		return ParseArch(c.Arch)
	}
	m, err := nn.Build(spec)
	if err != nil {
		return nil, err
	}
	return []int{spec.InputSize(), m.OutSize()}, nil
}

// builtinModel is resolveModel for a built-in --arch.
func builtinModel(c *RunConfig) (*nn.Spec, error) {
	loss := c.Loss
	if loss == "" {
		loss = "cross_entropy"
	}
	spec, variant, err := nn.BuiltinSpec(c.Arch, loss)
	switch {
	case err != nil:
		return nil, fieldErrorf("arch", "train: %v", err)
	case c.BatchNorm:
		return nil, fieldErrorf("batchnorm", "train: --batchnorm applies to an MLP's --arch; %s states its own normalisation", c.Arch)
	case c.Act != "relu":
		return nil, fieldErrorf("act", "train: --act %s: --arch %s is a ReLU network", c.Act, c.Arch)
	}
	if variant == nn.ResNetBNIdentity {
		c.ZeroInitResidual = true
	}
	c.Loss = loss
	if c.Reduction == "" {
		c.Reduction = spec.Reduction()
	}
	return spec, nil
}

// schedule builds the MultiStepLR schedule of c.Milestones and c.LRGamma
// (nil without milestones; LRGamma defaults to PyTorch's 0.1 with them).
func schedule(c *RunConfig, opt optim.Optimizer) (func(int), error) {
	milestones, err := nn.ParseMilestones(c.Milestones)
	switch {
	case err != nil:
		return nil, fieldErrorf("milestones", "train: --milestones: %v", err)
	case milestones == nil && c.LRGamma != 0:
		return nil, fieldErrorf("lr-gamma", "train: --lr-gamma %v needs --milestones", c.LRGamma)
	case milestones == nil:
		return nil, nil
	}
	if c.LRGamma == 0 {
		c.LRGamma = 0.1
	}
	f, err := nn.LRSchedule(opt, c.LR, milestones, c.LRGamma)
	if err != nil {
		return nil, fieldErrorf("milestones", "train: --milestones %s --lr-gamma %v: %v", c.Milestones, c.LRGamma, err)
	}
	return f, nil
}
