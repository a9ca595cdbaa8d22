package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/certify-mli/certify/rundir"
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
	if _, err := rundir.Read(whole, 100); err != nil {
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

// TestTrainFlagsAreConfigKeys: the flags of `certify train` other than
// where and how it writes are exactly rundir.TrainConfig's keys, each with
// the configuration's default as its default, and parsing a flag sets the
// key a grid sets (so a flag and a grid key cannot drift apart).
func TestTrainFlagsAreConfigKeys(t *testing.T) {
	var tf trainFlags
	fs := newTrainFlagSet(&tf, "train")
	def := rundir.DefaultTrainConfig()
	var flags []string
	fs.VisitAll(func(f *flag.Flag) {
		switch f.Name {
		case "out", "force", "resume", "quiet", "spawn-from", "at-step":
			return
		}
		flags = append(flags, f.Name)
		if v, err := def.Value(f.Name); err != nil || v != f.DefValue {
			t.Errorf("--%s: default %q, TrainConfig's %q (%v)", f.Name, f.DefValue, v, err)
		}
	})
	if keys := def.Keys(); !reflect.DeepEqual(flags, keys) {
		t.Errorf("train flags %v, TrainConfig keys %v", flags, keys)
	}
	args := []string{"--lr", "0.03", "--data", "idx", "--data-dir", "/d", "--limit", "9", "--seed", "5", "--dtype", "f64", "--batchnorm"}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	grid := rundir.DefaultTrainConfig()
	for i := 0; i < len(args); i += 2 {
		v := "true"
		if i+1 < len(args) {
			v = args[i+1]
		}
		if err := grid.Set(args[i][2:], v); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(tf.cfg, grid) {
		t.Errorf("flags give %+v, grid keys %+v", tf.cfg, grid)
	}
}
