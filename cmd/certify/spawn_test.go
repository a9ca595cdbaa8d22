package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}

// Spawning re-trains the parent deterministically to step K: with the
// parent's own seed the spawn is the parent bit for bit (SGD with momentum,
// K inside an epoch, so the optimizer state and the mid-epoch switch are
// both exercised); with another seed its checkpoint at K is the parent's and
// its final weights differ.
func TestSpawnDeterminism(t *testing.T) {
	dir := t.TempDir()
	parent := filepath.Join(dir, "parent")
	common := []string{"--quiet", "--checkpoint-every", "8"}
	code, _, se := runCLI(t, append([]string{"train", "--data", "mnist-small", "--limit", "300", "--arch", "784-16-10", "--optim", "sgd",
		"--lr", "0.05", "--momentum", "0.9", "--epochs", "3", "--batch", "64", "--seed", "4", "--out", parent}, common...)...)
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, se)
	}
	same, other := filepath.Join(dir, "same"), filepath.Join(dir, "other")
	for _, c := range []struct{ out, seed string }{{same, "4"}, {other, "9"}} {
		code, _, se := runCLI(t, append([]string{"train", "--spawn-from", parent, "--at-step", "8", "--seed", c.seed, "--out", c.out}, common...)...)
		if code != 0 {
			t.Fatalf("spawn seed %s: exit %d: %s", c.seed, code, se)
		}
	}
	if !sameFile(t, filepath.Join(parent, "init.safetensors"), filepath.Join(other, "init.safetensors")) {
		t.Error("the spawn's θ0 is not its parent's")
	}
	if !sameFile(t, filepath.Join(parent, "final.safetensors"), filepath.Join(same, "final.safetensors")) {
		t.Error("a spawn with the parent's own seed does not reproduce the parent's final weights")
	}
	if !sameFile(t, filepath.Join(parent, "checkpoints", "step-8.safetensors"), filepath.Join(other, "checkpoints", "step-8.safetensors")) {
		t.Error("the spawn's state at K = 8 is not the parent's")
	}
	if sameFile(t, filepath.Join(parent, "final.safetensors"), filepath.Join(other, "final.safetensors")) {
		t.Error("another seed after K left the final weights unchanged")
	}
	cfg, _ := os.ReadFile(filepath.Join(other, "config.json"))
	for _, k := range []string{`"spawn_from": "` + parent, `"spawn_step": 8`, `"spawn_seed": 9`, `"seed": 4`, `"momentum": 0.9`} {
		if !strings.Contains(string(cfg), k) {
			t.Errorf("config.json lacks %s:\n%s", k, cfg)
		}
	}
}

// A spawn takes its parent's configuration: another training flag, a
// missing --at-step or a step beyond the run are refused (exit 2) by name.
func TestSpawnRefuses(t *testing.T) {
	dir := t.TempDir()
	parent := filepath.Join(dir, "parent")
	code, _, se := runCLI(t, "train", "--data", "mnist-small", "--limit", "100", "--arch", "784-8-10", "--epochs", "1", "--batch", "50", "--seed", "1", "--out", parent, "--quiet")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, se)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--at-step", "1", "--seed", "2", "--lr", "0.5"}, "--lr"},
		{[]string{"--seed", "2"}, "--at-step K"},
		{[]string{"--at-step", "1"}, "--seed S"},
		{[]string{"--at-step", "3", "--seed", "2"}, "--at-step 3"},
	} {
		args := append([]string{"train", "--spawn-from", parent, "--out", filepath.Join(dir, "s"), "--quiet"}, c.args...)
		code, _, se := runCLI(t, args...)
		if code != 2 || !strings.Contains(se, c.want) {
			t.Errorf("%v: exit %d, %q; want 2 naming %s", c.args, code, se, c.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "s.partial")); err == nil {
			t.Errorf("%v: a refused spawn left s.partial behind (a retry would be told to --resume)", c.args)
		}
	}
}

// TestSpawnFromModelRun: a run trained from model.json (config.json has no
// arch or act) spawns, and the spawn with the parent's seed at step K
// reproduces the parent's final weights bit for bit.
func TestSpawnFromModelRun(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model.json")
	if err := os.WriteFile(model, []byte(residualModelJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	parent := filepath.Join(dir, "parent")
	code, _, se := runCLI(t, "train", "--data", "mnist-small", "--limit", "100", "--model", model, "--epochs", "1", "--batch", "50", "--seed", "1", "--out", parent, "--quiet")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, se)
	}
	spawn := filepath.Join(dir, "spawn")
	if code, _, se := runCLI(t, "train", "--spawn-from", parent, "--at-step", "1", "--seed", "1", "--out", spawn, "--quiet"); code != 0 {
		t.Fatalf("spawn: exit %d: %s", code, se)
	}
	a, errA := os.ReadFile(filepath.Join(parent, "final.safetensors"))
	b, errB := os.ReadFile(filepath.Join(spawn, "final.safetensors"))
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		t.Fatalf("spawn with the parent's seed: final.safetensors differs from the parent's (%v, %v)", errA, errB)
	}
}
