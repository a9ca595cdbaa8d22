package sweep

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Slurm describes an sbatch job-array script that runs grid points, one
// array task per point: task i runs
//
//	CERTIFY sweep GRID --out OUT --index i --grid-sha256 SHA
//
// so a cluster runs exactly what the local pool would, into the same layout.
type Slurm struct {
	// Certify, Grid and Out are absolute paths: the certify binary (built
	// with go build -o, not go run), the grid file and the sweep's output
	// directory, all visible from the compute nodes.
	Certify, Grid, Out string
	// GridSHA256 is Grid.SHA256; tasks refuse a grid file that changed.
	GridSHA256 string
	// JobName is sbatch's --job-name.
	JobName string
	// Indices are the points to run (the array's task ids), ascending.
	Indices []int
	// Limit, when positive, runs at most Limit tasks at once (--array=...%Limit).
	Limit int
	// Options are further sbatch options, one per #SBATCH line, e.g.
	// "--time=01:00:00", "--mem=4G", "--partition=gpu".
	Options []string
	// CPUsPerTask is the script's #SBATCH --cpus-per-task unless Options
	// set it (-c, --cpus-per-task); 0 means DefaultCPUsPerTask.
	CPUsPerTask int
	// Extra are further arguments of every task's certify command line.
	Extra []string
	// Submit is the command the script's header tells to submit it; empty
	// means "sbatch OUT/sweep.sbatch".
	Submit string
}

// DefaultCPUsPerTask is the cores a SLURM array task asks for unless told
// otherwise: a point's training and analysis use every core they are given
// (GOMAXPROCS follows SLURM_CPUS_PER_TASK), and without the option a
// cluster's default is often a single core.
const DefaultCPUsPerTask = 4

// ArraySpec formats task ids for sbatch --array: runs of consecutive ids
// as ranges, e.g. [0 1 2 3 7 9 10] with limit 2 gives "0-3,7,9-10%2".
func ArraySpec(indices []int, limit int) string {
	var parts []string
	for i := 0; i < len(indices); {
		j := i
		for j+1 < len(indices) && indices[j+1] == indices[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(indices[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", indices[i], indices[j]))
		}
		i = j + 1
	}
	s := strings.Join(parts, ",")
	if limit > 0 {
		s += "%" + strconv.Itoa(limit)
	}
	return s
}

// Script returns the sbatch script. Task logs go to OUT/logs/JOB_TASK.log
// (the directory must exist before sbatch runs; sbatch does not create it).
// It returns an error for a relative path, no indices, or an option that is
// not a single-line "-..." flag.
func (s *Slurm) Script() (string, error) {
	for _, p := range []struct{ what, path string }{{"certify binary", s.Certify}, {"grid", s.Grid}, {"out", s.Out}} {
		if !filepath.IsAbs(p.path) {
			return "", fmt.Errorf("slurm script: the %s path %q must be absolute", p.what, p.path)
		}
	}
	if strings.ContainsAny(s.Out, " \t\n\"'\\%") {
		return "", fmt.Errorf("slurm script: out %q: #SBATCH --output cannot hold spaces, quotes, backslashes or %%", s.Out)
	}
	if len(s.Indices) == 0 {
		return "", fmt.Errorf("slurm script: no points to run")
	}
	for _, o := range s.Options {
		if !strings.HasPrefix(o, "-") || strings.ContainsAny(o, "\n\r") {
			return "", fmt.Errorf("slurm script: --slurm-opt %q: want one sbatch option such as --time=01:00:00", o)
		}
		if strings.HasPrefix(o, "--array") || strings.HasPrefix(o, "-a") {
			return "", fmt.Errorf("slurm script: --slurm-opt %q: the array is set by the sweep (use --array-limit)", o)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/bash\n")
	submit := s.Submit
	if submit == "" {
		submit = "sbatch " + filepath.Join(s.Out, "sweep.sbatch")
	}
	fmt.Fprintf(&b, "# Written by `certify sweep --emit slurm`: one array task per grid point of\n# %s (%d tasks). Submit with: %s\n", s.Grid, len(s.Indices), submit)
	fmt.Fprintf(&b, "#SBATCH --job-name=%s\n", Sanitize(s.JobName))
	fmt.Fprintf(&b, "#SBATCH --array=%s\n", ArraySpec(s.Indices, s.Limit))
	fmt.Fprintf(&b, "#SBATCH --output=%s\n", filepath.Join(s.Out, LogDir, "%A_%a.log"))
	cpus := s.CPUsPerTask
	if cpus <= 0 {
		cpus = DefaultCPUsPerTask
	}
	for _, o := range s.Options {
		if strings.HasPrefix(o, "--cpus-per-task") || strings.HasPrefix(o, "-c") {
			cpus = 0
		}
	}
	if cpus > 0 {
		fmt.Fprintf(&b, "#SBATCH --cpus-per-task=%d\n", cpus)
	}
	for _, o := range s.Options {
		fmt.Fprintf(&b, "#SBATCH %s\n", o)
	}
	b.WriteString("set -eu\n")
	b.WriteString(`echo "certify sweep: task $SLURM_ARRAY_TASK_ID of job $SLURM_ARRAY_JOB_ID on $(hostname)"` + "\n")
	args := []string{quote(s.Certify), "sweep", quote(s.Grid), "--out", quote(s.Out), "--index", `"$SLURM_ARRAY_TASK_ID"`, "--grid-sha256", s.GridSHA256}
	for _, e := range s.Extra {
		args = append(args, quote(e))
	}
	b.WriteString("exec " + strings.Join(args, " ") + "\n")
	return b.String(), nil
}

// quote quotes s for a POSIX shell.
func quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=+:,@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
