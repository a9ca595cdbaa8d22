package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-mli/certify/internal/sweep"
)

// spawnGrid is tinyGrid (4 steps of a 784-8-10 MLP, checkpoints every 2
// steps, seed 3) with a spawn section: children at step 2 with the parent's
// own data order (seed 3) and another (seed 11).
func spawnGrid(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "spawn.json")
	grid := `{
  "base": {"data": "mnist-small", "limit": 200, "arch": "784-8-10", "batch": 50, "epochs": 1, "checkpoint-every": 2, "optim": "sgd", "momentum": 0.9},
  "axes": {"seed": [3]},
  "spawn": {"at-step": [2], "seed": [3, 11]},
  "analysis": {"alphas": 5, "examples": 100, "gauss-tol": 0.01, "no-figures": true}
}`
	if err := os.WriteFile(path, []byte(grid), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A grid that spawns: the local pool trains the parent before its children
// (even on one worker with the children listed first by --only), each
// child's checkpoint at step K is the parent's bit for bit, the child with
// the parent's seed reproduces the parent's final weights and the other
// child's differ; config.json records the spawn.
func TestSweepSpawnLocalPool(t *testing.T) {
	grid := spawnGrid(t)
	g := loadGrid(t, grid)
	if g.Len() != 3 {
		t.Fatalf("grid has %d points, want 1 parent + 2 children", g.Len())
	}
	out := filepath.Join(t.TempDir(), "runs")
	// a child alone, its parent neither selected nor done: refused by name
	code, _, se := runCLI(t, "sweep", grid, "--out", out, "--only", "base+at-step=2_seed=11", "--quiet")
	if code != 2 || !strings.Contains(se, "base+at-step=2_seed=11") || !strings.Contains(se, "(base)") {
		t.Fatalf("child without its parent: exit %d, %q; want 2 naming both points", code, se)
	}
	if code, _, se := runCLI(t, "sweep", grid, "--out", out, "--jobs", "1", "--quiet"); code != 0 {
		t.Fatalf("sweep: exit %d: %s", code, se)
	}
	idx := readIndex(t, out)
	if idx.Counts[sweep.StatusDone] != 3 {
		t.Fatalf("index counts %v; want 3 done", idx.Counts)
	}
	for _, p := range g.Points() {
		if _, err := os.Stat(filepath.Join(out, p.Name, "certificate.json")); err != nil {
			t.Errorf("point %s: %v", p.Name, err)
		}
	}
	parent := filepath.Join(out, "base")
	same, other := filepath.Join(out, "base+at-step=2_seed=3"), filepath.Join(out, "base+at-step=2_seed=11")
	for _, c := range []string{same, other} {
		if !sameFile(t, filepath.Join(parent, "checkpoints", "step-2.safetensors"), filepath.Join(c, "checkpoints", "step-2.safetensors")) {
			t.Errorf("%s: the state at K = 2 is not the parent's", c)
		}
		cfg, _ := os.ReadFile(filepath.Join(c, "config.json"))
		for _, k := range []string{`"spawn_from": "` + parent + `"`, `"spawn_step": 2`, `"seed": 3`, `"spawn_seed": `, `"momentum": 0.9`} {
			if !strings.Contains(string(cfg), k) {
				t.Errorf("%s: config.json lacks %s:\n%s", c, k, cfg)
			}
		}
	}
	if !sameFile(t, filepath.Join(parent, "final.safetensors"), filepath.Join(same, "final.safetensors")) {
		t.Error("the child with the parent's seed does not reproduce the parent's final weights")
	}
	if sameFile(t, filepath.Join(parent, "final.safetensors"), filepath.Join(other, "final.safetensors")) {
		t.Error("the child with seed 11 has the parent's final weights")
	}
	if sameFile(t, filepath.Join(parent, "checkpoints", "step-4.safetensors"), filepath.Join(other, "checkpoints", "step-4.safetensors")) {
		t.Error("the child with seed 11 equals the parent after K")
	}
	if e := idx.Points[2]; e.Name != "base+at-step=2_seed=11" || e.Status != sweep.StatusDone {
		t.Errorf("index point 2: %+v", e)
	}
}

// --index of a child whose parent is not done (what a SLURM task would
// meet without the dependency) is refused naming the parent.
func TestSweepSpawnIndexNeedsParent(t *testing.T) {
	grid := spawnGrid(t)
	out := filepath.Join(t.TempDir(), "runs")
	code, _, se := runCLI(t, "sweep", grid, "--out", out, "--index", "1", "--quiet")
	if code != 2 || !strings.Contains(se, "point 0 (base)") || !strings.Contains(se, "not done") {
		t.Fatalf("exit %d, %q; want 2 naming the parent", code, se)
	}
}

// On SLURM the children are a second array submitted with
// --dependency=afterok on the parents' job; both scripts run the same
// grid's points by index.
func TestSweepSpawnEmitSlurm(t *testing.T) {
	grid := spawnGrid(t)
	out := filepath.Join(t.TempDir(), "runs")
	code, so, se := runCLI(t, "sweep", grid, "--out", out, "--emit", "slurm", "--certify", "/usr/bin/true")
	if code != 0 {
		t.Fatalf("emit: exit %d: %s", code, se)
	}
	parents, children := mustRead(t, filepath.Join(out, "sweep.sbatch")), mustRead(t, filepath.Join(out, spawnScript))
	if !strings.Contains(parents, "#SBATCH --array=0\n") || !strings.Contains(children, "#SBATCH --array=1-2\n") {
		t.Errorf("arrays: parents\n%s\nchildren\n%s", parents, children)
	}
	want := "sbatch --dependency=afterok:$(sbatch --parsable " + filepath.Join(out, "sweep.sbatch") + ") " + filepath.Join(out, spawnScript)
	if !strings.Contains(so, "submit with: "+want) || !strings.Contains(children, "Submit with: "+want) {
		t.Errorf("submit line missing %q:\n%s\n%s", want, so, children)
	}
}

// Bad spawn sections are refused naming the field.
func TestSweepSpawnBadSections(t *testing.T) {
	for _, c := range []struct{ spawn, want string }{
		{`{"at-step": [1]}`, `missing "seed"`},
		{`{"at-step": [-1], "seed": [1]}`, "spawn.at-step[0]"},
		{`{"at-step": [1, 1], "seed": [1]}`, "spawn.at-step[1]: duplicate"},
		{`{"at-step": [1], "seed": [], "lr": [1]}`, "spawn.seed: empty"},
		{`{"at-step": [1], "seeds": [1]}`, "spawn.seeds: unknown key"},
		{`{"at-step": 1, "seed": [1]}`, "spawn.at-step: want a list"},
	} {
		_, err := sweep.Parse("g.json", []byte(`{"base": {"arch": "784-8-10"}, "axes": {"seed": [1]}, "spawn": `+c.spawn+`}`), sweepSchema())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("spawn %s: %v; want an error with %q", c.spawn, err, c.want)
		}
	}
}

// The shipped spawn grid (docs/sweeps.md) parses into 2 parents and 12
// children in the documented order, every point's values valid.
func TestShippedSpawnGrid(t *testing.T) {
	g := loadGrid(t, filepath.Join("..", "..", "testdata", "spawn", "spawn-mlp.json"))
	if g.Len() != 14 {
		t.Fatalf("%d points, want 14", g.Len())
	}
	for i, c := range []struct {
		name   string
		parent int
	}{{"seed=0+at-step=0_seed=11", 0}, {"seed=0+at-step=0_seed=12", 0}, {"seed=0+at-step=4_seed=11", 0}, {"seed=1+at-step=0_seed=11", 1}} {
		idx := []int{2, 3, 4, 8}[i]
		p := g.Point(idx)
		if p.Name != c.name || p.Parent == nil || *p.Parent != c.parent {
			t.Errorf("point %d: %s parent %v, want %s parent %d", idx, p.Name, p.Parent, c.name, c.parent)
		}
	}
	for _, p := range g.Points() {
		if err := checkPointValues(g, p); err != nil {
			t.Error(err)
		}
	}
}
