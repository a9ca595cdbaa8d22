package rundir

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/nn/dataset"
)

// small is a run that trains in well under a second: 784-12-10 on the
// first 200 examples of the built-in MNIST subset, 8 steps, checkpoints
// every 4.
func small() TrainConfig {
	c := DefaultTrainConfig()
	c.Data.Name, c.Data.Limit = "mnist-small", 200
	c.Arch, c.Epochs, c.Batch, c.Seed, c.CheckpointEvery = "784-12-10", 2, 50, 7, 4
	return c
}

// TestTrainThenReadRoundTrip writes a run with Train and reads it with Read:
// the model is the MLP the configuration names, θ0 is nn.Init's draw for the
// seed rounded to float32 (the default dtype), θT is the last F64 checkpoint
// rounded to float32, the evaluation data are the training examples, and
// config.json is the configuration Train returned.
func TestTrainThenReadRoundTrip(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	cfg, err := Train(context.Background(), small(), Options{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Read(out, AllExamples)
	if err != nil {
		t.Fatal(err)
	}
	want := nn.MLPSpec([]int{784, 12, 10}, "relu", "cross_entropy")
	if !reflect.DeepEqual(r.Spec, want) {
		t.Errorf("model.json read back as %+v, want %+v", r.Spec, want)
	}
	m, err := nn.Build(want)
	if err != nil {
		t.Fatal(err)
	}
	theta0, err := nn.Init(m, "pytorch", 1, 7)
	if err != nil {
		t.Fatal(err)
	}
	sameState(t, "θ0", r.Theta0, theta0, true)
	if cfg.Steps != 8 {
		t.Fatalf("steps %d, want 2 epochs × 200/50 = 8", cfg.Steps)
	}
	last, err := nn.ReadState(filepath.Join(out, CheckpointDir, "step-8.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	sameState(t, "θT", r.ThetaT, last, true)
	set, err := dataset.Load(dataset.Spec{Name: "mnist-small", Split: "train", Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	n, d := r.X.Dims()
	if n != 200 || d != 784 || !reflect.DeepEqual(r.Targets.Labels, set.Y) {
		t.Fatalf("data: %d×%d, labels equal %v", n, d, reflect.DeepEqual(r.Targets.Labels, set.Y))
	}
	for i := 0; i < n; i++ {
		if !reflect.DeepEqual(r.X.RawRowView(i), set.X[i*d:(i+1)*d]) {
			t.Fatalf("example %d differs from the data set's", i)
		}
	}
	if !reflect.DeepEqual(r.Config, cfg) {
		t.Errorf("config.json read back as %+v, want %+v", r.Config, cfg)
	}
}

// sameState compares two states key by key; with f32 the expected values
// are rounded to float32 first.
func sameState(t *testing.T, what string, got, want nn.State, f32 bool) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: key %s missing", what, k)
			continue
		}
		if !reflect.DeepEqual(g.Shape, w.Shape) {
			t.Errorf("%s: %s shape %v, want %v", what, k, g.Shape, w.Shape)
			continue
		}
		for i, v := range w.Data {
			if f32 {
				v = float64(float32(v))
			}
			if g.Data[i] != v {
				t.Errorf("%s: %s[%d] = %v, want %v", what, k, i, g.Data[i], v)
				break
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d tensors, want %d", what, len(got), len(want))
	}
}

// header reads a safetensors file's JSON header by RUN_FORMAT.md's
// definition: an 8-byte little-endian length, then that many bytes of JSON.
func header(t *testing.T, path string) map[string]json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b[:8])
	var h map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &h); err != nil {
		t.Fatalf("%s: header: %v", path, err)
	}
	return h
}

// TestTrainWritesRunFormat checks a directory written by Train against
// RUN_FORMAT.md's "Files" and "model.json" sections, reading the files
// with encoding/json and the safetensors layout itself (not with nn).
func TestTrainWritesRunFormat(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	c := small()
	c.LabelNoise = 0.1
	if _, err := Train(context.Background(), c, Options{Out: out}); err != nil {
		t.Fatal(err)
	}
	var model struct {
		Format     string           `json:"format"`
		InputShape []int            `json:"input_shape"`
		Layers     []map[string]any `json:"layers"`
		Loss       string           `json:"loss"`
	}
	b, err := os.ReadFile(filepath.Join(out, ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &model); err != nil {
		t.Fatal(err)
	}
	if model.Format != "sequential/v1" || !reflect.DeepEqual(model.InputShape, []int{784}) || model.Loss != "cross_entropy" {
		t.Errorf("model.json: format %q input_shape %v loss %q", model.Format, model.InputShape, model.Loss)
	}
	types := []string{}
	for _, l := range model.Layers {
		types = append(types, l["type"].(string))
	}
	if !reflect.DeepEqual(types, []string{"linear", "relu", "linear"}) {
		t.Errorf("model.json layers %v", types)
	}
	// θ0 and θT: F32 by default, keyed as nn.Sequential's state_dict,
	// dense weights [out, in].
	wantShapes := map[string][]int{"0.weight": {12, 784}, "0.bias": {12}, "2.weight": {10, 12}, "2.bias": {10}}
	for _, f := range []string{InitFile, FinalFile} {
		h := header(t, filepath.Join(out, f))
		delete(h, "__metadata__")
		if len(h) != len(wantShapes) {
			t.Errorf("%s: keys %v", f, keys(h))
		}
		for k, shape := range wantShapes {
			var info struct {
				DType string `json:"dtype"`
				Shape []int  `json:"shape"`
			}
			if err := json.Unmarshal(h[k], &info); err != nil || info.DType != "F32" || !reflect.DeepEqual(info.Shape, shape) {
				t.Errorf("%s: %s: %s, want F32 %v", f, k, h[k], shape)
			}
		}
	}
	// config.json names the data set (RUN_FORMAT.md: "data" {name, split, limit}).
	var cfg map[string]json.RawMessage
	b, _ = os.ReadFile(filepath.Join(out, ConfigFile))
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(cfg["data"], &data); err != nil || !reflect.DeepEqual(data, map[string]any{"name": "mnist-small", "split": "train", "limit": 200.0}) {
		t.Errorf("config.json data: %s", cfg["data"])
	}
	// metrics.jsonl: one JSON object a line, with step and epoch.
	f, err := os.Open(filepath.Join(out, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	lines := 0
	for sc.Scan() {
		var rec map[string]float64
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("metrics.jsonl line %d: %v", lines+1, err)
		}
		if _, ok := rec["step"]; !ok {
			t.Errorf("metrics.jsonl line %d has no step", lines+1)
		}
		if _, ok := rec["epoch"]; !ok {
			t.Errorf("metrics.jsonl line %d has no epoch", lines+1)
		}
		lines++
	}
	if lines != 2 { // no step is a multiple of 50; one line per epoch end
		t.Errorf("metrics.jsonl: %d lines, want 2", lines)
	}
	// checkpoints/step-K.safetensors every 4 steps, F64.
	for _, k := range []string{"step-4", "step-8"} {
		h := header(t, filepath.Join(out, CheckpointDir, k+".safetensors"))
		if !bytes.Contains(h["0.weight"], []byte(`"F64"`)) {
			t.Errorf("%s: 0.weight %s, want F64", k, h["0.weight"])
		}
	}
	if _, err := os.Stat(filepath.Join(out, nn.LabelNoiseFile)); err != nil {
		t.Errorf("label noise 0.1 but no %s: %v", nn.LabelNoiseFile, err)
	}
	if _, err := os.Stat(Partial(out)); err == nil {
		t.Error("a finished run left OUT.partial behind")
	}
}

func keys(m map[string]json.RawMessage) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestValidateNamesTheField: each bad value is refused with an *Error whose
// Field is the key at fault.
func TestValidateNamesTheField(t *testing.T) {
	for _, c := range []struct {
		key, value, field string
	}{
		{"data", "cifar", "data"},
		{"data", "idx", "data-dir"},
		{"arch", "784", "arch"},
		{"arch", "784-0-10", "arch"},
		{"act", "swish", "act"},
		{"task", "regress", "task"},
		{"loss", "hinge", "loss"},
		{"reduction", "sum", "reduction"}, // cross_entropy has no reduction over outputs
		{"optim", "lbfgs", "optim"},
		{"init", "zeros", "init"},
		{"epochs", "0", "epochs"},
		{"batch", "-1", "batch"},
		{"limit", "-3", "limit"},
		{"label-noise", "1.5", "label-noise"},
		{"checkpoint-every", "-1", "checkpoint-every"},
		{"dtype", "f16", "dtype"},
	} {
		tc := DefaultTrainConfig()
		if err := tc.Set(c.key, c.value); err != nil {
			t.Fatalf("Set(%s, %s): %v", c.key, c.value, err)
		}
		err := tc.Validate()
		var e *Error
		if !errors.As(err, &e) || e.Field != c.field {
			t.Errorf("%s=%s: Validate() = %v, want an *Error naming %s", c.key, c.value, err, c.field)
		}
	}
	ae := DefaultTrainConfig()
	ae.Task, ae.Arch = TaskAutoencoder, "784-8-10"
	var e *Error
	if err := ae.Validate(); !errors.As(err, &e) || e.Field != "arch" {
		t.Errorf("autoencoder 784-8-10: %v, want an *Error naming arch", err)
	}
	if err := DefaultTrainConfig().Validate(); err != nil {
		t.Errorf("the defaults are refused: %v", err)
	}
}

// TestSetValue: Set parses as the flag package does, Value prints as
// flag.Value.String does, and an unknown key or a bad number is refused.
func TestSetValue(t *testing.T) {
	tc := DefaultTrainConfig()
	for _, c := range []struct{ key, in, out string }{
		{"lr", "1e-3", "0.001"},
		{"epochs", "0x10", "16"},
		{"seed", "18446744073709551615", "18446744073709551615"},
		{"batchnorm", "true", "true"},
		{"data", "fashion-mnist", "fashion-mnist"},
		{"limit", "500", "500"},
		{"data-dir", "/x", "/x"},
		{"dtype", "f64", "f64"},
	} {
		if err := tc.Set(c.key, c.in); err != nil {
			t.Fatalf("Set(%s, %s): %v", c.key, c.in, err)
		}
		if got, _ := tc.Value(c.key); got != c.out {
			t.Errorf("Value(%s) after Set %s = %q, want %q", c.key, c.in, got, c.out)
		}
	}
	if tc.LR != 1e-3 || tc.Epochs != 16 || tc.Seed != math.MaxUint64 || !tc.BatchNorm || tc.Data.Limit != 500 || tc.Data.Dir != "/x" {
		t.Errorf("typed fields not set: %+v", tc)
	}
	var e *Error
	if err := tc.Set("learning-rate", "1"); !errors.Is(err, ErrUnknownKey) || !errors.As(err, &e) || e.Field != "learning-rate" {
		t.Errorf("unknown key: %v", err)
	}
	for _, c := range []struct{ key, in, msg string }{
		{"lr", "fast", "parse error"}, {"epochs", "1.5", "parse error"}, {"seed", "-1", "parse error"},
		{"epochs", "99999999999999999999", "value out of range"}, {"batchnorm", "maybe", "parse error"},
	} {
		if err := tc.Set(c.key, c.in); err == nil || err.Error() != c.msg {
			t.Errorf("Set(%s, %s) = %v, want %q", c.key, c.in, err, c.msg)
		}
	}
	if k := tc.Kind("nesterov"); k != "bool" {
		t.Errorf("Kind(nesterov) = %q", k)
	}
	if k := tc.Kind("init-scale"); k != "number" {
		t.Errorf("Kind(init-scale) = %q", k)
	}
	if k := tc.Kind("nope"); k != "" {
		t.Errorf("Kind(nope) = %q", k)
	}
}

// TestResumeMatchesAndRefuses: an interrupted run resumes to the same θT as
// an uninterrupted one; Resumable refuses a partial run made with another
// configuration.
func TestResumeMatchesAndRefuses(t *testing.T) {
	dir := t.TempDir()
	whole, cut := filepath.Join(dir, "whole"), filepath.Join(dir, "cut")
	if _, err := Train(context.Background(), small(), Options{Out: whole}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Train(ctx, small(), Options{Out: cut, AfterStep: func(s int) {
		if s == 5 {
			cancel()
		}
	}})
	var st *Stopped
	if !errors.As(err, &st) || !st.Saved || st.Step != 5 || !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted: %v", err)
	}
	if !Resumable(Partial(cut), small()) {
		t.Fatal("the interrupted run is not resumable with its own configuration")
	}
	other := small()
	other.LR = 0.2
	if Resumable(Partial(cut), other) {
		t.Error("resumable with another learning rate")
	}
	if err := CheckPartial(cut, false, false); err == nil {
		t.Error("CheckPartial let a new run start over an interrupted one")
	}
	if _, err := Train(context.Background(), small(), Options{Out: cut, Resume: true}); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(whole, FinalFile))
	b, _ := os.ReadFile(filepath.Join(cut, FinalFile))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Error("resumed run ended with other weights than the uninterrupted one")
	}
}

// TestFlagValue: a key registered with fs.Var through FlagValue is parsed
// by the flag set into the configuration, and its default is printed as
// Value prints it.
func TestFlagValue(t *testing.T) {
	tc := DefaultTrainConfig()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Var(tc.FlagValue("lr"), "lr", "")
	if d := fs.Lookup("lr").DefValue; d != "0.1" {
		t.Errorf("default %q, want 0.1", d)
	}
	if err := fs.Parse([]string{"--lr", "2.5e-2"}); err != nil || tc.LR != 0.025 {
		t.Errorf("--lr 2.5e-2: LR %v (%v)", tc.LR, err)
	}
	if err := fs.Parse([]string{"--lr", "x"}); err == nil {
		t.Error("--lr x accepted")
	}
}
