package rundir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/internal/jsondup"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/nn/dataset"
	"github.com/certify-mli/certify/nn/npz"
	"github.com/certify-mli/certify/nn/safetensors"
)

// RunConfig is a run directory's config.json: how the run was trained
// (RUN_FORMAT.md). Its keys are the flag names of `certify train`, so a sweep
// axis names a flag and a config key at once. Data names the training set.
// A field's `flag` tag is its flag's and grid key's name
// (rundir.TrainConfig.Set); results filled in after training have none.
type RunConfig struct {
	Data dataset.Spec `json:"data"`
	// Task is "classify" (targets are the dataset's labels; absent means
	// this) or "autoencoder" (the target of every example is its input,
	// THEORY.md §11).
	Task string `json:"task,omitempty" flag:"task"`
	// Reduction is the mse loss's reduction over one example's outputs
	// (nn.Spec.LossReduction): "mean" or "sum".
	Reduction       string  `json:"reduction,omitempty" flag:"reduction"`
	Arch            string  `json:"arch,omitempty" flag:"arch"`
	Act             string  `json:"act,omitempty" flag:"act"`
	BatchNorm       bool    `json:"batchnorm,omitempty" flag:"batchnorm"` // batchnorm1d after every hidden linear layer
	Loss            string  `json:"loss,omitempty" flag:"loss"`
	Optim           string  `json:"optim,omitempty" flag:"optim"`
	LR              float64 `json:"lr,omitempty" flag:"lr"`
	Momentum        float64 `json:"momentum,omitempty" flag:"momentum"`
	Nesterov        bool    `json:"nesterov,omitempty" flag:"nesterov"`
	WeightDecay     float64 `json:"weight_decay,omitempty" flag:"weight-decay"`
	Epochs          int     `json:"epochs,omitempty" flag:"epochs"`
	Batch           int     `json:"batch,omitempty" flag:"batch"`
	Seed            uint64  `json:"seed" flag:"seed"`
	Init            string  `json:"init,omitempty" flag:"init"`
	InitScale       float64 `json:"init_scale,omitempty" flag:"init-scale"`
	CheckpointEvery int     `json:"checkpoint_every,omitempty" flag:"checkpoint-every"`
	// Model is the model.json trained instead of the MLP of Arch (any
	// architecture the format describes); empty means Arch.
	Model string `json:"model,omitempty" flag:"model"`
	// Milestones and LRGamma are the MultiStepLR step schedule (epochs at
	// which the learning rate is multiplied by LRGamma); none means a
	// constant rate.
	Milestones string  `json:"milestones,omitempty" flag:"milestones"`
	LRGamma    float64 `json:"lr_gamma,omitempty" flag:"lr-gamma"`
	// ZeroInitResidual sets the last BatchNorm γ of every residual body to
	// 0 at initialisation (ZeroInitResidual).
	ZeroInitResidual bool `json:"zero_init_residual,omitempty" flag:"zero-init-residual"`
	// LabelNoise is the fraction of training labels replaced by another
	// class (CorruptLabels; the record is nn.LabelNoiseFile).
	LabelNoise float64 `json:"label_noise,omitempty" flag:"label-noise"`
	// InitAnchor is λ of the penalty (λ/2)‖θ − θ0‖² (Anchored): > 0 keeps
	// θT near θ0, < 0 pushes it away.
	InitAnchor float64 `json:"init_anchor,omitempty" flag:"init-anchor"`
	// SpawnFrom, SpawnStep and SpawnSeed record a spawned run (certify
	// train --spawn-from RUN --at-step K --seed S; TrainSpawned): RUN's
	// configuration, trained from RUN's θ0 with RUN's Seed to step K, then
	// with each epoch's data order drawn from SpawnSeed. Absent otherwise.
	// They are set by --spawn-from, not as configuration keys.
	SpawnFrom string  `json:"spawn_from,omitempty"`
	SpawnStep *int    `json:"spawn_step,omitempty"`
	SpawnSeed *uint64 `json:"spawn_seed,omitempty"`
	// Results filled in after training.
	TrainLoss     float64 `json:"train_loss,omitempty"`
	TrainAccuracy float64 `json:"train_accuracy,omitempty"`
	TestLoss      float64 `json:"test_loss,omitempty"`
	TestAccuracy  float64 `json:"test_accuracy,omitempty"`
	Steps         int     `json:"steps,omitempty"`
	// LabelNoiseCount is how many training labels were corrupted.
	LabelNoiseCount int     `json:"label_noise_count,omitempty"`
	Seconds         float64 `json:"seconds,omitempty"`
}

// Tasks of RunConfig.Task.
const (
	TaskClassify    = "classify"
	TaskAutoencoder = "autoencoder"
)

// Run is a loaded run directory (RUN_FORMAT.md): architecture, θ0, θT and
// the evaluation data.
type Run struct {
	Dir            string
	Spec           *nn.Spec
	Model          *nn.Model
	Theta0, ThetaT nn.State
	Config         *RunConfig // nil when the directory has no config.json
	// X [N, InputSize] and Targets are the evaluation data; DataSource says
	// where they came from ("data.safetensors" or the dataset's description).
	X          *mat.Dense
	Targets    nn.Targets
	DataSource string
	// DataOrigin is where the examples came from, in words, for a copy's
	// metadata (WriteData's source): "mnist train split, first 5000
	// examples" for a dataset, the source recorded in a data file, or ""
	// when a data file records none.
	DataOrigin string
	// CleanLabels [N] is set when the run was trained with label noise
	// (nn.LabelNoiseFile) and its evaluation data came from config.json: then
	// Targets holds the labels the run was trained on and CleanLabels the
	// dataset's own. Nil otherwise.
	CleanLabels []int
	// Notes say what loading changed, for the report's notes: e.g. a
	// wrapper's key prefix ("module.", "_orig_mod.") stripped from a
	// checkpoint (RUN_FORMAT.md "Key prefixes").
	Notes []string
}

// DefaultExamples is how many examples of a named dataset are evaluated when
// the run directory has no data.safetensors and no count is asked for.
const DefaultExamples = 5000

// AllExamples, passed to Read, evaluates every example the run has: all
// of data.safetensors, or all the training examples config.json's run was
// trained on (its data.limit, or the whole split).
const AllExamples = -1

// Read reads and validates the run directory dir. examples > 0 keeps the
// first examples of the evaluation data (a deterministic subset); 0 means all
// of data.safetensors, or the first DefaultExamples of the training set named
// by config.json; AllExamples every example the run has. Every error names the file and the field: a missing file,
// a shape mismatch, an unknown layer type, non-finite weights, labels out of
// range, empty data.
func Read(dir string, examples int) (*Run, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("run directory %s: not a directory", dir)
	}
	r := &Run{Dir: dir}
	if err := ForeignRun(dir); err != nil {
		return nil, err
	}
	if r.Spec, err = nn.ReadSpec(filepath.Join(dir, "model.json")); err != nil {
		return nil, blameEarlierLayer(dir, err)
	}
	if r.Model, err = nn.Build(r.Spec); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		name string
		dst  *nn.State
	}{{"init.safetensors", &r.Theta0}, {"final.safetensors", &r.ThetaT}} {
		path := filepath.Join(dir, c.name)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			// RUN_FORMAT.md: .npz checkpoints with the same keys are accepted too.
			alt := strings.TrimSuffix(path, ".safetensors") + ".npz"
			if _, err := os.Stat(alt); err == nil {
				path = alt
			} else if err := foreignCheckpoint(dir, c.name); err != nil {
				return nil, err
			}
		}
		s, err := nn.ReadState(path)
		if err != nil {
			return nil, err
		}
		if p := s.StripWrapperPrefixes(); len(p) > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("%s: key prefix %s stripped (nn.DataParallel / torch.compile wrappers; RUN_FORMAT.md)", path, strings.Join(p, " then ")))
		}
		if err := r.Model.Check(s, path); err != nil {
			return nil, err
		}
		if err := nn.CheckBuffers(s, path); err != nil {
			return nil, err
		}
		*c.dst = s
	}
	cfgPath := filepath.Join(dir, "config.json")
	if b, err := os.ReadFile(cfgPath); err == nil {
		var c RunConfig
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("%s: invalid JSON: %w", cfgPath, err)
		}
		if err := jsondup.Check(b); err != nil {
			return nil, fmt.Errorf("%s: %w", cfgPath, err)
		}
		r.Config = &c
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	dataPath := filepath.Join(dir, "data.safetensors")
	if _, err := os.Stat(dataPath); errors.Is(err, fs.ErrNotExist) {
		// RUN_FORMAT.md: data.npz with the same keys is accepted too.
		if _, err := os.Stat(filepath.Join(dir, "data.npz")); err == nil {
			dataPath = filepath.Join(dir, "data.npz")
		}
	}
	if _, err := os.Stat(dataPath); err == nil {
		if err := r.readData(dataPath, examples); err != nil {
			return nil, err
		}
	} else if r.Config != nil && r.Config.Data.Name != "" {
		spec := r.Config.Data
		spec.Split = "train"
		spec.Limit = examples
		if examples == AllExamples {
			spec.Limit = r.Config.Data.Limit
		}
		var set *dataset.Set
		var err error
		if examples == 0 {
			// The default: the first DefaultExamples of the examples the run
			// was trained on (config.json's limit, when smaller).
			spec.Limit = DefaultExamples
			if l := r.Config.Data.Limit; l > 0 && l < spec.Limit {
				spec.Limit = l
			}
			set, err = loadLimited(spec)
		} else {
			set, err = dataset.Load(spec)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: data: %w", cfgPath, err)
		}
		if set.D != r.Spec.InputSize() {
			return nil, fmt.Errorf("%s: data: examples have %d features, model.json input_shape needs %d", cfgPath, set.D, r.Spec.InputSize())
		}
		r.X = mat.NewDense(set.N, set.D, set.X)
		r.Targets = nn.Targets{Labels: set.Y}
		r.DataSource = fmt.Sprintf("%s %s (first %d examples)", set.Name, set.Split, set.N)
		r.DataOrigin = fmt.Sprintf("%s %s split, first %d examples", set.Name, set.Split, set.N)
		switch r.Config.Task {
		case "", TaskClassify:
		case TaskAutoencoder:
			// The target of every example is its input (THEORY.md §11).
			r.Targets = nn.Targets{Values: mat.DenseCopyOf(r.X)}
			r.DataSource += ", targets = inputs (autoencoder)"
			r.DataOrigin += ", targets = inputs"
		default:
			return nil, fmt.Errorf("%s: task: want %q or %q, found %q", cfgPath, TaskClassify, TaskAutoencoder, r.Config.Task)
		}
		// A run trained on corrupted labels is evaluated on the labels it
		// was trained on (its training loss); data.safetensors, written by
		// `certify export` from this, already holds them.
		if err := r.applyLabelNoise(); err != nil {
			return nil, err
		}
	} else {
		return nil, fmt.Errorf("run directory %s: no evaluation data: needs data.safetensors (or data.npz), or config.json naming a dataset in \"data\"", dir)
	}
	if err := nn.CheckTargets(r.Targets, r.Model.OutSize(), r.Spec.Loss, r.DataSource); err != nil {
		return nil, err
	}
	return r, nil
}

// applyLabelNoise replaces the labels recorded in nn.LabelNoiseFile, keeping
// the clean ones in CleanLabels.
func (r *Run) applyLabelNoise() error {
	path := filepath.Join(r.Dir, nn.LabelNoiseFile)
	ln, err := nn.ReadLabelNoise(path)
	if err != nil || ln == nil || r.Targets.Labels == nil {
		return err
	}
	clean := append([]int(nil), r.Targets.Labels...)
	n, err := ln.Apply(r.Targets.Labels)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	r.CleanLabels = clean
	r.DataSource += fmt.Sprintf(", %d noisy labels", n)
	r.DataOrigin += fmt.Sprintf(", %d noisy labels", n)
	return nil
}

// loadLimited loads a dataset, clamping the limit to the split's size.
func loadLimited(spec dataset.Spec) (*dataset.Set, error) {
	set, err := dataset.Load(spec)
	if err != nil && spec.Limit > 0 {
		// A limit above the split's size: take the whole split.
		all := spec
		all.Limit = 0
		if s2, err2 := dataset.Load(all); err2 == nil && s2.N < spec.Limit {
			return s2, nil
		}
	}
	return set, err
}

// readData reads x [N, …] and y ([N] integer labels or [N, K] float targets)
// from data.safetensors.
func (r *Run) readData(path string, examples int) error {
	var ts []safetensors.Tensor
	var meta map[string]string
	var err error
	if strings.EqualFold(filepath.Ext(path), ".npz") {
		ts, err = npz.Read(path)
	} else {
		ts, meta, err = safetensors.Read(path)
	}
	if err != nil {
		return err
	}
	var x, y *safetensors.Tensor
	for i := range ts {
		switch ts[i].Name {
		case "x":
			x = &ts[i]
		case "y":
			y = &ts[i]
		}
	}
	if x == nil {
		return fmt.Errorf("%s: x: missing", path)
	}
	if y == nil {
		return fmt.Errorf("%s: y: missing", path)
	}
	if len(x.Shape) >= 1 && numel(x.Shape[1:]) != r.Spec.InputSize() {
		return fmt.Errorf("%s: x: expected %d features per example (model.json input_shape %s), found shape %s", path, r.Spec.InputSize(), nn.ShapeString(r.Spec.InputShape), nn.ShapeString(x.Shape))
	}
	if err := nn.CheckInputShape(path, "x", x.Shape, r.Spec.InputShape); err != nil {
		return err // same size in another layout (channels-last images)
	}
	if r.X, r.Targets, err = nn.DataFromTensors(x, y, path, "--examples", examples); err != nil {
		return err
	}
	n, _ := r.X.Dims()
	var notes []string
	if src := meta[DataSourceKey]; src != "" {
		notes = append(notes, src)
		r.DataOrigin = src
	}
	if n < x.Shape[0] {
		notes = append(notes, fmt.Sprintf("first %d examples", n))
		if r.DataOrigin != "" {
			r.DataOrigin += fmt.Sprintf("; first %d examples", n)
		}
	}
	r.DataSource = path
	if len(notes) > 0 {
		r.DataSource = fmt.Sprintf("%s (%s)", path, strings.Join(notes, "; "))
	}
	return nil
}

// DataSourceKey is the safetensors metadata key under which WriteData
// records where the examples came from ("mnist train, first 5000
// examples", "heldout.npz"): readData shows it in DataSource, so reports
// and figure titles name the data set and split rather than the file.
const DataSourceKey = "certify_data_source"

// WriteData writes evaluation data as data.safetensors (x as F64 [N, D], y
// as I64 labels [N] or F64 targets [N, K]), atomically, recording no
// source (WriteDataFrom).
func WriteData(path string, x *mat.Dense, t nn.Targets) error {
	return WriteDataFrom(path, x, t, "")
}

// WriteDataFrom is WriteData with source (where the examples came from;
// "" for none) as metadata under DataSourceKey.
func WriteDataFrom(path string, x *mat.Dense, t nn.Targets, source string) error {
	n, d := x.Dims()
	xs := make([]float64, 0, n*d)
	for i := 0; i < n; i++ {
		xs = append(xs, x.RawRowView(i)...)
	}
	ts := []safetensors.Tensor{{Name: "x", DType: "F64", Shape: []int{n, d}, Float: xs}}
	if t.Values != nil {
		_, k := t.Values.Dims()
		ys := make([]float64, 0, n*k)
		for i := 0; i < n; i++ {
			ys = append(ys, t.Values.RawRowView(i)...)
		}
		ts = append(ts, safetensors.Tensor{Name: "y", DType: "F64", Shape: []int{n, k}, Float: ys})
	} else {
		ys := make([]int64, n)
		for i, l := range t.Labels {
			ys[i] = int64(l)
		}
		ts = append(ts, safetensors.Tensor{Name: "y", DType: "I64", Shape: []int{n}, Int: ys})
	}
	var meta map[string]string
	if source != "" {
		meta = map[string]string{DataSourceKey: source}
	}
	return safetensors.Write(path, ts, "F64", meta)
}

// ForeignRun is the error for a directory without model.json that holds
// PyTorch or ONNX files (a training script's output folder, not yet a run
// directory): it names them and points to certify import; nil otherwise
// (a missing model.json is then reported by nn.ReadSpec).
func ForeignRun(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "model.json")); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var found []string
	for _, ext := range []string{".pt", ".pth", ".onnx", ".bin", ".ckpt"} {
		m, _ := filepath.Glob(filepath.Join(dir, "*"+ext))
		found = append(found, m...)
	}
	if len(found) == 0 {
		return nil
	}
	sort.Strings(found)
	return fmt.Errorf("%s: missing, but %s %s there: %s is not yet a run directory (model.json, init and final .safetensors or .npz); %s", filepath.Join(dir, "model.json"), strings.Join(found, ", "), map[bool]string{true: "is", false: "are"}[len(found) == 1], dir, nn.ImportHint)
}

// foreignCheckpoint is the error for a run directory lacking NAME (e.g.
// init.safetensors) but holding a PyTorch or ONNX file in its place, or nil.
func foreignCheckpoint(dir, name string) error {
	base := strings.TrimSuffix(name, ".safetensors")
	for _, ext := range []string{".pt", ".pth", ".onnx", ".bin", ".ckpt"} {
		p := filepath.Join(dir, base+ext)
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s: missing, but %s is there: certify --run reads safetensors or .npz checkpoints; %s", filepath.Join(dir, name), p, nn.ImportHint)
		}
	}
	return nil
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// blameEarlierLayer adds to model.json's shape-chain error err the first
// earlier layer whose declared sizes disagree with the run's checkpoints
// (nn.BlameEarlierLayer, on init then final); err is returned unchanged
// when no checkpoint can be read or none disagrees.
func blameEarlierLayer(dir string, err error) error {
	for _, name := range []string{"init.safetensors", "init.npz", "final.safetensors", "final.npz"} {
		path := filepath.Join(dir, name)
		s, rerr := nn.ReadState(path)
		if rerr != nil {
			continue
		}
		s.StripWrapperPrefixes()
		if e, ok := nn.BlameEarlierLayer(err, path, s); ok {
			return e
		}
	}
	return err
}
