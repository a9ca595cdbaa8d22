package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-mli/certify/rundir"
)

const residualModelJSON = `{
  "format": "sequential/v1",
  "input_shape": [784],
  "loss": "cross_entropy",
  "layers": [
    {"type": "linear", "in": 784, "out": 16},
    {"type": "residual",
     "body": [{"type": "linear", "in": 16, "out": 16}, {"type": "batchnorm1d"}, {"type": "relu"},
              {"type": "linear", "in": 16, "out": 16}, {"type": "batchnorm1d"}],
     "shortcut": []},
    {"type": "relu"},
    {"type": "linear", "in": 16, "out": 10}
  ]
}
`

func modelTrainFlags(t *testing.T, model, out string, extra ...string) trainFlags {
	var tf trainFlags
	fs := newTrainFlagSet(&tf, "train")
	args := append([]string{"--data", "mnist-small", "--limit", "300", "--model", model, "--optim", "sgd", "--lr", "0.05",
		"--momentum", "0.9", "--weight-decay", "5e-4", "--milestones", "1", "--zero-init-residual",
		"--epochs", "2", "--batch", "50", "--seed", "3", "--checkpoint-every", "4", "--dtype", "f64", "--quiet", "--out", out}, extra...)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return tf
}

// TestTrainModelResidual: `certify train --model model.json` trains a
// residual network with SGD momentum, weight decay, a MultiStepLR schedule
// and zero-γ identity init; θ0 has the zeroed γ and PyTorch's BatchNorm
// reset elsewhere, the run loads as a run directory, config.json records
// the settings, and an interrupted run resumed from its checkpoint ends
// bit-identical (the schedule is a function of the epoch).
func TestTrainModelResidual(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model.json")
	if err := os.WriteFile(model, []byte(residualModelJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	whole := filepath.Join(dir, "whole")
	if _, err := train(context.Background(), modelTrainFlags(t, model, whole), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	run, err := rundir.Read(whole, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range run.Theta0["1.body.4.weight"].Data {
		if v != 0 {
			t.Fatalf("θ0 1.body.4.weight %v: want zeros (--zero-init-residual)", run.Theta0["1.body.4.weight"].Data)
		}
	}
	for _, v := range run.Theta0["1.body.1.weight"].Data {
		if v != 1 {
			t.Fatalf("θ0 1.body.1.weight %v: want ones", run.Theta0["1.body.1.weight"].Data)
		}
	}
	if run.Config == nil || run.Config.Model != model || run.Config.Milestones != "1" || run.Config.LRGamma != 0.1 || !run.Config.ZeroInitResidual || run.Config.Arch != "" {
		t.Fatalf("config.json: %+v", run.Config)
	}
	if run.Theta0["1.body.4.weight"].Data[0] == run.ThetaT["1.body.4.weight"].Data[0] {
		t.Fatal("the zeroed γ did not train")
	}
	cut := filepath.Join(dir, "cut")
	ctx, cancel := context.WithCancel(context.Background())
	afterStep = func(step int) {
		if step == 7 {
			cancel()
		}
	}
	_, err = train(ctx, modelTrainFlags(t, model, cut), &bytes.Buffer{})
	afterStep = nil
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted training returned %v", err)
	}
	tf := modelTrainFlags(t, model, cut)
	tf.resume = true
	if _, err := train(context.Background(), tf, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(whole, "final.safetensors"))
	b, _ := os.ReadFile(filepath.Join(cut, "final.safetensors"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Error("resumed training ended with different weights")
	}
}

// TestTrainModelRefusals: bad --model, --milestones and --zero-init-residual
// settings are refused as bad input, naming the file or the flag.
func TestTrainModelRefusals(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model.json")
	if err := os.WriteFile(model, []byte(residualModelJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	noBN := filepath.Join(dir, "nobn.json")
	if err := os.WriteFile(noBN, []byte(strings.ReplaceAll(strings.ReplaceAll(residualModelJSON, `, {"type": "batchnorm1d"}`, ""), `{"type": "batchnorm1d"}, `, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(strings.Replace(residualModelJSON, `"shortcut": []`, `"shortcut": [], "scael": true`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tf   trainFlags
		want string
	}{
		{modelTrainFlags(t, bad, filepath.Join(dir, "a")), `bad.json: layers[1]: unknown key "scael"`},
		{modelTrainFlags(t, noBN, filepath.Join(dir, "b")), "--zero-init-residual: the model has no residual block"},
		{modelTrainFlags(t, model, filepath.Join(dir, "c"), "--milestones", "3,1"), "--milestones 3,1"},
		{modelTrainFlags(t, model, filepath.Join(dir, "d"), "--milestones", "x"), "--milestones"},
		{modelTrainFlags(t, model, filepath.Join(dir, "e"), "--batchnorm"), "--batchnorm applies to --arch"},
		{modelTrainFlags(t, model, filepath.Join(dir, "f"), "--milestones", "", "--lr-gamma", "0.5"), "--lr-gamma 0.5 needs --milestones"},
	} {
		_, err := train(context.Background(), c.tf, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
			continue
		}
		var ie inputError
		if !errors.As(err, &ie) {
			t.Errorf("%v: not bad input (exit 2)", err)
		}
	}
}
