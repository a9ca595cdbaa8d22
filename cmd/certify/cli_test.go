package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/internal/sweep"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/nn/safetensors"
	"github.com/certify-mli/certify/rundir"
)

// runCLI runs the command line in-process and returns its exit status and outputs.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runCLIContext(t, context.Background(), args...)
}

// runCLIContext is runCLI with the context a signal would cancel.
func runCLIContext(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var o, e bytes.Buffer
	stdout, stderr = &o, &e
	defer func() { stdout, stderr = os.Stdout, os.Stderr }()
	code := run(ctx, args)
	return code, o.String(), e.String()
}

// makeRun writes a small valid run directory: a 4-5-3 tanh MLP on 6 examples.
func makeRun(t *testing.T, loss string) string {
	t.Helper()
	dir := t.TempDir()
	spec := nn.MLPSpec([]int{4, 5, 3}, "tanh", loss)
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, 1)
	sT, _ := nn.Init(m, "pytorch", 1, 2)
	x := mat.NewDense(6, 4, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = math.Sin(float64(i))
	}
	writeRunDir(t, dir, spec, s0, sT, "F32", x, nn.Targets{Labels: []int{0, 1, 2, 0, 1, 2}})
	return dir
}

// writeRunDir writes model.json, init.safetensors (F64), final.safetensors
// (finalDtype) and data.safetensors into dir (RUN_FORMAT.md).
func writeRunDir(t *testing.T, dir string, spec *nn.Spec, s0, sT nn.State, finalDtype string, x *mat.Dense, y nn.Targets) {
	t.Helper()
	if err := spec.Write(filepath.Join(dir, "model.json")); err != nil {
		t.Fatal(err)
	}
	if err := nn.WriteState(filepath.Join(dir, "init.safetensors"), s0, "F64"); err != nil {
		t.Fatal(err)
	}
	if err := nn.WriteState(filepath.Join(dir, "final.safetensors"), sT, finalDtype); err != nil {
		t.Fatal(err)
	}
	if err := rundir.WriteData(filepath.Join(dir, "data.safetensors"), x, y); err != nil {
		t.Fatal(err)
	}
}

func TestAnalyzeWritesReport(t *testing.T) {
	dir := makeRun(t, "cross_entropy")
	code, out, errOut := runCLI(t, "--run", dir, "--alphas", "11", "--no-figures")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "verdict") {
		t.Errorf("summary lacks the verdict:\n%s", out)
	}
	// Settings other than the default analysis's (--alphas 11) have their
	// own report: the run's certificate.json is not made by them.
	if _, err := os.Stat(filepath.Join(dir, "certificate.json")); !os.IsNotExist(err) {
		t.Errorf("--alphas 11 wrote certificate.json (%v)", err)
	}
	r, err := certify.ReadReport(filepath.Join(dir, "variants", "alphas=11", VariantReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Alphas) != 11 || len(r.Loss) != 11 || r.Examples != 6 {
		t.Errorf("report has %d α, %d losses, %d examples", len(r.Alphas), len(r.Loss), r.Examples)
	}
	if r.Delta != certify.Delta(r.Loss) {
		t.Errorf("delta %v is not Δ of the reported losses %v", r.Delta, certify.Delta(r.Loss))
	}
	// --json prints the same report.
	code, out, _ = runCLI(t, "--run", dir, "--alphas", "11", "--no-figures", "--json")
	var j map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j["verdict"] != r.Verdict.String() {
		t.Errorf("--json: exit %d, output %.200s", code, out)
	}
}

// TestBadInput checks that every malformed run directory gives a one-line
// error naming the file and the key, with exit status 2.
func TestBadInput(t *testing.T) {
	cases := []struct {
		name  string
		spoil func(dir string)
		want  []string
	}{
		{"missing directory", func(dir string) { os.RemoveAll(dir) }, []string{"run directory", "no such file"}},
		{"missing model.json", func(dir string) { os.Remove(filepath.Join(dir, "model.json")) }, []string{"model.json"}},
		{"missing final", func(dir string) { os.Remove(filepath.Join(dir, "final.safetensors")) }, []string{"final.safetensors"}},
		{"unknown layer", func(dir string) {
			rewrite(t, filepath.Join(dir, "model.json"), `"tanh"`, `"conv3d"`)
		}, []string{"model.json", "layers[1]", `"conv3d"`}},
		{"shape mismatch", func(dir string) {
			writeTensors(t, filepath.Join(dir, "init.safetensors"), map[string][]int{"0.weight": {4, 5}, "0.bias": {5}, "2.weight": {3, 5}, "2.bias": {3}}, 0)
		}, []string{"init.safetensors", "0.weight", "expected shape [5, 4], found [4, 5]"}},
		{"NaN weight", func(dir string) {
			writeTensors(t, filepath.Join(dir, "final.safetensors"), map[string][]int{"0.weight": {5, 4}, "0.bias": {5}, "2.weight": {3, 5}, "2.bias": {3}}, math.NaN())
		}, []string{"final.safetensors", "non-finite value NaN"}},
		{"truncated safetensors", func(dir string) {
			p := filepath.Join(dir, "init.safetensors")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-7], 0o644)
		}, []string{"init.safetensors"}},
		{"oversized header", func(dir string) {
			p := filepath.Join(dir, "init.safetensors")
			b, _ := os.ReadFile(p)
			binary.LittleEndian.PutUint64(b, 1<<40)
			os.WriteFile(p, b, 0o644)
		}, []string{"init.safetensors", "header"}},
		{"label out of range", func(dir string) {
			x := mat.NewDense(2, 4, nil)
			rundir.WriteData(filepath.Join(dir, "data.safetensors"), x, nn.Targets{Labels: []int{0, 7}})
		}, []string{"data.safetensors", "y", "label 7"}},
		{"empty data", func(dir string) {
			safetensors.Write(filepath.Join(dir, "data.safetensors"), []safetensors.Tensor{
				{Name: "x", DType: "F64", Shape: []int{0, 4}}, {Name: "y", DType: "I64", Shape: []int{0}}}, "F64", nil)
		}, []string{"data.safetensors", "x", "empty"}},
		{"no data", func(dir string) { os.Remove(filepath.Join(dir, "data.safetensors")) }, []string{"no evaluation data"}},
		{"wrong feature count", func(dir string) {
			rundir.WriteData(filepath.Join(dir, "data.safetensors"), mat.NewDense(2, 3, nil), nn.Targets{Labels: []int{0, 1}})
		}, []string{"data.safetensors", "x", "expected 4 features"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := makeRun(t, "cross_entropy")
			c.spoil(dir)
			code, _, errOut := runCLI(t, "--run", dir, "--no-figures")
			if code != 2 {
				t.Errorf("exit status %d, want 2 (stderr %q)", code, errOut)
			}
			if strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("error is not one line: %q", errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("error %q does not mention %q", errOut, w)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "certificate.json")); err == nil {
				t.Error("a report was written for bad input")
			}
		})
	}
}

func rewrite(t *testing.T, path, old, new string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeTensors(t *testing.T, path string, shapes map[string][]int, fill float64) {
	var ts []safetensors.Tensor
	for k, sh := range shapes {
		n := 1
		for _, d := range sh {
			n *= d
		}
		v := make([]float64, n)
		for i := range v {
			v[i] = fill
		}
		ts = append(ts, safetensors.Tensor{Name: k, DType: "F64", Shape: sh, Float: v})
	}
	if err := safetensors.Write(path, ts, "F64", nil); err != nil {
		t.Fatal(err)
	}
}

// TestBadFlagValues: meaningless flag values are refused before any work,
// with one line and exit status 2.
func TestBadFlagValues(t *testing.T) {
	dir := makeRun(t, "cross_entropy")
	for _, args := range [][]string{
		{"--alphas", "1"}, {"--alphas", "-5"}, {"--tolerance", "nan"}, {"--tolerance", "-1"},
		{"--examples", "-3"}, {"--examples", "100"}, {"--chunk", "0"}, {"--workers", "-1"}, {"--alphas", "abc"},
		{"--delta-tol", "0"}, {"--delta-tol", "-1e-3"}, {"--delta-tol", "inf"},
		{"--alphas", "11", "--gauss-max-intervals", "9"}, {"--gauss-max-intervals", "0"},
	} {
		code, _, errOut := runCLI(t, append([]string{"--run", dir, "--no-figures"}, args...)...)
		if code != 2 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// TestInterruptedCommandsPrintOneLine cancels the context of each command
// that watches it, as Ctrl-C or SIGTERM would (at a training step, or before
// the analysis starts): each exits 130 and prints exactly one line on
// stderr, its own, without the bare "context canceled" of what it was
// running. Where the line says how to continue, doing so succeeds.
func TestInterruptedCommandsPrintOneLine(t *testing.T) {
	dir := t.TempDir()
	trainOut := filepath.Join(dir, "train")
	trainArgs := []string{"train", "--data", "mnist-small", "--limit", "200", "--arch", "784-8-10", "--batch", "50",
		"--epochs", "1", "--checkpoint-every", "2", "--seed", "3", "--quiet", "--out", trainOut}
	run := makeRun(t, "cross_entropy")
	grid := tinyGrid(t, `{"lr": [0.05, 0.2]}`)
	g := loadGrid(t, grid)
	sweepOut, indexOut := filepath.Join(dir, "sweep"), filepath.Join(dir, "index")
	for _, tc := range []struct {
		name   string
		args   []string
		atStep int // cancel after this training step; 0: before the command starts
		want   string
		before string   // what stderr holds before that line (progress, not about the interruption)
		again  []string // the command the line says continues; nil: none
		check  func(t *testing.T)
	}{
		{"train", trainArgs, 3, "certify: interrupted at step 3; continue with the same flags and --resume", "",
			append(trainArgs, "--resume"), func(t *testing.T) {
				if _, err := rundir.Read(trainOut, 0); err != nil {
					t.Error(err)
				}
			}},
		{"analyse", []string{"--run", run, "--alphas", "5"}, 0,
			"certify: interrupted while analysing " + run + "; nothing written", "", nil, func(t *testing.T) {
				if _, err := os.Stat(filepath.Join(run, "certificate.json")); !os.IsNotExist(err) {
					t.Errorf("certificate.json: %v, want absent", err)
				}
			}},
		{"demo", []string{"demo", "--out", filepath.Join(dir, "demo")}, 2, "certify: interrupted at step 2", "", nil, nil},
		{"sweep", []string{"sweep", grid, "--out", sweepOut, "--jobs", "1", "--quiet"}, 1,
			"certify: sweep interrupted: 0 of 2 points done (0 finished in this run), 1 stopped midway (they resume from their last checkpoint); run the same command again to continue", "",
			[]string{"sweep", grid, "--out", sweepOut, "--jobs", "1", "--quiet"}, func(t *testing.T) {
				checkRuns(t, sweepOut, g)
				if inv := readIndex(t, sweepOut).LastInvocation; inv.Trained != 2 || inv.Resumed != 1 {
					t.Errorf("rerun %+v, want 2 trained, 1 of them resumed", *inv)
				}
			}},
		{"sweep, not quiet", []string{"sweep", grid, "--out", filepath.Join(dir, "loud"), "--jobs", "1"}, 3,
			"certify: sweep interrupted: 0 of 2 points done (0 finished in this run), 1 stopped midway (they resume from their last checkpoint); run the same command again to continue",
			"sweep " + g.File + ": 2 points on 1 worker\n", nil, nil},
		{"sweep --index", []string{"sweep", grid, "--out", indexOut, "--index", "1", "--quiet"}, 1,
			"certify: point 1 " + g.Point(1).Name + " interrupted; run the same command again to continue", "",
			[]string{"sweep", grid, "--out", indexOut, "--index", "1", "--quiet"}, func(t *testing.T) {
				if e := readIndex(t, indexOut).Points[1]; e.Status != sweep.StatusDone || !e.Resumed {
					t.Errorf("point 1 after the rerun: %+v, want done and resumed", e)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.atStep == 0 {
				cancel()
			} else {
				afterStep = func(step int) {
					if step == tc.atStep {
						cancel()
					}
				}
				defer func() { afterStep = nil }()
			}
			code, _, errOut := runCLIContext(t, ctx, tc.args...)
			if code != 130 {
				t.Errorf("exit %d, want 130", code)
			}
			if errOut != tc.before+tc.want+"\n" {
				t.Errorf("stderr:\n%s\nwant:\n%s%s", errOut, tc.before, tc.want)
			}
			afterStep = nil
			if tc.again != nil {
				if code, _, errOut := runCLI(t, tc.again...); code != 0 {
					t.Fatalf("continuing: exit %d: %s", code, errOut)
				}
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
}
