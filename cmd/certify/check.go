package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/nn/optim"
)

// trainActivations are the values of train's --act.
var trainActivations = []string{"relu", "leaky_relu", "tanh", "sigmoid", "gelu", "softplus", "identity"}

// knownDatasets are the values of train's --data (nn/dataset.Load; "_"
// is read as "-").
var knownDatasets = []string{"mnist", "fashion-mnist", "mnist-small", "idx"}

// check refuses train flag values that have no meaning, before any work
// (and, for a sweep, before any point runs): the dataset name, the
// architecture, activation, loss, optimizer, initialisation, counts and
// label-noise fraction. The data files themselves are read by train.
func (tf trainFlags) check() error {
	c := tf.cfg
	if err := resolveTask(&c); err != nil { // --task's defaults for --loss and --reduction, and its refusals
		return err
	}
	name := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(c.Data.Name)), "_", "-")
	if !slices.Contains(knownDatasets, name) {
		return badInputf("train: --data %q: unknown data set; want one of %s", c.Data.Name, strings.Join(knownDatasets, ", "))
	}
	if name == "idx" && tf.dataDir == "" {
		return badInputf("train: --data idx needs --data-dir DIR")
	}
	if _, err := parseArch(c.Arch); err != nil {
		return badInputf("train: %v", err)
	}
	if !slices.Contains(trainActivations, c.Act) {
		return badInputf("train: --act %q: unknown activation; want one of %s", c.Act, strings.Join(trainActivations, ", "))
	}
	if c.Loss != "mse" && c.Loss != "cross_entropy" {
		return badInputf("train: --loss: want cross_entropy or mse, found %q", c.Loss)
	}
	if _, err := optim.New(c.Optim, optim.Config{LR: c.LR, Momentum: c.Momentum, Nesterov: c.Nesterov, WeightDecay: c.WeightDecay}); err != nil {
		return badInputf("train: %v", err)
	}
	if !slices.Contains(nn.InitSchemes, c.Init) {
		return badInputf("train: --init %q: want one of %s", c.Init, strings.Join(nn.InitSchemes, ", "))
	}
	switch {
	case c.Epochs <= 0 || c.Batch <= 0:
		return badInputf("train: --epochs and --batch must be positive (found %d and %d)", c.Epochs, c.Batch)
	case tf.limit < 0:
		return badInputf("train: --limit %d: want 0 (all) or a positive count", tf.limit)
	case !(c.LabelNoise >= 0 && c.LabelNoise <= 1):
		return badInputf("train: --label-noise %v: want a fraction in [0, 1]", c.LabelNoise)
	case c.CheckpointEvery < 0:
		return badInputf("train: --checkpoint-every %d: want 0 (none) or a positive step count", c.CheckpointEvery)
	}
	if d := strings.ToUpper(tf.dtype); d != "F32" && d != "F64" {
		return badInputf("train: --dtype: want f32 or f64, found %q", tf.dtype)
	}
	return nil
}

// checkPartial refuses to start a run over an interrupted one: OUT.partial
// exists and neither --resume (continue it) nor --force (discard it) was
// given.
func (tf trainFlags) checkPartial() error {
	partial := strings.TrimRight(tf.out, "/") + ".partial"
	if tf.resume || tf.force {
		return nil
	}
	if _, err := os.Stat(partial); err != nil {
		return nil
	}
	last := "no checkpoint saved"
	if ents, err := os.ReadDir(partial + "/checkpoints"); err == nil && len(ents) > 0 {
		last = fmt.Sprintf("%d checkpoint(s), the last %s", len(ents), ents[len(ents)-1].Name())
	}
	return badInputf("train: %s holds an interrupted run (%s); continue it with the same flags and --resume, or start over with --force (discards it)", partial, last)
}
