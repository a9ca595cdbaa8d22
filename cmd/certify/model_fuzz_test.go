package main

import (
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

// fuzzAnalyzeArgs are small analysis settings for the fuzzed runs.
var fuzzAnalyzeArgs = []string{"--json", "--no-figures", "--alphas", "5", "--gauss-tol", "1e-2", "--gauss-rel-tol", "1e-2",
	"--gauss-max-intervals", "64", "--max-intervals", "32", "--example-intervals", "4", "--workers", "1"}

var layerIndex = regexp.MustCompile(`^layers\[\d+\]`)

// TestModelFuzzCLI drives random model.json specs (testnets.DrawSpec, 25
// of them; CERTIFY_MODEL_FUZZ=N for N) end to end through certify --run:
// a spec nn.ReadSpec refuses exits with status 2 and a message naming
// model.json and the same layers[i] as ReadSpec; a spec it accepts, with
// random θ0, θT of its tensors' shapes and random data, is analysed (exit
// 0) into a report whose verdict is one of the four. Never a panic: run
// recovers none, so one would fail the test.
func TestModelFuzzCLI(t *testing.T) {
	checks := "25"
	if v := os.Getenv("CERTIFY_MODEL_FUZZ"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("CERTIFY_MODEL_FUZZ=%q: want a positive number of checks", v)
		}
		checks = v
	}
	f := flag.Lookup("rapid.checks")
	old := f.Value.String()
	if err := f.Value.Set(checks); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Value.Set(old) }()
	var refused, analysed int
	rapid.Check(t, func(rt *rapid.T) {
		dir := filepath.Join(t.TempDir(), "run")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			rt.Fatal(err)
		}
		spec := testnets.DrawSpec(rt)
		seed := rapid.Uint64().Draw(rt, "seed")
		rng := rand.New(rand.NewPCG(seed, 13))
		b, err := json.Marshal(spec)
		if err != nil {
			rt.Fatal(err)
		}
		file := filepath.Join(dir, "model.json")
		if err := os.WriteFile(file, b, 0o644); err != nil {
			rt.Fatal(err)
		}
		if _, readErr := nn.ReadSpec(file); readErr != nil {
			want := layerIndex.FindString(strings.TrimPrefix(readErr.Error(), file+": "))
			if want == "" {
				rt.Fatalf("ReadSpec's refusal names no layer: %v", readErr)
			}
			code, _, errOut := runCLI(t, append([]string{"--run", dir}, fuzzAnalyzeArgs...)...)
			if code != 2 || !strings.Contains(errOut, "model.json: "+want) {
				rt.Fatalf("refused spec: exit %d, stderr %q; want 2 and model.json: %s\nmodel.json: %s", code, errOut, want, b)
			}
			refused++
			return
		}
		m, err := nn.Build(spec)
		if err != nil {
			rt.Fatal(err)
		}
		s0, sT := testnets.RandomState(m, rng, 0.5), testnets.RandomState(m, rng, 0.5)
		x, y := testnets.RandomData(rng, rapid.IntRange(2, 4).Draw(rt, "n"), spec.InputSize(), m.OutSize(), spec.Loss, 1)
		writeRunDir(t, dir, spec, s0, sT, "F64", x, y)
		code, out, errOut := runCLI(t, append([]string{"--run", dir}, fuzzAnalyzeArgs...)...)
		if code != 0 {
			b, _ := json.Marshal(spec)
			rt.Fatalf("valid spec: exit %d: %s\nmodel.json: %s", code, errOut, b)
		}
		var r certify.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			rt.Fatalf("report: %v", err)
		}
		switch r.Verdict {
		case certify.CertifiedMonotone, certify.MonotoneOnGrid, certify.NonMonotone, certify.Inconclusive:
		default:
			rt.Fatalf("verdict %q is none of the four", r.Verdict)
		}
		analysed++
	})
	t.Logf("%d refused with exit 2, %d analysed", refused, analysed)
}

// TestBatchNormFirstRunAnalyses: issue #11's crash (newEvaluator panicked on
// a valid model whose first layer is batchnorm1d): certify --run analyses
// such a run under both BatchNorm policies, with the certificate, and its
// L(0) is the evaluation-mode loss of θ0 (Model.Forward).
func TestBatchNormFirstRunAnalyses(t *testing.T) {
	spec := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{3}, Loss: "cross_entropy", Layers: []nn.LayerSpec{
		{Type: "batchnorm1d"}, {Type: "linear", In: 3, Out: 4}, {Type: "relu"}, {Type: "linear", In: 4, Out: 2}}}
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	s0, sT := testnets.RandomState(m, rng, 0.5), testnets.RandomState(m, rng, 0.5)
	x, y := testnets.RandomData(rng, 6, 3, 2, spec.Loss, 1)
	dir := t.TempDir()
	writeRunDir(t, dir, spec, s0, sT, "F64", x, y)
	want, _ := nn.Loss(spec.Loss, m.Forward(s0, x), y, false)
	for _, bn := range []string{"interpolate", "recompute"} {
		code, out, errOut := runCLI(t, append([]string{"--run", dir, "--bn", bn}, fuzzAnalyzeArgs...)...)
		if code != 0 {
			t.Fatalf("--bn %s: exit %d: %s", bn, code, errOut)
		}
		var r certify.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		if r.Certificate == nil {
			t.Errorf("--bn %s: no certificate (verdict %q)", bn, r.Verdict)
		}
		if bn == "interpolate" && math.Abs(r.Loss[0]-want) > 1e-12*(1+want) {
			t.Errorf("L(0) = %v, want the evaluation-mode loss %v", r.Loss[0], want)
		}
	}
}
