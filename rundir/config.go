// Package rundir owns the run directory (RUN_FORMAT.md) in both directions:
// Train trains a run from a TrainConfig and writes model.json, θ0 and θT,
// config.json (RunConfig), metrics.jsonl, the checkpoints and the
// label-noise record into OUT.partial, renaming it to OUT when complete;
// Read loads a run directory for analysis (a Run: model.json, the
// checkpoints, config.json, the evaluation data from data.safetensors or
// the data set config.json names), with errors naming the file and the
// field. A sweep point and `certify train` are the same TrainConfig. The
// tensors and models themselves are nn's (nn.ReadSpec, nn.ReadState,
// nn.DataFromTensors).
package rundir

import (
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/certify-mli/certify/internal/keyed"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/nn/optim"
)

// TrainConfig is one training run: everything `certify train` takes except
// where it writes (--out) and how (--force, --resume, --quiet). Its fields
// with a `flag` tag are its keys: the flag of `certify train` and the key of
// a sweep grid's "base" and "axes" (Set, Value, Keys). Adding a setting is
// one tagged field here (or in RunConfig when config.json records it)
// plus its flag; fields may be string, bool, int, uint64, float64 or []int
// (Set). TestTrainFlagsAreConfigKeys in cmd/certify fails when a flag has no
// field or a field no flag.
type TrainConfig struct {
	// RunConfig is what config.json records (the data set, architecture,
	// loss, optimizer, schedule, seed, …).
	RunConfig
	// DType is the dtype of the written θ0 and θT: "f32" or "f64"
	// (checkpoints/ are always F64).
	DType string `flag:"dtype"`
}

// DefaultTrainConfig returns the defaults of `certify train`'s flags.
func DefaultTrainConfig() TrainConfig {
	var c TrainConfig
	c.Data.Name = "mnist"
	c.Arch, c.Act, c.Task = "784-256-256-10", "relu", TaskClassify
	c.Optim, c.LR = "sgd", 0.1
	c.Epochs, c.Batch = 1, 128
	c.Init, c.InitScale = "pytorch", 1
	c.DType = "f32"
	return c
}

// Error is a TrainConfig or training input refused: Field is the key at
// fault ("" when no single key is), Err says why (its text names the flag).
type Error struct {
	Field string
	Err   error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func fieldErrorf(field, format string, args ...any) error {
	return &Error{Field: field, Err: fmt.Errorf(format, args...)}
}

// Activations are the values of the "act" key.
var Activations = []string{"relu", "leaky_relu", "tanh", "sigmoid", "gelu", "softplus", "identity"}

// Datasets are the values of the "data" key (nn/dataset.Load; "_" is read
// as "-").
var Datasets = []string{"mnist", "fashion-mnist", "mnist-small", "idx"}

// ResolveTask fills the defaults that depend on the task: the loss (mse for
// an autoencoder, cross_entropy otherwise) and the reduction (sum for an
// autoencoder, Lucas et al. 2021's per-example summed squared error; mean
// otherwise). It refuses, naming the key, an unknown task or reduction and
// an autoencoder trained with cross_entropy or label noise.
func ResolveTask(c *RunConfig) error {
	if c.Task == "" { // callers that build the configuration themselves (certify demo)
		c.Task = TaskClassify
	}
	switch c.Task {
	case TaskClassify, TaskAutoencoder:
	default:
		return fieldErrorf("task", "train: --task: want classify or autoencoder, found %q", c.Task)
	}
	ae := c.Task == TaskAutoencoder
	if c.Loss == "" {
		c.Loss = "cross_entropy"
		if ae {
			c.Loss = "mse"
		}
	}
	if ae && c.Loss != "mse" {
		return fieldErrorf("loss", "train: --loss %s: --task autoencoder trains on the inputs as targets and needs --loss mse", c.Loss)
	}
	if ae && c.LabelNoise != 0 {
		return fieldErrorf("label-noise", "train: --label-noise: --task autoencoder has no labels to corrupt")
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
			return fieldErrorf("reduction", "train: --reduction sum: applies to --loss mse only (cross_entropy has one value per example)")
		}
	default:
		return fieldErrorf("reduction", "train: --reduction: want sum or mean, found %q", c.Reduction)
	}
	return nil
}

// ParseArch turns "784-256-10" into the layer widths [784 256 10].
func ParseArch(s string) ([]int, error) {
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

// Validate refuses values that have no meaning, before any work (and, for
// a sweep, before any point runs): the data set name, the architecture,
// activation, task, loss and reduction, optimizer, initialisation, counts,
// label-noise fraction and dtype. It returns an *Error naming the key. The
// data files themselves are read by Train.
func (tc TrainConfig) Validate() error {
	c := tc.RunConfig
	spec, err := resolveModel(&c)
	if err != nil {
		return err
	}
	if err := ResolveTask(&c); err != nil {
		return err
	}
	name := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(c.Data.Name)), "_", "-")
	if !slices.Contains(Datasets, name) {
		return fieldErrorf("data", "train: --data %q: unknown data set; want one of %s", c.Data.Name, strings.Join(Datasets, ", "))
	}
	if name == "idx" && c.Data.Dir == "" {
		return fieldErrorf("data-dir", "train: --data idx needs --data-dir DIR")
	}
	widths, err := archWidths(c, spec)
	if err != nil {
		return fieldErrorf("arch", "train: %v", err)
	}
	if c.Model == "" && !slices.Contains(Activations, c.Act) { // --act belongs to --arch; a model.json states its own layers
		return fieldErrorf("act", "train: --act %q: unknown activation; want one of %s", c.Act, strings.Join(Activations, ", "))
	}
	if c.Loss != "mse" && c.Loss != "cross_entropy" {
		return fieldErrorf("loss", "train: --loss: want cross_entropy or mse, found %q", c.Loss)
	}
	if _, err := newOptimizer(c); err != nil {
		return fieldErrorf("optim", "train: %v", err)
	}
	if !slices.Contains(nn.InitSchemes, c.Init) {
		return fieldErrorf("init", "train: --init %q: want one of %s", c.Init, strings.Join(nn.InitSchemes, ", "))
	}
	switch {
	case c.Epochs <= 0:
		return fieldErrorf("epochs", "train: --epochs and --batch must be positive (found %d and %d)", c.Epochs, c.Batch)
	case c.Batch <= 0:
		return fieldErrorf("batch", "train: --epochs and --batch must be positive (found %d and %d)", c.Epochs, c.Batch)
	case c.Data.Limit < 0:
		return fieldErrorf("limit", "train: --limit %d: want 0 (all) or a positive count", c.Data.Limit)
	case !(c.LabelNoise >= 0 && c.LabelNoise <= 1):
		return fieldErrorf("label-noise", "train: --label-noise %v: want a fraction in [0, 1]", c.LabelNoise)
	case c.CheckpointEvery < 0:
		return fieldErrorf("checkpoint-every", "train: --checkpoint-every %d: want 0 (none) or a positive step count", c.CheckpointEvery)
	}
	if d := strings.ToUpper(tc.DType); d != "F32" && d != "F64" {
		return fieldErrorf("dtype", "train: --dtype: want f32 or f64, found %q", tc.DType)
	}
	if c.Task == TaskAutoencoder && widths[len(widths)-1] != widths[0] {
		return fieldErrorf("arch", "train: --arch %s: --task autoencoder needs as many outputs as inputs (%d), found %d", c.Arch, widths[0], widths[len(widths)-1])
	}
	return nil
}

func newOptimizer(c RunConfig) (optim.Optimizer, error) {
	return optim.New(c.Optim, optim.Config{LR: c.LR, Momentum: c.Momentum, Nesterov: c.Nesterov, WeightDecay: c.WeightDecay})
}

// Keys returns the configuration's keys in sorted order (its fields'
// `flag` tags, descending into the embedded RunConfig and its
// dataset.Spec; internal/keyed).
func (tc TrainConfig) Keys() []string { return keyed.Keys(&tc) }

// Kind is the JSON type a grid gives key: "string", "number" or "bool"
// ("" for an unknown key).
func (tc TrainConfig) Kind(key string) string { return keyed.Kind(&tc, key) }

// ErrUnknownKey is wrapped by Set and Value for a key TrainConfig has not.
var ErrUnknownKey = keyed.ErrUnknownKey

// Set sets key from its text as the flag package parses the flag's value
// (strconv.ParseBool, ParseInt/ParseUint with base prefixes, ParseFloat);
// a []int field (e.g. a schedule's milestones) takes a comma-separated list
// ("30,60"; "" for none). Errors are an *Error naming the key; an unknown
// key's wraps ErrUnknownKey.
func (tc *TrainConfig) Set(key, text string) error {
	if err := keyed.Set(tc, key, text); err != nil {
		return &Error{Field: key, Err: err}
	}
	return nil
}

// Value returns key's value as its flag prints it (flag.Value.String):
// what a sweep records in train_flags. An unknown key is an *Error
// wrapping ErrUnknownKey.
func (tc TrainConfig) Value(key string) (string, error) {
	v, err := keyed.Get(&tc, key)
	if err != nil {
		return "", &Error{Field: key, Err: err}
	}
	return v, nil
}

// Values returns every key's Value.
func (tc TrainConfig) Values() map[string]string { return keyed.Values(&tc) }

// FlagValue is key as a flag.Value (Set and String as TrainConfig's), for a
// flag whose type package flag has no Var for, e.g. a []int:
// fs.Var(tc.FlagValue("milestones"), "milestones", "…"). It panics on an
// unknown key, a programming error.
func (tc *TrainConfig) FlagValue(key string) flag.Value {
	if !keyed.Field(tc, key).IsValid() {
		panic("rundir: FlagValue: unknown key " + strconv.Quote(key))
	}
	return keyValue{tc, key}
}

type keyValue struct {
	tc  *TrainConfig
	key string
}

func (v keyValue) Set(s string) error { return v.tc.Set(v.key, s) }

func (v keyValue) String() string {
	if v.tc == nil {
		return ""
	}
	s, _ := v.tc.Value(v.key)
	return s
}
