package nn

import (
	"context"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// lrSpy is a Stepper with a settable rate that records the rate of every step.
type lrSpy struct {
	lr   float64
	seen []float64
}

func (s *lrSpy) Step(_, _ [][]float64) { s.seen = append(s.seen, s.lr) }
func (s *lrSpy) SetLR(lr float64)      { s.lr = lr }

// TestTrainLRSchedule: under LRSchedule every step of epoch e runs at the
// MultiStepLR rate of e (milestones [1, 3, 3], γ = 0.5: 0.8, 0.4, 0.4, 0.1),
// also when training resumes in the middle of an epoch.
func TestTrainLRSchedule(t *testing.T) {
	m, err := Build(MLPSpec([]int{2, 3, 2}, "relu", "mse"))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := Init(m, "pytorch", 1, 1)
	x := mat.NewDense(6, 2, []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	tg := Targets{Values: mat.NewDense(6, 2, nil)}
	want := []float64{0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.1, 0.1, 0.1}
	for _, start := range []int{0, 4} {
		spy := &lrSpy{lr: 0.8}
		sched, err := LRSchedule(spy, 0.8, []int{1, 3, 3}, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		if err := Train(context.Background(), m, s.Clone(), spy, x, tg, TrainConfig{Epochs: 4, Batch: 2, Seed: 1, StartStep: start, EpochStart: sched}, nil); err != nil {
			t.Fatal(err)
		}
		for k, lr := range spy.seen {
			if lr != want[start+k] {
				t.Fatalf("start %d: step %d ran at lr %v, want %v (all: %v)", start, start+k+1, lr, want[start+k], spy.seen)
			}
		}
		if len(spy.seen) != len(want)-start {
			t.Fatalf("start %d: %d steps, want %d", start, len(spy.seen), len(want)-start)
		}
	}
	if _, err := LRSchedule(&lrSpy{}, 0.1, []int{2, 1}, 0.1); err == nil {
		t.Fatal("decreasing milestones accepted")
	}
	if got, err := ParseMilestones(" 30, 60 "); err != nil || len(got) != 2 || got[1] != 60 {
		t.Fatalf("ParseMilestones: %v, %v", got, err)
	}
	if _, err := ParseMilestones("30,x"); err == nil {
		t.Fatal("ParseMilestones accepted x")
	}
}
