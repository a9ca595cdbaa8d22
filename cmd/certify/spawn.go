package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/nn/safetensors"
	"github.com/certify-mli/certify/rundir"
)

// spawnFlags are train's spawning flags (Frankle et al. 2020; THEORY.md §10).
type spawnFlags struct {
	from   string
	atStep int
}

// registerSpawnFlags adds --spawn-from and --at-step to train's flags.
func registerSpawnFlags(fs *flag.FlagSet, sf *spawnFlags) {
	fs.StringVar(&sf.from, "spawn-from", "", "spawn from run directory RUN: re-train RUN deterministically (its config.json, θ0 and seed) to step --at-step, then continue with the data order of --seed")
	fs.IntVar(&sf.atStep, "at-step", -1, "with --spawn-from: the step K at which the data order switches to --seed")
}

// spawnKeeps are the train flags a spawn accepts besides --spawn-from and
// --at-step; every other setting is RUN's.
var spawnKeeps = []string{"seed", "out", "force", "quiet", "dtype", "checkpoint-every", "resume"}

// prepareSpawn turns tf into RUN's configuration with the spawn recorded
// (rundir.RunConfig.SpawnFrom, SpawnStep, SpawnSeed = --seed; Seed stays RUN's,
// which orders the data up to step K). It refuses, naming the flag, any
// other training flag, a missing --at-step or --seed, and a RUN without
// config.json or init.safetensors. Without --dtype the checkpoints take the
// dtype of RUN's final.safetensors.
func prepareSpawn(tf *trainFlags, sf spawnFlags, fs *flag.FlagSet) error {
	if sf.from == "" {
		if sf.atStep >= 0 {
			return badInputf("train: --at-step needs --spawn-from RUN")
		}
		return nil
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var other []string
	for name := range set {
		if name != "spawn-from" && name != "at-step" && !slices.Contains(spawnKeeps, name) {
			other = append(other, "--"+name)
		}
	}
	if len(other) > 0 {
		sort.Strings(other)
		return badInputf("train: --spawn-from: %s: a spawn trains with RUN's config.json; only --at-step and --%s apply", strings.Join(other, ", "), strings.Join(spawnKeeps, ", --"))
	}
	if !set["at-step"] || sf.atStep < 0 {
		return badInputf("train: --spawn-from: --at-step K (≥ 0) is required")
	}
	if !set["seed"] {
		return badInputf("train: --spawn-from: --seed S (the data order after step K) is required")
	}
	cfgPath := filepath.Join(sf.from, "config.json")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return badInputf("train: --spawn-from: %v (a run trained by certify train)", err)
	}
	var c rundir.RunConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return badInputf("%s: invalid JSON: %v", cfgPath, err)
	}
	if c.SpawnFrom != "" {
		return badInputf("train: --spawn-from %s: that run is itself a spawn (of %s); spawn from its parent", sf.from, c.SpawnFrom)
	}
	if (c.Arch == "" && c.Model == "") || c.Epochs <= 0 || c.Batch <= 0 {
		return badInputf("%s: arch (or model), epochs and batch are needed to re-train the run", cfgPath)
	}
	if _, err := nn.ReadState(filepath.Join(sf.from, "init.safetensors")); err != nil {
		return badInput(err)
	}
	seed, step := tf.cfg.Seed, sf.atStep
	c.TrainLoss, c.TrainAccuracy, c.TestLoss, c.TestAccuracy, c.Steps, c.Seconds, c.LabelNoiseCount = 0, 0, 0, 0, 0, 0, 0
	c.CheckpointEvery = tf.cfg.CheckpointEvery
	c.SpawnFrom, c.SpawnStep, c.SpawnSeed = sf.from, &step, &seed
	tf.cfg.RunConfig = c
	if !set["dtype"] {
		if ts, _, err := safetensors.Read(filepath.Join(sf.from, "final.safetensors")); err == nil && len(ts) > 0 && ts[0].DType == "F64" {
			tf.cfg.DType = "f64"
		}
	}
	return nil
}
