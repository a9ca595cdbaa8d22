package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/certify-mli/certify/internal/atomicfile"
	"github.com/certify-mli/certify/internal/sweep"
)

// Sweep grids that spawn (a grid's "spawn" section; docs/sweeps.md,
// Frankle et al. 2020). A child point is `certify train --spawn-from
// OUT/PARENT --at-step K --seed S` with the grid's analysis; it needs its
// parent point finished first: the local pool runs parents before children,
// a SLURM child array depends on the parents' array (afterok), and a child
// run alone (--index, --only) is refused while its parent is not done.

// spawnScript is the file of the child points' SLURM array.
const spawnScript = "sweep-spawn.sbatch"

// spawnPointFlags returns the training flags of child point p: its parent
// point's run directory (which must be done), p's at-step and seed, turned
// into the parent's configuration by prepareSpawn.
func spawnPointFlags(st *sweep.Store, g *sweep.Grid, p sweep.Point) (trainFlags, error) {
	var tf trainFlags
	par := g.Point(*p.Parent)
	if !st.Done(par) {
		return tf, badInputf("sweep: point %d (%s) spawns from point %d (%s), which is not done: run it first (the local pool orders them; on SLURM the child array waits for the parents' job)", p.Index, p.Name, par.Index, par.Name)
	}
	fs := newTrainFlagSet(&tf, "train")
	args := []string{"--spawn-from", st.Final(par)}
	for _, s := range par.Train { // a child checkpoints as its parent does
		if s.Flag == "checkpoint-every" {
			args = append(args, "--checkpoint-every", s.Value)
		}
	}
	for _, s := range p.Train {
		args = append(args, "--"+s.Flag, s.Value)
	}
	if err := parseFlags(fs, args); err != nil {
		return tf, err
	}
	if err := prepareSpawn(&tf, tf.spawn, fs); err != nil {
		return tf, badInputf("sweep: grid %s, point %d (%s): %v", g.File, p.Index, p.Name, strings.TrimPrefix(err.Error(), "train: "))
	}
	return tf, nil
}

// checkSpawnSelection refuses a selection holding a child whose parent is
// neither selected nor done, naming both.
func checkSpawnSelection(st *sweep.Store, g *sweep.Grid, pts []sweep.Point) error {
	sel := map[int]bool{}
	for _, p := range pts {
		sel[p.Index] = true
	}
	for _, p := range pts {
		if p.Parent == nil || sel[*p.Parent] {
			continue
		}
		if par := g.Point(*p.Parent); !st.Done(par) {
			return badInputf("sweep: point %d (%s) spawns from point %d (%s), which is neither selected nor done: select it too (--only '%s')", p.Index, p.Name, par.Index, par.Name, par.Name)
		}
	}
	return nil
}

// runParentsFirst runs do on every point of todo on jobs workers: first the
// points that are no child of another point in todo, then the rest, a child
// whose parent failed getting an error naming the parent. It returns the
// errors indexed like todo.
func runParentsFirst(ctx context.Context, todo []sweep.Point, jobs int, do func(context.Context, sweep.Point) error) []error {
	in := map[int]int{} // point index → position in todo
	for i, p := range todo {
		in[p.Index] = i
	}
	var first, second []int
	for i, p := range todo {
		if _, waits := in[parentIndex(p)]; p.Parent != nil && waits {
			second = append(second, i)
		} else {
			first = append(first, i)
		}
	}
	errs := make([]error, len(todo))
	phase := func(pos []int) {
		items := make([]sweep.Point, len(pos))
		for j, i := range pos {
			items[j] = todo[i]
		}
		for j, err := range sweep.Run(ctx, items, jobs, do) {
			errs[pos[j]] = err
		}
	}
	phase(first)
	var ready []int
	for _, i := range second {
		if perr := errs[in[*todo[i].Parent]]; perr != nil {
			errs[i] = fmt.Errorf("parent point %s failed: %w", todo[in[*todo[i].Parent]].Name, perr)
			continue
		}
		ready = append(ready, i)
	}
	if ctx.Err() == nil {
		phase(ready)
	} else {
		for _, i := range ready {
			errs[i] = ctx.Err()
		}
	}
	return errs
}

func parentIndex(p sweep.Point) int {
	if p.Parent == nil {
		return -1
	}
	return *p.Parent
}

// splitSpawnIndices splits the SLURM array's points into parents (points
// trained from scratch) and children.
func splitSpawnIndices(g *sweep.Grid, indices []int) (parents, children []int) {
	for _, i := range indices {
		if g.Point(i).Parent != nil {
			children = append(children, i)
		} else {
			parents = append(parents, i)
		}
	}
	return parents, children
}

// writeSpawnScript writes OUT/sweep-spawn.sbatch, the child points' array
// (s with its indices and submit line replaced), or prints it with
// --dry-run, and returns the command that submits it: after the parents'
// job (sbatch --dependency=afterok:JOB) when parentsPending.
func writeSpawnScript(s sweep.Slurm, children []int, parentsPending bool, sf sweepFlags, w io.Writer) (string, error) {
	s.Indices = children
	s.JobName += "-spawn"
	path := filepath.Join(s.Out, spawnScript)
	s.Submit = "sbatch " + path
	if parentsPending {
		s.Submit = fmt.Sprintf("sbatch --dependency=afterok:$(sbatch --parsable %s) %s", filepath.Join(s.Out, "sweep.sbatch"), path)
	}
	script, err := s.Script()
	if err != nil {
		return "", badInput(err)
	}
	if sf.dryRun {
		fmt.Fprint(w, script)
		return s.Submit, nil
	}
	if err := atomicfile.Write(path, []byte(script)); err != nil {
		return "", err
	}
	return s.Submit, nil
}
