package nn

import (
	"context"
	"errors"
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// errSpawnPoint stops the first phase of TrainSpawned at the spawn step.
var errSpawnPoint = errors.New("spawn point reached")

// TrainSpawned is Train with the data order switched at step spawnStep
// (Frankle et al. 2020, "Linear mode connectivity and the lottery ticket
// hypothesis": train to step k, then continue copies with other data
// orders; THEORY.md §10). Steps 1 … spawnStep are exactly those of Train
// with cfg (same shuffling seed cfg.Seed, same optimizer), so the state at
// spawnStep is the parent run's, re-trained deterministically; steps after
// it draw each epoch's permutation from spawnSeed instead (EpochPermutation).
// When spawnStep falls inside an epoch, the rest of that epoch visits the
// positions spawnStep mod ⌈N/Batch⌉ onwards of the new seed's permutation
// (some examples of the epoch are then seen twice and others not at all, as
// when a PyTorch DataLoader's sampler is reseeded mid-epoch). The optimizer
// keeps its state across the switch. cfg.StartStep > spawnStep resumes a
// spawned run after the switch. hook is called after every step, as by
// Train. spawnStep must lie in [0, Epochs·⌈N/Batch⌉].
func TrainSpawned(ctx context.Context, m *Model, s State, opt Stepper, x *mat.Dense, t Targets, cfg TrainConfig, spawnStep int, spawnSeed uint64, hook func(StepInfo) error) error {
	n, _ := x.Dims()
	if cfg.Batch > 0 {
		if total := cfg.Epochs * ((n + cfg.Batch - 1) / cfg.Batch); spawnStep < 0 || spawnStep > total {
			return fmt.Errorf("train: spawn step %d: want a step in [0, %d] (%d epochs of %d steps)", spawnStep, total, cfg.Epochs, (n+cfg.Batch-1)/cfg.Batch)
		}
	}
	if cfg.StartStep < spawnStep {
		h := func(si StepInfo) error {
			if hook != nil {
				if err := hook(si); err != nil {
					return err
				}
			}
			if si.Step == spawnStep {
				return errSpawnPoint
			}
			return nil
		}
		err := Train(ctx, m, s, opt, x, t, cfg, h)
		if !errors.Is(err, errSpawnPoint) {
			if err == nil {
				return fmt.Errorf("train: spawn step %d was never reached", spawnStep)
			}
			return err
		}
		cfg.StartStep = spawnStep
	}
	cfg.Seed = spawnSeed
	return Train(ctx, m, s, opt, x, t, cfg, hook)
}
