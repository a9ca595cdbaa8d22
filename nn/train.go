package nn

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// Stepper is an optimizer: one PyTorch optimizer.step() that updates params[i]
// in place from grads[i] (flat slices in Model.Trainable order). Package
// nn/optim provides SGD and Adam.
type Stepper interface {
	Step(params, grads [][]float64)
}

// TrainConfig sets mini-batch training: Epochs passes over the data in
// batches of Batch examples (the last batch of an epoch may be smaller, as
// PyTorch's DataLoader with drop_last=False), shuffled by a permutation drawn
// from (Seed, epoch), so that training is deterministic and can resume at any
// step.
type TrainConfig struct {
	Epochs int
	Batch  int
	Seed   uint64
	// StartStep resumes training after this many steps (the state and the
	// optimizer must be those saved at that step).
	StartStep int
	// EpochStart, if not nil, is called before the first step of every
	// epoch (and before the first step after StartStep, with that step's
	// epoch): a learning-rate schedule sets the rate there (LRSchedule).
	EpochStart func(epoch int)
}

// StepInfo is reported to the step hook after every optimizer step.
type StepInfo struct {
	Step, Epoch   int     // Step counts from 1; Epoch from 0
	StepsPerEpoch int     // ⌈N/Batch⌉
	TotalSteps    int     // Epochs·StepsPerEpoch
	BatchLoss     float64 // training loss of the batch before the step
	EpochEnd      bool    // this step finished an epoch
	EpochMeanLoss float64 // mean batch loss over the epoch (set when EpochEnd)
	EpochAccuracy float64 // fraction of the epoch's examples classified right before their step (set when EpochEnd)
}

// StateChecker is an optimizer whose state (restored from a checkpoint by
// SetState) has per-tensor lengths: CheckParams returns an error naming
// the tensor when the state does not fit params, which Step would
// otherwise panic on. Train calls it before the first step (nn/optim's
// SGD, Adam and AdamW implement it).
type StateChecker interface {
	CheckParams(params [][]float64) error
}

// Train runs mini-batch training of s in place, with the model in training
// mode (Model.ForwardTrain: BatchNorm normalises with batch statistics and
// updates its running statistics in s). hook, if not nil, is called
// after every step; an error from it, or ctx being cancelled, stops training
// and is returned. A non-finite batch loss stops training with an error
// naming the step.
func Train(ctx context.Context, m *Model, s State, opt Stepper, x *mat.Dense, t Targets, cfg TrainConfig, hook func(StepInfo) error) error {
	n, d := x.Dims()
	if n == 0 {
		return fmt.Errorf("train: empty data")
	}
	if cfg.Batch <= 0 || cfg.Epochs <= 0 {
		return fmt.Errorf("train: batch and epochs must be positive (batch %d, epochs %d)", cfg.Batch, cfg.Epochs)
	}
	keys := m.Trainable()
	params := make([][]float64, len(keys))
	for i, k := range keys {
		params[i] = s[k].Data
	}
	if c, ok := opt.(StateChecker); ok {
		if err := c.CheckParams(params); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	grads := make([][]float64, len(keys))
	k := m.OutSize()
	spe := (n + cfg.Batch - 1) / cfg.Batch
	total := spe * cfg.Epochs
	xb := mat.NewDense(cfg.Batch, d, nil)
	var lb []int
	var vb *mat.Dense
	if t.Values != nil {
		vb = mat.NewDense(cfg.Batch, k, nil)
	} else {
		lb = make([]int, cfg.Batch)
	}
	var sumLoss float64
	var correct, seen int
	var perm []int
	permEpoch := -1
	for step := cfg.StartStep; step < total; step++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		epoch, pos := step/spe, step%spe
		if pos == 0 || step == cfg.StartStep {
			sumLoss, correct, seen = 0, 0, 0
			if cfg.EpochStart != nil {
				cfg.EpochStart(epoch)
			}
		}
		if epoch != permEpoch {
			perm, permEpoch = EpochPermutation(n, cfg.Seed, epoch), epoch
		}
		lo, hi := pos*cfg.Batch, min((pos+1)*cfg.Batch, n)
		b := hi - lo
		xs := xb.Slice(0, b, 0, d).(*mat.Dense)
		var tb Targets
		for r := 0; r < b; r++ {
			copy(xs.RawRowView(r), x.RawRowView(perm[lo+r]))
			if vb != nil {
				copy(vb.RawRowView(r), t.Values.RawRowView(perm[lo+r]))
			} else {
				lb[r] = t.Labels[perm[lo+r]]
			}
		}
		if vb != nil {
			tb = Targets{Values: vb.Slice(0, b, 0, k).(*mat.Dense)}
		} else {
			tb = Targets{Labels: lb[:b]}
		}
		if b < 2 && m.HasTrainMode() {
			return fmt.Errorf("train: step %d (epoch %d): a batch of 1 example, but batchnorm1d needs at least 2 in training mode (as PyTorch); change --batch or --limit", step+1, epoch)
		}
		acts := m.ForwardTrain(s, xs) // training mode: BatchNorm uses and tracks batch statistics
		out := acts[len(acts)-1]
		loss, dy := LossReduced(m.Spec.Loss, m.Spec.Reduction(), out, tb, true)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return fmt.Errorf("train: step %d (epoch %d): training loss is %v; lower the learning rate or the init scale", step+1, epoch, loss)
		}
		sumLoss += loss * float64(b)
		correct += Correct(out, tb)
		seen += b
		g := m.Backward(s, acts, dy)
		for i, key := range keys {
			grads[i] = g[key].Data
		}
		opt.Step(params, grads)
		if hook != nil {
			info := StepInfo{Step: step + 1, Epoch: epoch, StepsPerEpoch: spe, TotalSteps: total, BatchLoss: loss, EpochEnd: pos == spe-1}
			if info.EpochEnd {
				info.EpochMeanLoss = sumLoss / float64(seen)
				info.EpochAccuracy = float64(correct) / float64(seen)
			}
			if err := hook(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// EpochPermutation is the order in which epoch visits the n examples: a
// permutation drawn from a PCG generator seeded by (seed, epoch).
func EpochPermutation(n int, seed uint64, epoch int) []int {
	rng := rand.New(rand.NewPCG(seed^0x5851f42d4c957f2d, uint64(epoch)+1))
	return rng.Perm(n)
}

// Evaluate returns the mean loss and the accuracy, in evaluation mode (BatchNorm
// uses its running statistics), of the model with state s on
// x [N, D] in chunks of at most chunk examples (bounded memory).
func Evaluate(m *Model, s State, x *mat.Dense, t Targets, chunk int) (loss, accuracy float64) {
	n, d := x.Dims()
	if chunk <= 0 {
		chunk = n
	}
	var sum float64
	var correct int
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		out := m.Forward(s, x.Slice(lo, hi, 0, d).(*mat.Dense))
		l, _ := LossReduced(m.Spec.Loss, m.Spec.Reduction(), out, t.Rows(lo, hi), false)
		sum += l * float64(hi-lo)
		correct += Correct(out, t.Rows(lo, hi))
	}
	return sum / float64(n), float64(correct) / float64(n)
}
