package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/certify-mli/certify/internal/progress"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/rundir"
)

var errHelp = errors.New("help requested")

// afterStep, when set (by tests), is called after every training step.
var afterStep func(step int)

// trainFlags are the flags of `certify train`: the run's configuration
// (rundir.TrainConfig, whose keys are the flag names) and where and how to
// write it.
type trainFlags struct {
	cfg    rundir.TrainConfig
	out    string
	force  bool
	resume bool
	quiet  bool
	spawn  spawnFlags // --spawn-from, --at-step (spawn.go)
}

// newTrainFlagSet binds the flags to tf, with rundir.DefaultTrainConfig's
// values as their defaults. A flag of the configuration has the name of its
// key (rundir.TrainConfig.Keys; TestTrainFlagsAreConfigKeys).
func newTrainFlagSet(tf *trainFlags, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	tf.cfg = rundir.DefaultTrainConfig()
	c := &tf.cfg
	fs.StringVar(&c.Data.Name, "data", c.Data.Name, "dataset: mnist, fashion-mnist, mnist-small (the built-in 5000/1000 subset) or idx (with --data-dir)")
	fs.StringVar(&c.Data.Dir, "data-dir", c.Data.Dir, "directory of idx files (gzipped or not) to read instead of the dataset's default location")
	fs.IntVar(&c.Data.Limit, "limit", c.Data.Limit, "train on the first N training examples (0: all)")
	fs.StringVar(&c.Arch, "arch", c.Arch, "layer widths, input first, output last (784-256-10), or a built-in architecture for 28×28×1 images: resnet-{8,14,20}-{bn,bn-identity,nobn-scale}, vgg-small, lenet")
	fs.StringVar(&c.Model, "model", c.Model, "model.json to train instead of --arch: any architecture RUN_FORMAT.md describes (residual blocks included); its loss is used")
	fs.StringVar(&c.Milestones, "milestones", c.Milestones, "MultiStepLR: comma-separated epochs at which the learning rate is multiplied by --lr-gamma (PyTorch's scheduler stepped every epoch)")
	fs.Float64Var(&c.LRGamma, "lr-gamma", c.LRGamma, "MultiStepLR factor at each milestone (0: PyTorch's 0.1)")
	fs.BoolVar(&c.ZeroInitResidual, "zero-init-residual", c.ZeroInitResidual, "zero-γ identity init: set the weight (γ) of the last batchnorm1d or batchnorm2d of every residual body to 0, so each block starts as its shortcut (the resnet-N-bn-identity variant; PyTorch's zero_init_residual)")
	fs.StringVar(&c.Act, "act", c.Act, "activation between linear layers: relu, leaky_relu, tanh, sigmoid, gelu, softplus, identity")
	fs.BoolVar(&c.BatchNorm, "batchnorm", c.BatchNorm, "insert batchnorm1d after every hidden linear layer, before the activation (PyTorch's BatchNorm1d; the analysis uses the interpolate policy)")
	fs.StringVar(&c.Task, "task", c.Task, "classify (targets: the labels) or autoencoder (targets: the inputs, linear output layer; THEORY.md §11)")
	fs.StringVar(&c.Loss, "loss", c.Loss, "training loss: cross_entropy or mse (on one-hot labels for classify, on the inputs for autoencoder); default cross_entropy for classify, mse for autoencoder")
	fs.StringVar(&c.Reduction, "reduction", c.Reduction, "mse reduction over one example's outputs: sum (Σ‖γ_i − y_i‖² averaged over examples, the paper's autoencoder loss) or mean (PyTorch's default, also over the outputs); default sum for autoencoder, mean for classify")
	fs.StringVar(&c.Optim, "optim", c.Optim, "optimizer: sgd, adam or adamw (PyTorch's update rules)")
	fs.Float64Var(&c.LR, "lr", c.LR, "learning rate")
	fs.Float64Var(&c.Momentum, "momentum", c.Momentum, "SGD momentum")
	fs.BoolVar(&c.Nesterov, "nesterov", c.Nesterov, "SGD with Nesterov momentum")
	fs.Float64Var(&c.WeightDecay, "weight-decay", c.WeightDecay, "L2 weight decay added to the gradient (decoupled for adamw)")
	fs.IntVar(&c.Epochs, "epochs", c.Epochs, "passes over the training data")
	fs.IntVar(&c.Batch, "batch", c.Batch, "mini-batch size")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "seed of the initialisation and the shuffling")
	fs.StringVar(&c.Init, "init", c.Init, "initialisation: "+strings.Join(nn.InitSchemes, ", "))
	fs.Float64Var(&c.InitScale, "init-scale", c.InitScale, "multiplier of the initial weights and biases")
	fs.Float64Var(&c.LabelNoise, "label-noise", c.LabelNoise, "corrupt exactly round(p·N) training labels, each to a uniformly drawn other class, chosen from --seed (Lucas et al. 2021); recorded in label_noise.safetensors, and certify --run evaluates the labels trained on (--labels clean for the dataset's)")
	fs.Float64Var(&c.InitAnchor, "init-anchor", c.InitAnchor, "λ of a penalty (λ/2)‖θ − θ0‖² added to the training loss's gradient: > 0 keeps θT near θ0 (L2-SP), < 0 pushes it away; varies the distance travelled, which Lucas et al. 2021 §5 tie to non-monotonicity, with everything else fixed")
	fs.IntVar(&c.CheckpointEvery, "checkpoint-every", c.CheckpointEvery, "write checkpoints/step-K.safetensors every K steps (0: none)")
	fs.StringVar(&tf.out, "out", "", "run directory to write (required)")
	fs.BoolVar(&tf.force, "force", false, "replace an existing run directory")
	fs.BoolVar(&tf.resume, "resume", false, "continue an interrupted run from its last checkpoint in OUT.partial")
	fs.StringVar(&c.DType, "dtype", c.DType, "dtype of the written checkpoints: f32 or f64")
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

// trainResult is what train reports back.
type trainResult struct {
	Dir    string
	Config rundir.RunConfig
}

// train runs rundir.Train with tf and prints its one line to log (unless
// --quiet). Bad input is an inputError (exit 2); an interruption is a
// trainStopped.
func train(ctx context.Context, tf trainFlags, log io.Writer) (*trainResult, error) {
	bar := progress.New(os.Stderr, "train")
	if tf.quiet {
		bar = nil
	}
	c, err := rundir.Train(ctx, tf.cfg, rundir.Options{Out: tf.out, Force: tf.force, Resume: tf.resume, Progress: bar, AfterStep: afterStep})
	var stop *rundir.Stopped
	var bad *rundir.Error
	switch {
	case errors.As(err, &stop):
		return nil, trainStopped{interrupted(stop.Err, "%s", stop.Error()), stop.Saved}
	case errors.As(err, &bad):
		return nil, badInput(err)
	case err != nil:
		return nil, err
	}
	if !tf.quiet && c.Task == rundir.TaskAutoencoder {
		fmt.Fprintf(log, "trained %s: %d steps in %.1fs; train loss %.4f, test loss %.4f (%s reduction)\n",
			tf.out, c.Steps, c.Seconds, c.TrainLoss, c.TestLoss, c.Reduction)
	} else if !tf.quiet {
		fmt.Fprintf(log, "trained %s: %d steps in %.1fs; train loss %.4f, accuracy %.2f%%; test accuracy %.2f%%\n",
			tf.out, c.Steps, c.Seconds, c.TrainLoss, 100*c.TrainAccuracy, 100*c.TestAccuracy)
	}
	return &trainResult{Dir: tf.out, Config: *c}, nil
}
