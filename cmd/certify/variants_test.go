package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/nn/dataset"
	"github.com/certify-mli/certify/rundir"
)

// evalLoss is L of state s on the run's evaluation data (nn.Evaluate, an
// oracle independent of the path).
func evalLoss(t *testing.T, run *rundir.Run, s nn.State) float64 {
	t.Helper()
	l, _ := nn.Evaluate(run.Model, s, run.X, run.Targets, 0)
	return l
}

// mix returns the state taking keys with pick(key) from a, the others from b.
func mix(a, b nn.State, pick func(string) bool) nn.State {
	out := nn.State{}
	for k := range a {
		if pick(k) {
			out[k] = a[k]
		} else {
			out[k] = b[k]
		}
	}
	return out
}

// TestAnalyzeVariantsCLI runs `certify --run` with every variant flag on a
// small run and checks that the report's L(0) and L(1) are the losses of the
// endpoints the variant names (evaluated independently), that the variant
// is recorded, and that the run's certificate.json is left alone.
func TestAnalyzeVariantsCLI(t *testing.T) {
	dir := makeRun(t, "cross_entropy")
	run, err := rundir.Read(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other-init.safetensors")
	m := run.Model
	sO, _ := nn.Init(m, "pytorch", 1, 9)
	if err := nn.WriteState(other, sO, "F64"); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "checkpoints"), 0o755)
	if err := nn.WriteState(filepath.Join(dir, "checkpoints", "step-5.safetensors"), sO, "F64"); err != nil {
		t.Fatal(err)
	}
	s0, sT := run.Theta0, run.ThetaT
	isW := func(k string) bool { return strings.HasSuffix(k, ".weight") }
	isB := func(k string) bool { return strings.HasSuffix(k, ".bias") }
	in2 := func(k string) bool { return strings.HasPrefix(k, "2.") }
	cases := []struct {
		flags      []string
		dir        string
		start, end nn.State
	}{
		{[]string{"--interpolate", "weights"}, "interpolate=weights_alphas=5_no-certificate", mix(s0, sT, isW), sT},
		{[]string{"--interpolate", "biases"}, "interpolate=biases_alphas=5_no-certificate", mix(s0, sT, isB), sT},
		{[]string{"--interpolate", "biases", "--hold", "init"}, "interpolate=biases_hold=init_alphas=5_no-certificate", s0, mix(sT, s0, isB)},
		{[]string{"--layer", "2"}, "layer=2_alphas=5_no-certificate", mix(s0, sT, in2), sT},
		{[]string{"--layer", "0", "--hold", "init"}, "layer=0_hold=init_alphas=5_no-certificate", s0, mix(sT, s0, func(k string) bool { return strings.HasPrefix(k, "0.") })},
		{[]string{"--from", other}, "", sO, sT},
		{[]string{"--from", "checkpoints/step-5.safetensors"}, "from=checkpoints-step-5.safetensors_alphas=5_no-certificate", sO, sT},
	}
	for _, c := range cases {
		args := append([]string{"--run", dir, "--alphas", "5", "--no-figures", "--no-certificate", "--quiet"}, c.flags...)
		if code, _, e := runCLI(t, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", c.flags, code, e)
		}
		sub := c.dir
		if sub == "" { // an absolute --from: find the one new directory
			ents, _ := os.ReadDir(filepath.Join(dir, "variants"))
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), "from=") && strings.Contains(e.Name(), "other-init") {
					sub = e.Name()
				}
			}
		}
		r, err := certify.ReadReport(filepath.Join(dir, "variants", sub, VariantReportFile))
		if err != nil {
			t.Fatalf("%v: %v", c.flags, err)
		}
		if r.Options.Variant == nil {
			t.Fatalf("%v: variant not recorded", c.flags)
		}
		for _, e := range []struct {
			got float64
			s   nn.State
			at  string
		}{{r.Loss[0], c.start, "α=0"}, {r.Loss[len(r.Loss)-1], c.end, "α=1"}} {
			want := evalLoss(t, run, e.s)
			if math.Abs(e.got-want) > 1e-12*(1+math.Abs(want)) {
				t.Errorf("%v: L at %s = %v, the endpoint's loss is %v", c.flags, e.at, e.got, want)
			}
		}
		var sum float64
		for _, l := range r.PerLayerDLoss {
			sum += l.DLoss[2]
		}
		if len(r.PerLayerDLoss) != 2 || math.Abs(sum-r.DLoss[2]) > 1e-12*(1+math.Abs(r.DLoss[2])) {
			t.Errorf("%v: per-layer L′ %+v does not sum to %v", c.flags, r.PerLayerDLoss, r.DLoss[2])
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "certificate.json")); err == nil {
		t.Error("a variant wrote the run's certificate.json")
	}
	// The plain line with other analysis settings goes to its own
	// variant too, named by its settings, without a certify.Variant.
	if code, _, e := runCLI(t, "--run", dir, "--alphas", "5", "--no-figures", "--no-certificate", "--quiet", "--no-per-layer"); code != 0 {
		t.Fatal(e)
	}
	r, err := certify.ReadReport(filepath.Join(dir, "variants", "alphas=5_no-certificate_no-per-layer", VariantReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if r.Options.Variant != nil || r.PerLayerDLoss != nil || !r.Options.NoPerLayer {
		t.Errorf("plain analysis: variant %v, per-layer %v", r.Options.Variant, r.PerLayerDLoss)
	}
	// Bad variants are bad input (exit 2).
	for _, bad := range [][]string{
		{"--layer", "1"}, {"--hold", "init"}, {"--interpolate", "gains"}, {"--from", "missing.safetensors"}, {"--labels", "some"}, {"--layer", "-3"},
	} {
		args := append([]string{"--run", dir, "--alphas", "5", "--no-figures", "--quiet"}, bad...)
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}

// TestTrainLabelNoiseCLI: --label-noise corrupts exactly round(p·N) labels,
// deterministically from the seed; the record is written, config.json
// states the count, certify --run evaluates the labels trained on by
// default and the clean ones with --labels clean.
func TestTrainLabelNoiseCLI(t *testing.T) {
	base := t.TempDir()
	dirs := []string{filepath.Join(base, "a"), filepath.Join(base, "b")}
	for _, d := range dirs {
		if code, _, e := runCLI(t, "train", "--data", "mnist-small", "--limit", "150", "--arch", "784-6-10", "--epochs", "1", "--batch", "50",
			"--seed", "4", "--label-noise", "0.3", "--quiet", "--out", d); code != 0 {
			t.Fatalf("train: exit %d: %s", code, e)
		}
	}
	rec, err := nn.ReadLabelNoise(filepath.Join(dirs[0], nn.LabelNoiseFile))
	if err != nil || rec == nil {
		t.Fatalf("no record: %v", err)
	}
	if len(rec.Index) != 45 {
		t.Errorf("%d labels corrupted, want round(0.3·150) = 45", len(rec.Index))
	}
	var cfg rundir.RunConfig
	b, _ := os.ReadFile(filepath.Join(dirs[0], "config.json"))
	json.Unmarshal(b, &cfg)
	if cfg.LabelNoise != 0.3 || cfg.LabelNoiseCount != 45 {
		t.Errorf("config.json: label_noise %v, count %d", cfg.LabelNoise, cfg.LabelNoiseCount)
	}
	for _, name := range []string{"final.safetensors", nn.LabelNoiseFile} {
		x, _ := os.ReadFile(filepath.Join(dirs[0], name))
		y, _ := os.ReadFile(filepath.Join(dirs[1], name))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
	}
	set, err := dataset.Load(dataset.Spec{Name: "mnist-small", Split: "train", Limit: 150})
	if err != nil {
		t.Fatal(err)
	}
	run, err := rundir.Read(dirs[0], 150)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(run.CleanLabels, set.Y) {
		t.Fatal("CleanLabels are not the dataset's labels")
	}
	changed := 0
	for i := range set.Y {
		if run.Targets.Labels[i] != set.Y[i] {
			changed++
		}
	}
	if changed != 45 {
		t.Errorf("LoadRun: %d evaluation labels differ from the dataset's, want 45", changed)
	}
	// Trained labels by default, clean ones on request, in a variant directory.
	for _, c := range []struct {
		flags  []string
		report string
		labels []int
	}{
		{nil, filepath.Join(dirs[0], "variants", "alphas=3_loss-only", VariantReportFile), run.Targets.Labels},
		{[]string{"--labels", "clean"}, filepath.Join(dirs[0], "variants", "labels=clean_alphas=3_loss-only", VariantReportFile), set.Y},
	} {
		args := append([]string{"--run", dirs[0], "--examples", "150", "--alphas", "3", "--loss-only", "--no-figures", "--quiet"}, c.flags...)
		if code, _, e := runCLI(t, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", c.flags, code, e)
		}
		r, err := certify.ReadReport(c.report)
		if err != nil {
			t.Fatal(err)
		}
		ev := *run
		ev.Targets = nn.Targets{Labels: c.labels}
		if want := evalLoss(t, &ev, run.ThetaT); math.Abs(r.Loss[2]-want) > 1e-12*(1+want) {
			t.Errorf("%v: L(1) = %v, want %v on those labels", c.flags, r.Loss[2], want)
		}
	}
}

// TestTrainInitAnchorCLI: --init-anchor λ > 0 shortens ‖θT − θ0‖, λ < 0
// lengthens it, everything else fixed; config.json records λ; and an
// anchored, noisy run resumed from a checkpoint ends bit-identical.
func TestTrainInitAnchorCLI(t *testing.T) {
	base := t.TempDir()
	dist := map[string]float64{}
	for _, lam := range []string{"0", "4", "-2"} {
		d := filepath.Join(base, "l"+lam)
		if code, _, e := runCLI(t, "train", "--data", "mnist-small", "--limit", "300", "--arch", "784-6-10", "--epochs", "2", "--batch", "30",
			"--lr", "0.1", "--seed", "2", "--init-anchor", lam, "--quiet", "--out", d); code != 0 {
			t.Fatalf("train λ=%s: exit %d: %s", lam, code, e)
		}
		run, err := rundir.Read(d, 10)
		if err != nil {
			t.Fatal(err)
		}
		dist[lam], _ = certify.WeightDistance(run.Model, run.Theta0, nn.Difference(run.Theta0, run.ThetaT))
		var cfg rundir.RunConfig
		b, _ := os.ReadFile(filepath.Join(d, "config.json"))
		json.Unmarshal(b, &cfg)
		if want := map[string]float64{"0": 0, "4": 4, "-2": -2}[lam]; cfg.InitAnchor != want {
			t.Errorf("config.json init_anchor %v, want %v", cfg.InitAnchor, want)
		}
	}
	if !(dist["4"] < dist["0"] && dist["0"] < dist["-2"]) {
		t.Errorf("‖θT − θ0‖: λ=4 %v, λ=0 %v, λ=−2 %v: want increasing as λ falls", dist["4"], dist["0"], dist["-2"])
	}

	flags := func(out string) trainFlags {
		tf := smallTrainFlags(out)
		tf.cfg.InitAnchor, tf.cfg.LabelNoise = 0.5, 0.2
		return tf
	}
	whole, cut := filepath.Join(base, "whole"), filepath.Join(base, "cut")
	if _, err := train(context.Background(), flags(whole), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	afterStep = func(step int) {
		if step == 6 {
			cancel()
		}
	}
	_, err := train(ctx, flags(cut), &bytes.Buffer{})
	afterStep = nil
	if err == nil {
		t.Fatal("interrupted training did not stop")
	}
	tf := flags(cut)
	tf.resume = true
	if _, err := train(context.Background(), tf, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(whole, "final.safetensors"))
	b, _ := os.ReadFile(filepath.Join(cut, "final.safetensors"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Error("resumed anchored, noisy training ended with different weights")
	}
}
