package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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

var errHelp = errors.New("help requested")

// afterStep, when set (by tests), is called after every training step.
var afterStep func(step int)

// trainFlags are the flags of `certify train`; their names are also the keys
// of config.json (nn.RunConfig) and the axes a sweep may vary.
type trainFlags struct {
	cfg     nn.RunConfig
	dataDir string
	limit   int
	out     string
	force   bool
	resume  bool
	dtype   string
	quiet   bool
	spawn   spawnFlags // --spawn-from, --at-step (spawn.go)
}

func newTrainFlagSet(tf *trainFlags, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	c := &tf.cfg
	fs.StringVar(&c.Data.Name, "data", "mnist", "dataset: mnist, fashion-mnist, mnist-small (the built-in 5000/1000 subset) or idx (with --data-dir)")
	fs.StringVar(&tf.dataDir, "data-dir", "", "directory of idx files (gzipped or not) to read instead of the dataset's default location")
	fs.IntVar(&tf.limit, "limit", 0, "train on the first N training examples (0: all)")
	fs.StringVar(&c.Arch, "arch", "784-256-256-10", "layer widths, input first, output last")
	fs.StringVar(&c.Act, "act", "relu", "activation between linear layers: relu, leaky_relu, tanh, sigmoid, gelu, softplus, identity")
	fs.BoolVar(&c.BatchNorm, "batchnorm", false, "insert batchnorm1d after every hidden linear layer, before the activation (PyTorch's BatchNorm1d; the analysis uses the interpolate policy)")
	fs.StringVar(&c.Task, "task", nn.TaskClassify, "classify (targets: the labels) or autoencoder (targets: the inputs, linear output layer; THEORY.md §11)")
	fs.StringVar(&c.Loss, "loss", "", "training loss: cross_entropy or mse (on one-hot labels for classify, on the inputs for autoencoder); default cross_entropy for classify, mse for autoencoder")
	fs.StringVar(&c.Reduction, "reduction", "", "mse reduction over one example's outputs: sum (Σ‖γ_i − y_i‖² averaged over examples, the paper's autoencoder loss) or mean (PyTorch's default, also over the outputs); default sum for autoencoder, mean for classify")
	fs.StringVar(&c.Optim, "optim", "sgd", "optimizer: sgd, adam or adamw (PyTorch's update rules)")
	fs.Float64Var(&c.LR, "lr", 0.1, "learning rate")
	fs.Float64Var(&c.Momentum, "momentum", 0, "SGD momentum")
	fs.BoolVar(&c.Nesterov, "nesterov", false, "SGD with Nesterov momentum")
	fs.Float64Var(&c.WeightDecay, "weight-decay", 0, "L2 weight decay added to the gradient (decoupled for adamw)")
	fs.IntVar(&c.Epochs, "epochs", 1, "passes over the training data")
	fs.IntVar(&c.Batch, "batch", 128, "mini-batch size")
	fs.Uint64Var(&c.Seed, "seed", 0, "seed of the initialisation and the shuffling")
	fs.StringVar(&c.Init, "init", "pytorch", "initialisation: "+strings.Join(nn.InitSchemes, ", "))
	fs.Float64Var(&c.InitScale, "init-scale", 1, "multiplier of the initial weights and biases")
	fs.Float64Var(&c.LabelNoise, "label-noise", 0, "corrupt exactly round(p·N) training labels, each to a uniformly drawn other class, chosen from --seed (Lucas et al. 2021); recorded in label_noise.safetensors, and certify --run evaluates the labels trained on (--labels clean for the dataset's)")
	fs.Float64Var(&c.InitAnchor, "init-anchor", 0, "λ of a penalty (λ/2)‖θ − θ0‖² added to the training loss's gradient: > 0 keeps θT near θ0 (L2-SP), < 0 pushes it away; varies the distance travelled, which Lucas et al. 2021 §5 tie to non-monotonicity, with everything else fixed")
	fs.IntVar(&c.CheckpointEvery, "checkpoint-every", 0, "write checkpoints/step-K.safetensors every K steps (0: none)")
	fs.StringVar(&tf.out, "out", "", "run directory to write (required)")
	fs.BoolVar(&tf.force, "force", false, "replace an existing run directory")
	fs.BoolVar(&tf.resume, "resume", false, "continue an interrupted run from its last checkpoint in OUT.partial")
	fs.StringVar(&tf.dtype, "dtype", "f32", "dtype of the written checkpoints: f32 or f64")
	fs.BoolVar(&tf.quiet, "quiet", false, "print nothing but errors")
	registerSpawnFlags(fs, &tf.spawn)
	return fs
}

// parseFlags parses args; a bad flag is one line of error (exit 2), not
// the whole usage, and -h prints the usage on stdout.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			if fs.Name() == "certify" {
				fmt.Fprintln(stdout, "Usage of certify:")
			} else {
				fmt.Fprintf(stdout, "Usage of certify %s:\n", fs.Name())
			}
			fs.PrintDefaults()
			return errHelp
		}
		if fs.Name() == "certify" {
			return badInputf("%v (see certify --help)", err)
		}
		return badInputf("%s: %v (see certify %s -h)", fs.Name(), err, fs.Name())
	}
	if fs.NArg() > 0 {
		if fs.Name() == "certify" {
			return badInputf("unexpected argument %q (the analysis takes flags only: --run DIR [flags]; see certify --help)", fs.Arg(0))
		}
		return badInputf("%s: unexpected argument %q (see certify %s -h)", fs.Name(), fs.Arg(0), fs.Name())
	}
	return nil
}

func trainCmd(ctx context.Context, args []string) error {
	var tf trainFlags
	fs := newTrainFlagSet(&tf, "train")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := prepareSpawn(&tf, tf.spawn, fs); err != nil {
		return err
	}
	_, err := train(ctx, tf, stderr)
	if ts := (trainStopped{}); errors.As(err, &ts) && ts.saved {
		return interrupted(err, "%s; continue with the same flags and --resume", ts)
	}
	return err
}

// trainStopped is train's error when its context is cancelled: an
// interruptedError saying at which step, and whether that step's checkpoint
// was saved in OUT.partial (so that --resume continues from it).
type trainStopped struct {
	err   error // an interruptedError
	saved bool
}

func (e trainStopped) Error() string { return e.err.Error() }
func (e trainStopped) Unwrap() error { return e.err }

// resolveTask fills the defaults that depend on --task: the loss (mse for
// an autoencoder, cross_entropy otherwise) and the reduction (sum for an
// autoencoder, Lucas et al. 2021's per-example summed squared error; mean
// otherwise). It refuses, naming the flag, an unknown task or reduction and
// an autoencoder trained with cross_entropy or label noise.
func resolveTask(c *nn.RunConfig) error {
	if c.Task == "" { // callers that build the flags themselves (certify demo)
		c.Task = nn.TaskClassify
	}
	switch c.Task {
	case nn.TaskClassify, nn.TaskAutoencoder:
	default:
		return badInputf("train: --task: want classify or autoencoder, found %q", c.Task)
	}
	ae := c.Task == nn.TaskAutoencoder
	if c.Loss == "" {
		c.Loss = "cross_entropy"
		if ae {
			c.Loss = "mse"
		}
	}
	if ae && c.Loss != "mse" {
		return badInputf("train: --loss %s: --task autoencoder trains on the inputs as targets and needs --loss mse", c.Loss)
	}
	if ae && c.LabelNoise != 0 {
		return badInputf("train: --label-noise: --task autoencoder has no labels to corrupt")
	}
	if c.Reduction == "" {
		c.Reduction = nn.ReductionMean
		if ae {
			c.Reduction = nn.ReductionSum
		}
	}
	switch c.Reduction {
	case nn.ReductionMean:
	case nn.ReductionSum:
		if c.Loss != "mse" {
			return badInputf("train: --reduction sum: applies to --loss mse only (cross_entropy has one value per example)")
		}
	default:
		return badInputf("train: --reduction: want sum or mean, found %q", c.Reduction)
	}
	return nil
}

// parseArch turns "784-256-10" into widths.
func parseArch(s string) ([]int, error) {
	parts := strings.Split(s, "-")
	if len(parts) < 2 {
		return nil, fmt.Errorf("--arch %q: want at least an input and an output width, e.g. 784-64-10", s)
	}
	w := make([]int, len(parts))
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("--arch %q: %q is not a positive width", s, p)
		}
		w[i] = v
	}
	return w, nil
}

// trainResult is what train reports back.
type trainResult struct {
	Dir    string
	Config nn.RunConfig
}

// train trains one run into tf.out: it writes everything into OUT.partial
// and renames it to OUT at the end, so a run directory is either complete or
// absent. Interrupted (ctx cancelled), it saves a checkpoint so that
// --resume continues from it, and returns a trainStopped error; it prints
// nothing about the interruption itself.
func train(ctx context.Context, tf trainFlags, log io.Writer) (*trainResult, error) {
	c := tf.cfg
	if tf.out == "" {
		return nil, badInputf("train: --out DIR is required")
	}
	if err := tf.check(); err != nil {
		return nil, err
	}
	if err := tf.checkPartial(); err != nil {
		return nil, err
	}
	dtype := strings.ToUpper(tf.dtype)
	if dtype != "F32" && dtype != "F64" {
		return nil, badInputf("train: --dtype: want f32 or f64, found %q", tf.dtype)
	}
	widths, err := parseArch(c.Arch)
	if err != nil {
		return nil, badInput(err)
	}
	if err := resolveTask(&c); err != nil {
		return nil, err
	}
	ae := c.Task == nn.TaskAutoencoder
	if ae && widths[len(widths)-1] != widths[0] {
		return nil, badInputf("train: --arch %s: --task autoencoder needs as many outputs as inputs (%d), found %d", c.Arch, widths[0], widths[len(widths)-1])
	}
	if c.Loss != "mse" && c.Loss != "cross_entropy" {
		return nil, badInputf("train: --loss: want cross_entropy or mse, found %q", c.Loss)
	}
	if c.Epochs <= 0 || c.Batch <= 0 {
		return nil, badInputf("train: --epochs and --batch must be positive")
	}
	spec := nn.MLPSpec(widths, c.Act, c.Loss)
	if c.Reduction != nn.ReductionMean {
		spec.LossReduction = c.Reduction
	}
	if c.BatchNorm {
		spec = nn.InsertBatchNorm(spec)
	}
	if err := spec.Validate(); err != nil {
		return nil, badInputf("train: --act %q: %v", c.Act, err)
	}
	m, _ := nn.Build(spec)
	opt, err := optim.New(c.Optim, optim.Config{LR: c.LR, Momentum: c.Momentum, Nesterov: c.Nesterov, WeightDecay: c.WeightDecay})
	if err != nil {
		return nil, badInputf("train: %v", err)
	}
	if _, err := os.Stat(tf.out); err == nil && !tf.force {
		return nil, badInputf("train: %s exists; pass --force to replace it", tf.out)
	}
	c.Data.Dir = tf.dataDir
	c.Data.Split = "train"
	c.Data.Limit = tf.limit
	trainSet, err := dataset.Load(c.Data)
	if err != nil {
		return nil, badInput(err)
	}
	if trainSet.D != widths[0] {
		return nil, badInputf("train: --arch %s starts with %d inputs but %s examples have %d features", c.Arch, widths[0], trainSet.Name, trainSet.D)
	}
	if !ae && trainSet.Classes > widths[len(widths)-1] {
		return nil, badInputf("train: --arch %s ends with %d outputs but %s has %d classes", c.Arch, widths[len(widths)-1], trainSet.Name, trainSet.Classes)
	}
	testSpec := c.Data
	testSpec.Split, testSpec.Limit = "test", 0
	testSet, err := dataset.Load(testSpec)
	if err != nil {
		return nil, badInput(err)
	}
	x := mat.NewDense(trainSet.N, trainSet.D, trainSet.X)
	targets := nn.Targets{Labels: trainSet.Y}
	xTest := mat.NewDense(testSet.N, testSet.D, testSet.X)
	testTargets := nn.Targets{Labels: testSet.Y}
	if ae {
		targets, testTargets = nn.Targets{Values: x}, nn.Targets{Values: xTest}
	}
	// --label-noise: the corruption depends on (labels, p, seed) only, so a
	// resumed run draws the same labels.
	var noise nn.LabelNoise
	if c.LabelNoise != 0 {
		noisy, rec, err := nn.CorruptLabels(trainSet.Y, trainSet.Classes, c.LabelNoise, c.Seed)
		if err != nil {
			return nil, badInputf("train: --label-noise: %v", err)
		}
		targets, noise = nn.Targets{Labels: noisy}, rec
		c.LabelNoiseCount = len(rec.Index)
	}

	partial := strings.TrimRight(tf.out, "/") + ".partial"
	theta, startStep := nn.State(nil), 0
	metrics := []byte{}
	if tf.resume {
		theta, startStep, metrics, err = resumeState(partial, m, opt)
		if err != nil {
			return nil, err
		}
	} else {
		if err := os.RemoveAll(partial); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(partial, 0o755); err != nil {
			return nil, err
		}
		theta, err = nn.Init(m, c.Init, c.InitScale, c.Seed)
		if err != nil {
			return nil, badInputf("train: --init: %v", err)
		}
		if s0, err := spawnInit(c, m); err != nil || s0 != nil { // a spawn starts from its parent's θ0
			if err != nil {
				return nil, err
			}
			theta = s0
		}
		if err := spec.Write(filepath.Join(partial, "model.json")); err != nil {
			return nil, err
		}
		if err := nn.WriteState(filepath.Join(partial, "init.safetensors"), theta, dtype); err != nil {
			return nil, err
		}
		// Train from exactly the weights written: θ0 is what the file holds.
		if theta, err = nn.ReadState(filepath.Join(partial, "init.safetensors")); err != nil {
			return nil, err
		}
	}
	if err := writeJSON(filepath.Join(partial, "config.json"), c); err != nil {
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
		s0, err := nn.ReadState(filepath.Join(partial, "init.safetensors"))
		if err != nil {
			return nil, err
		}
		var p0 [][]float64
		for _, k := range m.Trainable() {
			p0 = append(p0, s0[k].Data)
		}
		stepper = nn.Anchored(opt, p0, c.InitAnchor)
	}
	bar := progress.New(os.Stderr, "train")
	if tf.quiet {
		bar = nil
	}
	start := time.Now()
	keys := m.Trainable()
	saveCheckpoint := func(step int) error {
		// made with the first checkpoint: no empty checkpoints/ without one
		if err := os.MkdirAll(filepath.Join(partial, "checkpoints"), 0o755); err != nil {
			return err
		}
		name := filepath.Join(partial, "checkpoints", fmt.Sprintf("step-%d", step))
		if err := nn.WriteState(name+".safetensors", theta, "F64"); err != nil {
			return err
		}
		if err := writeOptimState(name+".optim.safetensors", opt, keys); err != nil {
			return err
		}
		return atomicfile.Write(filepath.Join(partial, "metrics.jsonl"), metrics)
	}
	lastStep := startStep
	hook := func(si nn.StepInfo) error {
		lastStep = si.Step
		if afterStep != nil {
			afterStep(si.Step)
		}
		if si.Step%50 == 0 || si.EpochEnd {
			rec := map[string]any{"step": si.Step, "epoch": si.Epoch, "batch_loss": si.BatchLoss}
			if si.EpochEnd {
				rec["train_loss"] = si.EpochMeanLoss
				if !ae {
					rec["train_accuracy"] = si.EpochAccuracy
				}
			}
			b, _ := json.Marshal(rec)
			metrics = append(append(metrics, b...), '\n')
		}
		bar.Update(si.Step, si.TotalSteps, fmt.Sprintf("epoch %d loss %.4f", si.Epoch+1, si.BatchLoss))
		if c.CheckpointEvery > 0 && si.Step%c.CheckpointEvery == 0 {
			return saveCheckpoint(si.Step)
		}
		return nil
	}
	err = trainRun(ctx, c, m, theta, stepper, x, targets, nn.TrainConfig{Epochs: c.Epochs, Batch: c.Batch, Seed: c.Seed, StartStep: startStep}, hook)
	bar.Done()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			if serr := saveCheckpoint(lastStep); serr != nil {
				return nil, trainStopped{interrupted(err, "interrupted at step %d; saving its checkpoint failed: %v", lastStep, serr), false}
			}
			return nil, trainStopped{interrupted(err, "interrupted at step %d", lastStep), true}
		}
		return nil, err
	}
	c.Steps = lastStep
	c.Seconds = time.Since(start).Seconds()
	c.TrainLoss, c.TrainAccuracy = nn.Evaluate(m, theta, x, targets, 2000)
	c.TestLoss, c.TestAccuracy = nn.Evaluate(m, theta, xTest, testTargets, 2000)
	if ae {
		// Arg-max agreement of a reconstruction with its input is no
		// accuracy: not computed (absent from config.json), not 0.
		c.TrainAccuracy, c.TestAccuracy = 0, 0
	}
	if err := nn.WriteState(filepath.Join(partial, "final.safetensors"), theta, dtype); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(partial, "metrics.jsonl"), metrics); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(partial, "config.json"), c); err != nil {
		return nil, err
	}
	if err := replaceDir(partial, tf.out); err != nil {
		return nil, err
	}
	if !tf.quiet && ae {
		fmt.Fprintf(log, "trained %s: %d steps in %.1fs; train loss %.4f, test loss %.4f (%s reduction)\n",
			tf.out, c.Steps, c.Seconds, c.TrainLoss, c.TestLoss, c.Reduction)
	} else if !tf.quiet {
		fmt.Fprintf(log, "trained %s: %d steps in %.1fs; train loss %.4f, accuracy %.2f%%; test accuracy %.2f%%\n",
			tf.out, c.Steps, c.Seconds, c.TrainLoss, 100*c.TrainAccuracy, 100*c.TestAccuracy)
	}
	return &trainResult{Dir: tf.out, Config: c}, nil
}

// replaceDir renames src to dst, replacing an existing dst only after src
// is complete.
func replaceDir(src, dst string) error {
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
	ents, err := os.ReadDir(filepath.Join(dir, "checkpoints"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, nil, badInputf("train: --resume: no checkpoint with optimizer state in %s (train with --checkpoint-every K)", dir)
		}
		return nil, 0, nil, badInputf("train: --resume: %v", err)
	}
	var steps []int
	for _, e := range ents {
		if sm := stepFile.FindStringSubmatch(e.Name()); sm != nil {
			n, _ := strconv.Atoi(sm[1])
			steps = append(steps, n)
		}
	}
	if len(steps) == 0 {
		return nil, 0, nil, badInputf("train: --resume: no checkpoint with optimizer state in %s", filepath.Join(dir, "checkpoints"))
	}
	sort.Ints(steps)
	step := steps[len(steps)-1]
	base := filepath.Join(dir, "checkpoints", fmt.Sprintf("step-%d", step))
	theta, err := nn.ReadState(base + ".safetensors")
	if err != nil {
		return nil, 0, nil, err
	}
	if err := m.Check(theta, base+".safetensors"); err != nil {
		return nil, 0, nil, badInput(err)
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
		return nil, 0, nil, badInputf("%s: %v", base+".optim.safetensors", err)
	}
	metrics, _ := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	return theta, step, metrics, nil
}
