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
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/nn/safetensors"
)

// runCLI runs the command line in-process and returns its exit status and outputs.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var o, e bytes.Buffer
	stdout, stderr = &o, &e
	defer func() { stdout, stderr = os.Stdout, os.Stderr }()
	code := run(context.Background(), args)
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
	if err := spec.Write(filepath.Join(dir, "model.json")); err != nil {
		t.Fatal(err)
	}
	if err := nn.WriteState(filepath.Join(dir, "init.safetensors"), s0, "F64"); err != nil {
		t.Fatal(err)
	}
	if err := nn.WriteState(filepath.Join(dir, "final.safetensors"), sT, "F32"); err != nil {
		t.Fatal(err)
	}
	if err := nn.WriteData(filepath.Join(dir, "data.safetensors"), x, nn.Targets{Labels: []int{0, 1, 2, 0, 1, 2}}); err != nil {
		t.Fatal(err)
	}
	return dir
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
	r, err := certify.ReadReport(filepath.Join(dir, "certificate.json"))
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
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j["verdict"] != r.Verdict {
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
			nn.WriteData(filepath.Join(dir, "data.safetensors"), x, nn.Targets{Labels: []int{0, 7}})
		}, []string{"data.safetensors", "y", "label 7"}},
		{"empty data", func(dir string) {
			safetensors.Write(filepath.Join(dir, "data.safetensors"), []safetensors.Tensor{
				{Name: "x", DType: "F64", Shape: []int{0, 4}}, {Name: "y", DType: "I64", Shape: []int{0}}}, "F64", nil)
		}, []string{"data.safetensors", "x", "empty"}},
		{"no data", func(dir string) { os.Remove(filepath.Join(dir, "data.safetensors")) }, []string{"no evaluation data"}},
		{"wrong feature count", func(dir string) {
			nn.WriteData(filepath.Join(dir, "data.safetensors"), mat.NewDense(2, 3, nil), nn.Targets{Labels: []int{0, 1}})
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
	} {
		code, _, errOut := runCLI(t, append([]string{"--run", dir, "--no-figures"}, args...)...)
		if code != 2 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}
