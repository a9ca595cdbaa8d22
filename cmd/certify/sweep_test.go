package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/internal/keyed"
	"github.com/certify-mli/certify/internal/sweep"
	"github.com/certify-mli/certify/rundir"
)

// tinyGrid is a fast grid: 1 epoch on 200 built-in MNIST images of a
// 784-8-10 MLP, certified on 100 examples at 5 α.
func tinyGrid(t *testing.T, axes string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tiny.json")
	grid := `{
  "base": {"data": "mnist-small", "limit": 200, "arch": "784-8-10", "batch": 50, "epochs": 1, "checkpoint-every": 2, "seed": 3},
  "axes": ` + axes + `,
  "analysis": {"alphas": 5, "examples": 100, "gauss-tol": 0.01, "no-figures": true}
}`
	if err := os.WriteFile(path, []byte(grid), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func readIndex(t *testing.T, out string) *sweep.Index {
	t.Helper()
	idx, err := sweep.ReadIndex(filepath.Join(out, sweep.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// checkRuns asserts every point of the index is done and its directory is
// a valid run with a certificate, trained with the point's settings.
func checkRuns(t *testing.T, out string, g *sweep.Grid) {
	t.Helper()
	idx := readIndex(t, out)
	if len(idx.Points) != g.Len() || idx.Counts[sweep.StatusDone] != g.Len() {
		t.Fatalf("index has %d points, counts %v; want %d done", len(idx.Points), idx.Counts, g.Len())
	}
	for _, p := range g.Points() {
		dir := filepath.Join(out, p.Name)
		run, err := rundir.Read(dir, 0)
		if err != nil {
			t.Errorf("%s: %v", p.Name, err)
			continue
		}
		r, err := certify.ReadReport(filepath.Join(dir, "certificate.json"))
		if err != nil {
			t.Errorf("%s: %v", p.Name, err)
			continue
		}
		if len(r.Alphas) != 5 || r.Examples != 100 {
			t.Errorf("%s: certificate has %d α, %d examples; the grid asked 5 and 100", p.Name, len(r.Alphas), r.Examples)
		}
		if e := idx.Points[p.Index]; e.Verdict != r.Verdict.String() || *e.Delta != r.Delta {
			t.Errorf("%s: index says %s Δ=%v, certificate %s Δ=%v", p.Name, e.Verdict, *e.Delta, r.Verdict, r.Delta)
		}
		// config.json holds the point's values, as certify train writes them.
		cfg := map[string]any{}
		b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		json.Unmarshal(b, &cfg)
		for _, s := range p.Train {
			key := strings.ReplaceAll(s.Flag, "-", "_")
			if s.Flag == "data" || s.Flag == "limit" {
				continue
			}
			if got := fmt.Sprint(cfg[key]); got != s.Value {
				t.Errorf("%s: config.json %s = %s, want %s", p.Name, key, got, s.Value)
			}
		}
		if run.Config.Data.Limit != 200 || run.Config.Data.Name != "mnist-small" {
			t.Errorf("%s: config data %+v", p.Name, run.Config.Data)
		}
		rec, err := sweep.ReadRecord(dir)
		if err != nil {
			t.Fatal(err)
		}
		if ok, d := rec.SameSettings(g, p); !ok || rec.Index != p.Index || rec.TrainFlags["lr"] == "" {
			t.Errorf("%s: record differs from the point: %s", p.Name, d)
		}
	}
	// Nothing half-done is left in the work directory.
	ents, _ := os.ReadDir(filepath.Join(out, sweep.WorkDir))
	for _, e := range ents {
		if e.IsDir() {
			t.Errorf("left in .work: %s", e.Name())
		}
	}
}

func loadGrid(t *testing.T, path string) *sweep.Grid {
	t.Helper()
	g, err := sweep.Load(path, sweepSchema())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// sameFiles asserts that the runs' weights and checkpoints are byte-identical.
func sameFiles(t *testing.T, a, b string, g *sweep.Grid) {
	t.Helper()
	for _, p := range g.Points() {
		files := []string{"init.safetensors", "final.safetensors", "model.json"}
		ck, _ := filepath.Glob(filepath.Join(a, p.Name, "checkpoints", "*"))
		if len(ck) == 0 {
			t.Errorf("%s: no checkpoints", p.Name)
		}
		for _, c := range ck {
			files = append(files, filepath.Join("checkpoints", filepath.Base(c)))
		}
		for _, f := range files {
			x, err1 := os.ReadFile(filepath.Join(a, p.Name, f))
			y, err2 := os.ReadFile(filepath.Join(b, p.Name, f))
			if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
				t.Errorf("%s/%s differs (%v, %v)", p.Name, f, err1, err2)
			}
		}
	}
}

func TestSweepLocalPoolRerunAndIndex(t *testing.T) {
	grid := tinyGrid(t, `{"lr": [0.05, 0.2], "optim": ["sgd", "adam"]}`)
	g := loadGrid(t, grid)
	out := filepath.Join(t.TempDir(), "runs")
	prev := runtime.GOMAXPROCS(4)
	code, _, errOut := runCLI(t, "sweep", grid, "--out", out, "--jobs", "2")
	runtime.GOMAXPROCS(prev)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkRuns(t, out, g)
	idx := readIndex(t, out)
	if inv := idx.LastInvocation; inv == nil || inv.Trained != 4 || inv.Analysed != 4 || inv.Skipped != 0 {
		t.Errorf("first invocation %+v", inv)
	}
	trainedAt := map[string]time.Time{}
	for _, e := range idx.Points {
		trainedAt[e.Name] = *e.TrainedAt
	}
	// The certificate records the analysis as a command on the final directory.
	r, _ := certify.ReadReport(filepath.Join(out, g.Point(0).Name, "certificate.json"))
	if want := []string{"certify", "--run", filepath.Join(out, g.Point(0).Name), "--alphas=5"}; len(r.Command) < 4 || fmt.Sprint(r.Command[:4]) != fmt.Sprint(want) {
		t.Errorf("certificate command %q, want it to start with %q", r.Command, want)
	}

	// A rerun trains nothing.
	code, _, errOut = runCLI(t, "sweep", "--out", out, grid)
	if code != 0 {
		t.Fatalf("rerun: exit %d: %s", code, errOut)
	}
	idx = readIndex(t, out)
	if inv := idx.LastInvocation; inv == nil || inv.Trained != 0 || inv.Skipped != 4 {
		t.Errorf("rerun invocation %+v, want 4 skipped, 0 trained", inv)
	}
	for _, e := range idx.Points {
		if !e.TrainedAt.Equal(trainedAt[e.Name]) {
			t.Errorf("%s retrained", e.Name)
		}
	}

	// --dry-run lists the points and their status; --only selects by glob or regexp.
	code, stdoutText, _ := runCLI(t, "sweep", grid, "--out", out, "--dry-run", "--only", "*optim=adam")
	if code != 0 || !strings.Contains(stdoutText, "1  done      lr=0.05_optim=adam") || strings.Contains(stdoutText, "sgd") ||
		!strings.Contains(stdoutText, "2 of 4 points, 2 done") {
		t.Errorf("dry run (exit %d):\n%s", code, stdoutText)
	}
	code, stdoutText, _ = runCLI(t, "sweep", grid, "--out", out, "--dry-run", "--only", `re:^lr=0\.2_`)
	if code != 0 || strings.Count(stdoutText, "lr=0.2_") != 2 || strings.Contains(stdoutText, "lr=0.05") {
		t.Errorf("dry run with a regexp (exit %d):\n%s", code, stdoutText)
	}
	if code, _, errOut := runCLI(t, "sweep", grid, "--out", out, "--only", "nothing*"); code != 2 || !strings.Contains(errOut, "selects none") {
		t.Errorf("--only matching nothing: exit %d, %s", code, errOut)
	}

	// A grid whose base changed under the same names is refused before any work.
	changed := strings.Replace(mustRead(t, grid), `"seed": 3`, `"seed": 4`, 1)
	os.WriteFile(grid, []byte(changed), 0o644)
	code, _, errOut = runCLI(t, "sweep", grid, "--out", out)
	if code != 2 || !strings.Contains(errOut, "--seed 3 (now 4)") {
		t.Errorf("changed grid: exit %d: %s", code, errOut)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Training is deterministic: a point trained alone with one core (as a
// SLURM array task does it, --index) is byte-identical to the same point
// trained by the pool next to others with four cores.
func TestSweepIndexMatchesPoolBitForBit(t *testing.T) {
	grid := tinyGrid(t, `{"lr": [0.05, 0.2], "optim": ["sgd", "adam"]}`)
	g := loadGrid(t, grid)
	dir := t.TempDir()
	pool, single := filepath.Join(dir, "pool"), filepath.Join(dir, "single")
	prev := runtime.GOMAXPROCS(4)
	code, _, errOut := runCLI(t, "sweep", grid, "--out", pool, "--jobs", "3")
	runtime.GOMAXPROCS(1)
	for i := g.Len() - 1; i >= 0 && code == 0; i-- {
		code, _, errOut = runCLI(t, "sweep", grid, "--out", single, "--index", fmt.Sprint(i))
	}
	runtime.GOMAXPROCS(prev)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkRuns(t, single, g)
	sameFiles(t, pool, single, g)
	for _, p := range g.Points() {
		a, _ := certify.ReadReport(filepath.Join(pool, p.Name, "certificate.json"))
		b, _ := certify.ReadReport(filepath.Join(single, p.Name, "certificate.json"))
		if fmt.Sprint(a.Loss, a.DLoss, a.GaussLengthMean, a.Verdict) != fmt.Sprint(b.Loss, b.DLoss, b.GaussLengthMean, b.Verdict) {
			t.Errorf("%s: certificates differ", p.Name)
		}
	}
	if code, _, errOut := runCLI(t, "sweep", grid, "--out", single, "--index", "4"); code != 2 || !strings.Contains(errOut, "points 0 to 3") {
		t.Errorf("--index out of range: exit %d: %s", code, errOut)
	}
}

// gonum's parallel Dgemm gives each block of C to one goroutine, summing
// along k in a fixed order, so the product does not depend on GOMAXPROCS.
func TestDgemmIndependentOfGOMAXPROCS(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	a, b := mat.NewDense(300, 257, nil), mat.NewDense(257, 190, nil)
	for _, m := range []*mat.Dense{a, b} {
		d := m.RawMatrix().Data
		for i := range d {
			d[i] = rnd.NormFloat64()
		}
	}
	var c1, c8 mat.Dense
	prev := runtime.GOMAXPROCS(1)
	c1.Mul(a, b)
	runtime.GOMAXPROCS(8)
	c8.Mul(a, b)
	runtime.GOMAXPROCS(prev)
	x, y := c1.RawMatrix().Data, c8.RawMatrix().Data
	for i := range x {
		if x[i] != y[i] {
			t.Fatalf("element %d: %v with 1 proc, %v with 8", i, x[i], y[i])
		}
	}
}

func TestSweepFailedPointIsRecorded(t *testing.T) {
	// A failure only training finds (the widths against the data's), which
	// the grid's value checks before any point runs cannot see.
	grid := filepath.Join(t.TempDir(), "fail.json")
	os.WriteFile(grid, []byte(`{"base": {"data": "mnist-small", "limit": 200, "batch": 50, "epochs": 1, "seed": 3},
  "axes": {"arch": ["784-8-10", "100-8-10"]}, "analysis": {"alphas": 5, "examples": 100, "gauss-tol": 0.01, "no-figures": true}}`), 0o644)
	out := filepath.Join(t.TempDir(), "runs")
	code, _, errOut := runCLI(t, "sweep", grid, "--out", out, "--jobs", "2")
	if code != 2 || !strings.Contains(errOut, "1 of 2 points failed: arch=100-8-10") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	idx := readIndex(t, out)
	if idx.Points[0].Status != sweep.StatusDone || idx.Points[1].Status != sweep.StatusFailed ||
		!strings.Contains(idx.Points[1].Error, "100 inputs") {
		t.Errorf("index points %+v", idx.Points)
	}
	if _, err := os.Stat(filepath.Join(out, "arch=100-8-10")); err == nil {
		t.Errorf("a failed point left a run directory")
	}
}

func TestSweepBadGrids(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, grid string
		want       string
	}{
		{"unknown", `{"axes": {"learning-rate": [0.1]}}`, `axes.learning-rate: unknown flag "learning-rate"`},
		{"empty", `{"axes": {"lr": []}}`, "axes.lr: empty axis"},
		{"type", `{"axes": {"epochs": ["two"]}}`, `axes.epochs[0]: --epochs takes a number, found the string "two"`},
		{"dup", `{"axes": {"optim": ["sgd", "adam", "sgd"]}}`, "axes.optim[2]: duplicate value"},
		{"json", `{"axes": {"lr": [0.1}}`, "malformed JSON"},
		{"reserved", `{"base": {"out": "x"}, "axes": {"lr": [0.1]}}`, "base.out: --out is set by the sweep"},
		{"analysis", `{"axes": {"lr": [0.1]}, "analysis": {"alphas": "many"}}`, "analysis.alphas[0]"},
	} {
		path := filepath.Join(dir, c.name+".json")
		os.WriteFile(path, []byte(c.grid), 0o644)
		out := filepath.Join(dir, "out-"+c.name)
		code, _, errOut := runCLI(t, "sweep", path, "--out", out)
		if c.name == "analysis" {
			c.want = "analysis.alphas: --alphas takes a number"
		}
		if code != 2 || !strings.Contains(errOut, path) || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, %q; want 2 and %q naming %s", c.name, code, errOut, c.want, path)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: the output directory was created for a bad grid", c.name)
		}
	}
	if code, _, errOut := runCLI(t, "sweep", "--out", dir); code != 2 || !strings.Contains(errOut, "want one grid file") {
		t.Errorf("no grid: exit %d %s", code, errOut)
	}
}

func TestSweepEmitSlurm(t *testing.T) {
	grid := tinyGrid(t, `{"lr": [0.05, 0.2], "optim": ["sgd", "adam"]}`)
	g := loadGrid(t, grid)
	out := filepath.Join(t.TempDir(), "runs")
	// The test binary lives in go's temporary build directory, like a go run binary.
	if code, _, errOut := runCLI(t, "sweep", grid, "--out", out, "--emit", "slurm"); code != 2 || !strings.Contains(errOut, "go build -o") {
		t.Errorf("emit from a go-build binary: exit %d %s", code, errOut)
	}
	code, msg, errOut := runCLI(t, "sweep", grid, "--out", out, "--emit", "slurm", "--certify", "/opt/certify",
		"--array-limit", "2", "--slurm-opt", "--time=00:10:00", "--slurm-opt", "--mem=1G", "--only", "*adam")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	script := mustRead(t, filepath.Join(out, "sweep.sbatch"))
	for _, want := range []string{"#SBATCH --array=1,3%2\n", "#SBATCH --time=00:10:00\n", "#SBATCH --mem=1G\n",
		"#SBATCH --output=" + out + "/logs/%A_%a.log\n",
		"exec /opt/certify sweep " + grid + " --out " + out + ` --index "$SLURM_ARRAY_TASK_ID" --grid-sha256 ` + g.SHA256 + "\n"} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	if !strings.Contains(msg, "sbatch "+filepath.Join(out, "sweep.sbatch")) {
		t.Errorf("message %q", msg)
	}
	if st, err := os.Stat(filepath.Join(out, "logs")); err != nil || !st.IsDir() {
		t.Errorf("logs directory: %v", err)
	}
	// A task refuses a grid that changed after the script was written.
	os.WriteFile(grid, append([]byte(mustRead(t, grid)), '\n'), 0o644)
	code, _, errOut = runCLI(t, "sweep", grid, "--out", out, "--index", "1", "--grid-sha256", g.SHA256)
	if code != 2 || !strings.Contains(errOut, "changed since the job script was written") {
		t.Errorf("changed grid: exit %d %s", code, errOut)
	}
}

// TestSweepKillAndResume SIGKILLs a built certify binary in the middle of a
// sweep, reruns it, and checks that finished points were not retrained,
// that no run directory is half-written, and that every run equals one of
// an uninterrupted sweep byte for byte.
func TestSweepKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "certify")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	grid := tinyGrid(t, `{"lr": [0.02, 0.05, 0.2], "optim": ["sgd", "adam"]}`)
	g := loadGrid(t, grid)
	out, ref := filepath.Join(dir, "runs"), filepath.Join(dir, "ref")
	if code, _, errOut := runCLI(t, "sweep", grid, "--out", ref, "--jobs", "2"); code != 0 {
		t.Fatalf("reference sweep: %s", errOut)
	}

	var logBuf bytes.Buffer
	cmd := exec.Command(bin, "sweep", grid, "--out", out, "--jobs", "1")
	cmd.Stderr = &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	doneBefore := map[string]time.Time{}
	for time.Now().Before(deadline) {
		if idx, err := sweep.ReadIndex(filepath.Join(out, sweep.IndexFile)); err == nil && idx.Counts[sweep.StatusDone] >= 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	// Whatever the kill interrupted, a run directory is complete or absent.
	for _, p := range g.Points() {
		d := filepath.Join(out, p.Name)
		if _, err := os.Stat(d); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "certificate.json")); err != nil {
			t.Errorf("killed sweep left %s without certificate.json", p.Name)
			continue
		}
		rec, err := sweep.ReadRecord(d)
		if err != nil {
			t.Fatal(err)
		}
		doneBefore[p.Name] = rec.TrainedAt
	}
	if len(doneBefore) < 2 || len(doneBefore) == g.Len() {
		t.Fatalf("killed with %d of %d points done; want some but not all (log:\n%s)", len(doneBefore), g.Len(), logBuf.String())
	}
	var rerunLog bytes.Buffer
	cmd = exec.Command(bin, "sweep", grid, "--out", out, "--jobs", "2")
	cmd.Stderr = &rerunLog
	if err := cmd.Run(); err != nil {
		t.Fatalf("rerun: %v\n%s", err, rerunLog.String())
	}
	idx := readIndex(t, out)
	inv := idx.LastInvocation
	if inv.Skipped != len(doneBefore) || inv.Trained != g.Len()-len(doneBefore) {
		t.Errorf("rerun: %d skipped, %d trained; %d were done before the kill", inv.Skipped, inv.Trained, len(doneBefore))
	}
	for _, e := range idx.Points {
		if t0, ok := doneBefore[e.Name]; ok && !e.TrainedAt.Equal(t0) {
			t.Errorf("%s was done before the kill and was retrained", e.Name)
		}
	}
	checkRuns(t, out, g)
	for _, p := range g.Points() {
		for _, f := range []string{"init.safetensors", "final.safetensors"} {
			if mustRead(t, filepath.Join(out, p.Name, f)) != mustRead(t, filepath.Join(ref, p.Name, f)) {
				t.Errorf("%s/%s differs from the uninterrupted sweep's", p.Name, f)
			}
		}
	}
	t.Logf("killed after %d of %d points; rerun: %+v", len(doneBefore), g.Len(), *inv)
}

// A point whose training was interrupted after a checkpoint continues from
// it (certify train --resume) and ends with the same weights as an
// uninterrupted run; a partial run of another configuration is discarded.
func TestSweepResumesInterruptedTraining(t *testing.T) {
	grid := tinyGrid(t, `{"lr": [0.05, 0.2]}`)
	g := loadGrid(t, grid)
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref")
	if code, _, errOut := runCLI(t, "sweep", grid, "--out", ref); code != 0 {
		t.Fatalf("reference: %s", errOut)
	}
	out := filepath.Join(dir, "runs")
	for i, p := range g.Points() {
		// What a run killed after step 2 of 4 leaves: θ0, the step-2
		// checkpoint with optimizer state, config.json without results.
		partial := filepath.Join(out, sweep.WorkDir, p.Name+".partial")
		os.MkdirAll(filepath.Join(partial, "checkpoints"), 0o755)
		for _, f := range []string{"model.json", "init.safetensors", "checkpoints/step-2.safetensors", "checkpoints/step-2.optim.safetensors"} {
			os.WriteFile(filepath.Join(partial, f), []byte(mustRead(t, filepath.Join(ref, p.Name, f))), 0o644)
		}
		var cfg rundir.RunConfig
		json.Unmarshal([]byte(mustRead(t, filepath.Join(ref, p.Name, "config.json"))), &cfg)
		cfg.TrainLoss, cfg.TrainAccuracy, cfg.TestLoss, cfg.TestAccuracy, cfg.Steps, cfg.Seconds = 0, 0, 0, 0, 0, 0
		if i == 1 {
			cfg.Momentum = 0.5 // not this point's configuration: must not be resumed
		}
		b, _ := json.Marshal(cfg)
		os.WriteFile(filepath.Join(partial, "config.json"), b, 0o644)
	}
	if code, _, errOut := runCLI(t, "sweep", grid, "--out", out); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	idx := readIndex(t, out)
	if inv := idx.LastInvocation; inv.Trained != 2 || inv.Resumed != 1 || !idx.Points[0].Resumed || idx.Points[1].Resumed {
		t.Errorf("invocation %+v, points resumed %v %v; want point 0 resumed only", *inv, idx.Points[0].Resumed, idx.Points[1].Resumed)
	}
	checkRuns(t, out, g)
	for _, p := range g.Points() {
		for _, f := range []string{"final.safetensors", "checkpoints/step-4.safetensors"} {
			if mustRead(t, filepath.Join(out, p.Name, f)) != mustRead(t, filepath.Join(ref, p.Name, f)) {
				t.Errorf("%s/%s differs from the uninterrupted run's", p.Name, f)
			}
		}
	}
}

// TestSweepBNRecomputeIsThePointsReport: a grid whose analysis asks for
// --bn recompute makes that the point's own report (certificate.json with
// bn_policy recompute), not a variant beside a missing one, so the point is
// done and `certify table` counts it.
func TestSweepBNRecomputeIsThePointsReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bn.json")
	grid := `{
  "base": {"data": "mnist-small", "limit": 200, "arch": "784-8-10", "batch": 50, "epochs": 1, "seed": 3, "batchnorm": true},
  "axes": {"lr": [0.05]},
  "analysis": {"alphas": 5, "examples": 60, "gauss-tol": 0.01, "no-figures": true, "no-certificate": true, "bn": "recompute", "bn-reference": 60}
}`
	if err := os.WriteFile(path, []byte(grid), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "runs")
	if code, _, e := runCLI(t, "sweep", path, "--out", out, "--jobs", "1"); code != 0 {
		t.Fatalf("sweep: exit %d: %s", code, e)
	}
	g := loadGrid(t, path)
	for _, p := range g.Points() {
		r, err := certify.ReadReport(filepath.Join(out, p.Name, "certificate.json"))
		if err != nil {
			t.Fatal(err)
		}
		if r.BNPolicy != "recompute" {
			t.Errorf("%s: bn_policy %q, want recompute", p.Name, r.BNPolicy)
		}
		if _, err := os.Stat(filepath.Join(out, p.Name, "variants")); !os.IsNotExist(err) {
			t.Errorf("%s: a variants directory was written: %v", p.Name, err)
		}
	}
}

// TestShippedGridsAreTypedConfigurations loads every grid the repository
// ships (docs/sweeps.md's, docs/autoencoders/, docs/reproduction/,
// testdata/sweeps/) with the typed schema, and checks each point against
// the flags themselves: parsing the point's settings as `certify train`
// flags gives the same configuration and the same recorded train_flags as
// setting them as rundir.TrainConfig keys.
func TestShippedGridsAreTypedConfigurations(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "docs", "*", "grid*.json"))
	more, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "sweeps", "*.json"))
	files = append(files, more...)
	// docs/sweeps.md's example grid, as printed there
	md, err := os.ReadFile(filepath.Join("..", "..", "docs", "sweeps.md"))
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.Index(md, []byte(`"axes"`)); i > 0 {
		start := bytes.LastIndex(md[:i], []byte("```json\n")) + len("```json\n")
		end := i + bytes.Index(md[i:], []byte("\n}")) + 2
		p := filepath.Join(t.TempDir(), "sweeps-md.json")
		os.WriteFile(p, md[start:end], 0o644)
		files = append(files, p)
	}
	if len(files) < 6 {
		t.Fatalf("found only %d grids: %v", len(files), files)
	}
	for _, f := range files {
		g, err := sweep.Load(f, sweepSchema())
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for _, p := range g.Points() {
			if err := checkPointValues(g, p); err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			tf, _, _, err := pointFlags(g, p)
			if err != nil {
				t.Fatal(err)
			}
			var ff trainFlags
			fs := newTrainFlagSet(&ff, "train")
			for _, s := range p.Train {
				if err := fs.Set(s.Flag, s.Value); err != nil {
					t.Fatalf("%s point %d: --%s %s: %v", f, p.Index, s.Flag, s.Value, err)
				}
			}
			if !reflect.DeepEqual(ff.cfg, tf.cfg) {
				t.Errorf("%s point %d: flags give %+v, grid keys %+v", f, p.Index, ff.cfg, tf.cfg)
			}
			if got, want := tf.cfg.Values(), flagValues(fs); !reflect.DeepEqual(got, want) {
				t.Errorf("%s point %d: train_flags %v, flags %v", f, p.Index, got, want)
			}
			// The analysis keys reach the analysis as its flags would.
			_, af, ac, _ := pointFlags(g, p)
			var fa analyzeFlags
			afs := newAnalyzeFlagSet(&fa)
			for _, s := range g.Analysis {
				if err := afs.Set(s.Flag, s.Value); err != nil {
					t.Fatalf("%s: analysis --%s %s: %v", f, s.Flag, s.Value, err)
				}
			}
			if !reflect.DeepEqual(af, fa) {
				t.Errorf("%s point %d: analysis flags give %+v, grid keys %+v", f, p.Index, fa, af)
			}
			if got, want := keyed.Values(ac), flagValues(afs); !reflect.DeepEqual(got, want) {
				t.Errorf("%s point %d: analysis_flags %v, flags %v", f, p.Index, got, want)
			}
		}
	}
}

// TestGridRefusesUnknownKey: a grid key that is no training setting is
// refused naming the key and the file.
func TestGridRefusesUnknownKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "g.json")
	os.WriteFile(p, []byte(`{"base": {"data": "mnist-small", "learning_rate": 0.1}, "axes": {"seed": [1, 2]}}`), 0o644)
	_, err := sweep.Load(p, sweepSchema())
	if err == nil || !strings.Contains(err.Error(), `base.learning_rate: unknown flag "learning_rate"`) || !strings.Contains(err.Error(), p) {
		t.Errorf("unknown key: %v", err)
	}
}

// flagValues lists every flag's value except the sweep's own: what a
// point's record held when the sweep set the flags themselves.
func flagValues(fs *flag.FlagSet) map[string]string {
	m := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		if !slices.Contains(sweepReserved, f.Name) {
			m[f.Name] = f.Value.String()
		}
	})
	return m
}

// TestGridRefusesUnknownAnalysisKey: an "analysis" key that is no analysis
// setting is refused naming the key and the file, and so is one the sweep
// sets itself.
func TestGridRefusesUnknownAnalysisKey(t *testing.T) {
	for _, c := range []struct{ key, want string }{
		{"alpha", `analysis.alpha: unknown flag "alpha" (certify has: accuracy-intervals, alphas,`},
		{"quiet", `analysis.quiet: --quiet is set by the sweep itself`},
	} {
		p := filepath.Join(t.TempDir(), "g.json")
		os.WriteFile(p, []byte(`{"base": {"data": "mnist-small"}, "axes": {"seed": [1, 2]}, "analysis": {"`+c.key+`": 11}}`), 0o644)
		_, err := sweep.Load(p, sweepSchema())
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "grid "+p+": ") {
			t.Errorf("analysis key %s: %v", c.key, err)
		}
	}
}

// TestAnalysisKeysReachTheAnalysis: typed analysis keys of a grid set the
// fields the analysis reads (certify.Options, the BatchNorm policy, the
// variant, --examples), and a value the field cannot take is refused
// naming the key and the file.
func TestAnalysisKeysReachTheAnalysis(t *testing.T) {
	p := filepath.Join(t.TempDir(), "g.json")
	os.WriteFile(p, []byte(`{"base": {"data": "mnist-small"}, "axes": {"seed": [1]},
  "analysis": {"alphas": 7, "tolerance": 1e-3, "examples": 0, "bn": "recompute", "bn-reference": 30,
               "precision": "float32", "no-per-layer": true, "layer": 2, "delta-tol": 0.5}}`), 0o644)
	g, err := sweep.Load(p, sweepSchema())
	if err != nil {
		t.Fatal(err)
	}
	_, af, _, err := pointFlags(g, g.Point(0))
	if err != nil {
		t.Fatal(err)
	}
	o := af.opt
	if o.Alphas != 7 || o.Tolerance != 1e-3 || !o.NoPerLayer || o.DeltaTol != 0.5 || o.GaussTol != 1e-4 {
		t.Errorf("options %+v", o)
	}
	if af.bn != "recompute" || af.bnRef != 30 || af.prec != "float32" || af.variant.layer != 2 || af.variant.from != "init" {
		t.Errorf("analysis %+v", af)
	}
	if !af.examples.set || af.examples.n != 0 || af.examples.load() != rundir.AllExamples {
		t.Errorf("examples %+v: want set to 0 (every example)", af.examples)
	}
	os.WriteFile(p, []byte(`{"axes": {"seed": [1]}, "analysis": {"alphas": 2.5}}`), 0o644)
	if _, err := sweep.Load(p, sweepSchema()); err == nil || !strings.Contains(err.Error(), "grid "+p+": analysis.alphas: --alphas 2.5: parse error") {
		t.Errorf("alphas 2.5: %v", err)
	}
}

// TestAnalysisFlagsAreConfigKeys: the analysis's typed configuration has
// a key for every analysis flag but those the sweep sets itself, with the
// flag's default, and setting any key there then flags() sets the same
// field of analyzeFlags as the flag does.
func TestAnalysisFlagsAreConfigKeys(t *testing.T) {
	var dflt analyzeFlags
	fs := newAnalyzeFlagSet(&dflt)
	def := defaultAnalysisConfig()
	var flags []string
	fs.VisitAll(func(f *flag.Flag) {
		if !slices.Contains(sweepReserved, f.Name) {
			flags = append(flags, f.Name)
		}
	})
	if got := keyed.Keys(&def); !reflect.DeepEqual(got, flags) {
		t.Fatalf("analysisConfig keys %v, analysis flags %v", got, flags)
	}
	if got, want := keyed.Values(&def), flagValues(fs); !reflect.DeepEqual(got, want) {
		t.Errorf("defaults %v, flags' %v", got, want)
	}
	applied, err := def.flags()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(applied, dflt) {
		t.Errorf("defaults applied %+v, flags' %+v", applied, dflt)
	}
	sample := map[string]string{"string": "x", "bool": "true", "number": "7", "": "7"}
	for _, k := range flags {
		var viaFlag analyzeFlags
		ffs := newAnalyzeFlagSet(&viaFlag)
		c := defaultAnalysisConfig()
		v := sample[keyed.Kind(&c, k)]
		if fs.Lookup(k).DefValue == v {
			v = "3" // a number whose default is 7
		}
		if err := ffs.Set(k, v); err != nil {
			t.Fatalf("--%s %s: %v", k, v, err)
		}
		if err := keyed.Set(&c, k, v); err != nil {
			t.Fatalf("key %s %s: %v", k, v, err)
		}
		viaKey, err := c.flags()
		if err != nil {
			t.Fatalf("key %s %s: flags: %v", k, v, err)
		}
		if !reflect.DeepEqual(viaKey, viaFlag) {
			t.Errorf("%s=%s: the key gives %+v, the flag %+v", k, v, viaKey, viaFlag)
		}
		if reflect.DeepEqual(viaKey, dflt) {
			t.Errorf("%s=%s changed nothing", k, v)
		}
	}
}
