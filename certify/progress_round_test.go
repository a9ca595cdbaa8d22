package certify

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// TestProgressWithinRounds: a branch and bound's progress in leaves never
// falls, ends at the certificate's leaves, and from the initial leaves on
// moves by at most one leaf per sub-batch of one fresh leaf: a split leaf
// counts as its two children as they are evaluated, so a long round (hours
// on issue 13's resnet-8, where the count stood still at its start) shows
// its progress. Without it the count jumps by a round's splits at once.
func TestProgressWithinRounds(t *testing.T) {
	p := overshootPath(t)
	var seen []int
	o := CertifyOptions{Tolerance: 0, DeltaTol: 1e-12, MaxIntervals: 200, Workers: 1, subBatch: 1,
		Progress: func(stage string, done, total int) {
			if stage == "certificate" && total == 200 {
				seen = append(seen, done)
			}
		}}
	c, err := Certify(context.Background(), p, o)
	if err != nil {
		t.Fatal(err)
	}
	if c.Leaves < 64 {
		t.Fatalf("the search made %d leaves: the test needs several rounds", c.Leaves)
	}
	if len(seen) == 0 || seen[0] != 0 || seen[len(seen)-1] != c.Leaves {
		t.Fatalf("progress %v: want it to start at 0 and end at the %d leaves", seen, c.Leaves)
	}
	initial := 32
	for k := 1; k < len(seen); k++ {
		if seen[k] < seen[k-1] {
			t.Fatalf("progress fell from %d to %d (%v)", seen[k-1], seen[k], seen)
		}
		if seen[k-1] >= initial && seen[k]-seen[k-1] > 1 {
			t.Fatalf("progress jumped from %d to %d within the rounds (%v)", seen[k-1], seen[k], seen)
		}
	}
}

// TestProgressResumedStartsWhereSaved: a search resumed from a checkpoint
// reports its first progress at the saved state's count, not at 0 (a bar
// measures its rate from its first count: from 0, the restored leaves
// looked like seconds' work and the ETA after a resume was far too short),
// and goes on from there to the uninterrupted search's leaves.
func TestProgressResumedStartsWhereSaved(t *testing.T) {
	p := overshootPath(t)
	base := CertifyOptions{Tolerance: 0, DeltaTol: 1e-12, MaxIntervals: 200, Workers: 1, subBatch: 1}
	ref, err := Certify(context.Background(), p, base)
	if err != nil {
		t.Fatal(err)
	}
	ck := &Checkpoint{File: filepath.Join(t.TempDir(), "c.ckpt"), Key: "k"}
	ctx, cancel := context.WithCancel(context.Background())
	o := base
	o.Checkpoint = ck
	stopAt := 0
	o.Progress = func(_ string, done, _ int) {
		if done >= ref.Leaves/2 && done > 32 && stopAt == 0 {
			stopAt = done
			cancel()
		}
	}
	if _, err := Certify(ctx, p, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("the interrupted search: %v, want context.Canceled", err)
	}
	var seen []int
	o.Progress = func(_ string, done, total int) {
		if total == 200 {
			seen = append(seen, done)
		}
	}
	c, err := Certify(context.Background(), p, o)
	if err != nil {
		t.Fatal(err)
	}
	if c.Leaves != ref.Leaves || len(seen) == 0 || seen[len(seen)-1] != ref.Leaves {
		t.Fatalf("resumed: %d leaves, progress %v; want the uninterrupted %d", c.Leaves, seen, ref.Leaves)
	}
	if seen[0] <= 32 || seen[0] > stopAt {
		t.Errorf("the resumed search's first progress is %d, want the saved state's count (the search was stopped at %d)", seen[0], stopAt)
	}
	for k := 1; k < len(seen); k++ {
		if seen[k] < seen[k-1] {
			t.Fatalf("progress fell from %d to %d (%v)", seen[k-1], seen[k], seen)
		}
	}
}
