package rundir

import (
	"context"
	"path/filepath"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/nn"
)

// spawnInit returns the θ0 of a spawned run (Frankle et al. 2020; THEORY.md
// §10), read from its parent's init.safetensors so that it is the parent's
// bit for bit whatever dtype the parent wrote, or nil when c is not a spawn.
// A missing or mismatched file is an *Error naming it.
func spawnInit(c RunConfig, m *nn.Model) (nn.State, error) {
	if c.SpawnFrom == "" {
		return nil, nil
	}
	path := filepath.Join(c.SpawnFrom, InitFile)
	s, err := nn.ReadState(path)
	if err != nil {
		return nil, inputErr(err)
	}
	if err := m.Check(s, path); err != nil {
		return nil, inputErr(err)
	}
	return s, nil
}

// trainRun trains as nn.Train, or as nn.TrainSpawned when c is a spawn: the
// parent's data order (c.Seed) up to step *c.SpawnStep, then *c.SpawnSeed's.
// A step beyond the parent's training is an *Error naming --at-step.
func trainRun(ctx context.Context, c RunConfig, m *nn.Model, s nn.State, opt nn.Stepper, x *mat.Dense, t nn.Targets, cfg nn.TrainConfig, hook func(nn.StepInfo) error) error {
	if c.SpawnFrom == "" {
		return nn.Train(ctx, m, s, opt, x, t, cfg, hook)
	}
	n, _ := x.Dims()
	if err := checkSpawnStep(c, n); err != nil {
		return err
	}
	return nn.TrainSpawned(ctx, m, s, opt, x, t, cfg, *c.SpawnStep, *c.SpawnSeed, hook)
}

// checkSpawnStep refuses a spawn whose step K lies beyond its parent's
// training (epochs × ⌈n/batch⌉ steps on n examples), naming --at-step; nil
// when c is not a spawn.
func checkSpawnStep(c RunConfig, n int) error {
	if c.SpawnFrom == "" || c.SpawnStep == nil {
		return nil
	}
	spe := (n + c.Batch - 1) / c.Batch
	if k := *c.SpawnStep; k > c.Epochs*spe {
		return fieldErrorf("at-step", "train: --at-step %d: %s trains %d steps (%d epochs of %d)", k, c.SpawnFrom, c.Epochs*spe, c.Epochs, spe)
	}
	return nil
}
