package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/nn"
	"gonum.org/v1/gonum/mat"
)

// slowCertRun writes a run whose certificate spends its whole budget in
// many rounds (a 4-16-16-3 tanh MLP on 300 examples; with --tolerance 0
// and a tiny --delta-tol the search refines until the budget): long
// enough to be interrupted midway.
func slowCertRun(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	spec := nn.MLPSpec([]int{4, 16, 16, 3}, "tanh", "cross_entropy")
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, 1)
	sT, _ := nn.Init(m, "pytorch", 1, 2)
	n := 300
	x := mat.NewDense(n, 4, nil)
	ys := make([]int, n)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = math.Sin(float64(i) * 0.7)
	}
	for i := range ys {
		ys[i] = i % 3
	}
	writeRunDir(t, dir, spec, s0, sT, "F64", x, nn.Targets{Labels: ys})
	return dir
}

// certAndAccuracy is the report's certificate and accuracy bounds, as JSON
// with the wall-clock seconds zeroed.
func certAndAccuracy(t *testing.T, out string) string {
	t.Helper()
	r, err := certify.ReadReport(filepath.Join(out, "certificate.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Certificate == nil || r.AccuracyBounds == nil {
		t.Fatalf("%s: no certificate or accuracy bounds", out)
	}
	r.Certificate.Seconds, r.AccuracyBounds.Seconds = 0, 0
	b, err := json.Marshal([]any{r.Certificate, r.AccuracyBounds})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCertificateKillAndResume: `certify --run` started as a process with
// a tiny --save-state-every and sent SIGINT once its certificate checkpoint
// exists exits 130 saying where the state is; a run with another
// --tolerance or other data bytes refuses the checkpoint before the grid
// (exit 2, the reason said, the file kept, not replaced), a corrupt or
// truncated one is refused with exit 2 naming the file and --fresh, and
// the same command resumes from it ("resuming from
// FILE: N leaves") and writes a certificate and accuracy bounds byte for
// byte those of an uninterrupted run, removing the checkpoint.
func TestCertificateKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "certify")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := slowCertRun(t)
	args := func(out string, extra ...string) []string {
		return append([]string{"--run", run, "--out", out, "--alphas", "5", "--no-figures", "--quiet", "--tolerance", "0",
			"--delta-tol", "1e-12", "--max-intervals", "1024", "--save-state-every", "1ms", "--workers", "1"}, extra...)
	}
	runBin := func(a []string) (int, string) {
		t.Helper()
		var e bytes.Buffer
		cmd := exec.Command(bin, a...)
		cmd.Stderr = &e
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), e.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, e.String()
	}

	ref := filepath.Join(dir, "ref")
	if code, e := runBin(args(ref)); code != 0 {
		t.Fatalf("uninterrupted run: exit %d: %s", code, e)
	}
	if _, err := os.Stat(filepath.Join(ref, checkpointDirName)); !os.IsNotExist(err) {
		t.Errorf("a finished run left its checkpoints (%v)", err)
	}
	want := certAndAccuracy(t, ref)

	out := filepath.Join(dir, "out")
	ckFile := filepath.Join(out, checkpointDirName, certify.CertificateCheckpoint)
	var e bytes.Buffer
	cmd := exec.Command(bin, args(out)...)
	cmd.Stderr = &e
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(ckFile); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("interrupted run: %v, want exit 130 (the run may have finished first; stderr:\n%s)", err, e.String())
	}
	if !strings.Contains(e.String(), "search state is saved in "+filepath.Join(out, checkpointDirName)) {
		t.Errorf("interrupted run's message does not say where the state is:\n%s", e.String())
	}
	saved, err := os.ReadFile(ckFile)
	if err != nil {
		t.Fatal(err)
	}
	// seed puts the saved checkpoint into outDir's checkpoint directory
	seed := func(outDir string) string {
		t.Helper()
		f := filepath.Join(outDir, checkpointDirName, certify.CertificateCheckpoint)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, saved, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}

	// kept checks that the refused checkpoint f is still the saved one
	kept := func(what, f string) {
		t.Helper()
		if b, err := os.ReadFile(f); err != nil || !bytes.Equal(b, saved) {
			t.Errorf("%s: the checkpoint %s was replaced or removed (%v)", what, f, err)
		}
	}
	// another tolerance: refused before the grid (exit 2), said why, and
	// the file kept (hours of a search may be in it)
	other := filepath.Join(dir, "other")
	f := seed(other)
	a := args(other)
	if a[len(a)-10] != "--tolerance" {
		t.Fatalf("args %v", a)
	}
	a[len(a)-9] = "1e-3" // --tolerance's value
	code, msg := runBin(a)
	if code != 2 || !strings.Contains(msg, "checkpoint "+f+": it was saved with other options, search options (") || !strings.Contains(msg, "it is kept, not replaced") || !strings.Contains(msg, "--fresh") || strings.Contains(msg, "loss on the grid") {
		t.Errorf("another tolerance: exit %d, stderr:\n%s", code, msg)
	}
	kept("another tolerance", f)

	// other data bytes (the same run otherwise): not resumed either
	run2 := t.TempDir()
	for _, f := range []string{"model.json", "init.safetensors", "final.safetensors"} {
		b, err := os.ReadFile(filepath.Join(run, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(run2, f), b, 0o644)
	}
	spec, _ := nn.ReadSpec(filepath.Join(run, "model.json"))
	m, _ := nn.Build(spec)
	s0, _ := nn.Init(m, "pytorch", 1, 1)
	sT, _ := nn.Init(m, "pytorch", 1, 2)
	x := mat.NewDense(300, 4, nil)
	ys := make([]int, 300)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = math.Sin(float64(i) * 0.7)
	}
	x.RawMatrix().Data[0] += 1e-3
	for i := range ys {
		ys[i] = i % 3
	}
	writeRunDir(t, run2, spec, s0, sT, "F64", x, nn.Targets{Labels: ys})
	other2 := filepath.Join(dir, "other2")
	f = seed(other2)
	a = args(other2)
	a[1] = run2
	code, msg = runBin(a)
	if code != 2 || !strings.Contains(msg, "checkpoint "+f+": it was saved with other data.safetensors, path read (model, θ0, δ, examples) (") || !strings.Contains(msg, "it is kept, not replaced") {
		t.Errorf("other data: exit %d, stderr:\n%s", code, msg)
	}
	kept("other data", f)

	// corrupt and truncated: exit 2 naming the file, with the hint
	for name, bad := range map[string][]byte{
		"flipped":   append(append([]byte{}, saved[:len(saved)-10]...), append([]byte{saved[len(saved)-10] ^ 1}, saved[len(saved)-9:]...)...),
		"truncated": saved[:len(saved)/2],
		"garbage":   []byte("not a checkpoint\n"),
	} {
		if err := os.WriteFile(ckFile, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		code, msg := runBin(args(out))
		if code != 2 || !strings.Contains(msg, ckFile) || !strings.Contains(msg, "--fresh") {
			t.Errorf("%s checkpoint: exit %d, stderr:\n%s", name, code, msg)
		}
	}

	// the same command resumes and gives the uninterrupted run's result
	seed(out)
	code, msg = runBin(args(out))
	if code != 0 || !strings.Contains(msg, "certificate: resuming from "+ckFile+": ") {
		t.Fatalf("resumed run: exit %d, stderr:\n%s", code, msg)
	}
	if got := certAndAccuracy(t, out); got != want {
		t.Errorf("resumed run's certificate and accuracy bounds differ from the uninterrupted run's:\n got %s\nwant %s", got, want)
	}
	// its certificate.seconds counts the interrupted process's search too
	// (the header's seconds), and a note says so; the uninterrupted run has
	// no such note
	_, hl, _ := bytes.Cut(saved, []byte("\n"))
	hl, _, _ = bytes.Cut(hl, []byte("\n"))
	var h struct{ Seconds float64 }
	if err := json.Unmarshal(hl, &h); err != nil || h.Seconds <= 0 {
		t.Errorf("the checkpoint's header %s: seconds %v, err %v; want > 0", hl, h.Seconds, err)
	}
	rr, err := certify.ReadReport(filepath.Join(out, "certificate.json"))
	if err != nil {
		t.Fatal(err)
	}
	if rr.Certificate.Seconds < h.Seconds {
		t.Errorf("resumed certificate.seconds %v < the %v s saved in the checkpoint", rr.Certificate.Seconds, h.Seconds)
	}
	if !strings.Contains(strings.Join(rr.Notes, "\n"), "certificate resumed from the checkpoint "+ckFile+": certificate.seconds (") {
		t.Errorf("the resumed report's notes do not say the certificate resumed:\n%s", strings.Join(rr.Notes, "\n"))
	}
	if r0, _ := certify.ReadReport(filepath.Join(ref, "certificate.json")); strings.Contains(strings.Join(r0.Notes, "\n"), "resumed from the checkpoint") {
		t.Errorf("the uninterrupted report's notes say it resumed:\n%s", strings.Join(r0.Notes, "\n"))
	}
	if _, err := os.Stat(filepath.Join(out, checkpointDirName)); !os.IsNotExist(err) {
		t.Errorf("the resumed run left its checkpoints (%v)", err)
	}
	// --fresh ignores a checkpoint, saying so
	fresh := filepath.Join(dir, "fresh")
	f = seed(fresh)
	code, msg = runBin(args(fresh, "--fresh"))
	if code != 0 || !strings.Contains(msg, "ignoring checkpoint "+f) || strings.Contains(msg, ": resuming from") {
		t.Errorf("--fresh: exit %d, stderr:\n%s", code, msg)
	}
}
