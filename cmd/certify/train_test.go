package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/certify-mli/certify/nn"
)

func smallTrainFlags(out string) trainFlags {
	var tf trainFlags
	fs := newTrainFlagSet(&tf, "train")
	fs.Parse([]string{"--data", "mnist-small", "--limit", "500", "--arch", "784-16-10", "--optim", "adam", "--lr", "0.01",
		"--epochs", "2", "--batch", "50", "--seed", "3", "--checkpoint-every", "4", "--dtype", "f64", "--quiet", "--out", out})
	return tf
}

// TestTrainResumeIsBitIdentical interrupts training at step 7 and resumes it
// from the last checkpoint: the final weights must equal those of an
// uninterrupted run bit for bit, and the interrupted run leaves no run
// directory behind, only OUT.partial.
func TestTrainResumeIsBitIdentical(t *testing.T) {
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole")
	if _, err := train(context.Background(), smallTrainFlags(whole), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut")
	ctx, cancel := context.WithCancel(context.Background())
	afterStep = func(step int) {
		if step == 7 {
			cancel()
		}
	}
	_, err := train(ctx, smallTrainFlags(cut), &bytes.Buffer{})
	afterStep = nil
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted training returned %v", err)
	}
	if _, err := os.Stat(cut); err == nil {
		t.Fatal("an interrupted run left a run directory")
	}
	if _, err := os.Stat(filepath.Join(cut+".partial", "checkpoints", "step-7.optim.safetensors")); err != nil {
		t.Fatalf("no checkpoint saved on interrupt: %v", err)
	}
	tf := smallTrainFlags(cut)
	tf.resume = true
	if _, err := train(context.Background(), tf, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	a, err := os.ReadFile(filepath.Join(whole, "final.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(cut, "final.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("resumed training ended with different weights")
	}
	// Refuses to overwrite without --force.
	if _, err := train(context.Background(), smallTrainFlags(whole), &bytes.Buffer{}); err == nil {
		t.Error("train overwrote an existing run without --force")
	}
	// The run loads and checks as a run directory.
	if _, err := nn.LoadRun(whole, 100); err != nil {
		t.Error(err)
	}
}

// TestTrainNoCheckpointsDirectory: without --checkpoint-every the run
// directory has no (empty) checkpoints/ directory.
func TestTrainNoCheckpointsDirectory(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	tf := smallTrainFlags(out)
	tf.cfg.CheckpointEvery = 0
	if _, err := train(context.Background(), tf, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "final.safetensors")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "checkpoints")); err == nil {
		t.Error("checkpoints/ created without --checkpoint-every")
	}
}
