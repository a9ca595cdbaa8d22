// Package importer turns a model trained elsewhere — two torch.save'd
// state_dicts, two safetensors or .npz checkpoints, or two ONNX graphs —
// into a certify run directory (RUN_FORMAT.md), the work of `certify
// import`.
//
// Checkpoints are recognised by their content, not their name: a zip
// archive holding ARCHIVE/data.pkl is a torch.save file (read by package
// torchpt, which runs no code from it), a zip of .npy members an .npz, a
// file named .onnx an ONNX model (package onnx), anything else safetensors.
// A saved dict holding the state_dict under "state_dict", "model" or
// "model_state_dict" is unwrapped, and the key prefixes of nn.DataParallel
// ("module.") and torch.compile ("_orig_mod.") are stripped; import.json
// records each of these steps.
package importer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/internal/atomicfile"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/nn/dataset"
	"github.com/certify-mli/certify/nn/npz"
	"github.com/certify-mli/certify/nn/onnx"
	"github.com/certify-mli/certify/nn/safetensors"
	"github.com/certify-mli/certify/nn/torchpt"
	"github.com/certify-mli/certify/rundir"
)

// RecordFile is the name of the import record written into the run directory.
const RecordFile = "import.json"

// ReadRecord reads dir's import record (RecordFile). A run directory that
// was not imported has none: nil and no error. A record that cannot be read
// or parsed is an error naming the file.
func ReadRecord(dir string) (*Record, error) {
	path := filepath.Join(dir, RecordFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%s: invalid JSON: %w", path, err)
	}
	return &rec, nil
}

// Options are the inputs of Import.
type Options struct {
	// Init and Final are θ0 and θT: .pt/.pth, .safetensors, .npz or .onnx.
	Init, Final string
	// Model is model.json; required unless Init and Final are ONNX.
	Model string
	// Data is the evaluation data: .npz, .safetensors or .pt holding x and
	// y, or an .npy of x with Targets an .npy of y. Dataset instead names a
	// data set certify loads (config.json's data), with Limit examples (0:
	// all). Exactly one of Data and Dataset.
	Data, Targets string
	Dataset       string
	Limit         int
	// Loss overrides the loss ("mse" or "cross_entropy"). For ONNX inputs
	// it defaults to cross_entropy for integer labels and a named data set,
	// mse for float targets.
	Loss string
	// Out is the run directory to create; it must not exist.
	Out string
	// AllowFolded imports ONNX graphs that look BatchNorm-folded.
	AllowFolded bool
	// AllowTrainingBatchNorm imports ONNX graphs with a BatchNormalization
	// exported in training mode (refused otherwise: the export updated
	// their running statistics).
	AllowTrainingBatchNorm bool
}

// Source describes how one checkpoint was read.
type Source struct {
	// File is the checkpoint's absolute path.
	File   string   `json:"file"`
	Format string   `json:"format"` // "torch.save", "safetensors", "npz", "onnx"
	Notes  []string `json:"notes,omitempty"`
	// StrippedPrefixes are the key prefixes removed ("module.", "_orig_mod.").
	StrippedPrefixes []string `json:"stripped_prefixes,omitempty"`
	// Derived lists ONNX initialisers used as weights that are not raw
	// parameters (onnx::… names).
	Derived []string `json:"derived_initializers,omitempty"`
	// Keys maps each state key to the ONNX initialiser it came from.
	Keys map[string]string `json:"keys,omitempty"`
}

// Record is import.json: where the run came from and what was assumed.
type Record struct {
	Format string `json:"format"` // "certify-import/v1"
	Init   Source `json:"init"`
	Final  Source `json:"final"`
	// Model says where model.json came from.
	Model string `json:"model"`
	// Parameterisation is what the line interpolates: "raw parameters" or
	// "folded" (ONNX graphs with BatchNorm folded in, --allow-folded).
	Parameterisation string `json:"parameterisation"`
	Loss             string `json:"loss"`
	LossSource       string `json:"loss_source"`
	Data             string `json:"data"`
	Examples         int    `json:"examples,omitempty"`
	// TrainingModeBatchNorm: a BatchNormalization exported in training mode
	// was accepted (--allow-training-batchnorm); its running statistics are
	// those the export's forward pass left.
	TrainingModeBatchNorm bool     `json:"training_mode_batchnorm_accepted,omitempty"`
	Notes                 []string `json:"notes,omitempty"`
}

// WriteError wraps a failure to write the run directory (an I/O fault, not
// bad input).
type WriteError struct{ Err error }

// Error returns the underlying error's message.
func (e *WriteError) Error() string { return e.Err.Error() }

// Unwrap returns e.Err.
func (e *WriteError) Unwrap() error { return e.Err }

// Import reads the inputs, checks them against each other (architecture,
// keys, shapes, data), writes the run directory under a temporary name,
// loads it back with rundir.Read, and renames it to opt.Out. Every input
// error names the file and the key or node at fault; a failure to write is
// a *WriteError.
func Import(opt Options) (*Record, error) {
	if opt.Init == "" || opt.Final == "" || opt.Out == "" {
		return nil, errors.New("import: --init, --final and --out are required")
	}
	if (opt.Data == "") == (opt.Dataset == "") {
		return nil, errors.New("import: give exactly one of --data FILE and --dataset NAME")
	}
	if opt.Targets != "" && !strings.EqualFold(filepath.Ext(opt.Data), ".npy") {
		return nil, errors.New("import: --targets goes with --data X.npy")
	}
	if opt.Limit < 0 {
		return nil, fmt.Errorf("import: --limit %d: want a positive number of examples (0: all)", opt.Limit)
	}
	if opt.Loss != "" && opt.Loss != "mse" && opt.Loss != "cross_entropy" {
		return nil, fmt.Errorf("import: --loss: want mse or cross_entropy, found %q", opt.Loss)
	}
	if _, err := os.Lstat(opt.Out); err == nil {
		return nil, fmt.Errorf("import: %s exists; remove it or choose another --out", opt.Out)
	}
	rec := &Record{Format: "certify-import/v1", Parameterisation: "raw parameters"}
	// import.json records absolute paths: a relative one means nothing once
	// the run directory is read from elsewhere.
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}

	isONNX := func(p string) bool { return strings.EqualFold(filepath.Ext(p), ".onnx") }
	var spec *nn.Spec
	var theta0, thetaT nn.State
	dtype := "F32"
	switch {
	case isONNX(opt.Init) != isONNX(opt.Final):
		return nil, errors.New("import: --init and --final must both be ONNX files or both be state_dicts (.pt, .safetensors, .npz)")
	case isONNX(opt.Init):
		if opt.Model != "" {
			return nil, fmt.Errorf("import: --model %s: the ONNX graph is the architecture; give --loss for the loss", opt.Model)
		}
		var ms [2]*onnx.Model
		for k, p := range []string{opt.Init, opt.Final} {
			m, err := onnx.Read(p, onnx.Options{AllowFolded: opt.AllowFolded, AllowTrainingBatchNorm: opt.AllowTrainingBatchNorm})
			if err != nil {
				return nil, err
			}
			ms[k] = m
			if m.TrainingBatchNorm {
				rec.TrainingModeBatchNorm = true
			}
			src := &rec.Init
			if k == 1 {
				src = &rec.Final
			}
			*src = Source{File: p, Format: "onnx", Notes: m.Notes, Derived: m.Derived, Keys: m.Source}
			for _, n := range m.Notes {
				if strings.HasPrefix(n, "FOLDED") {
					rec.Parameterisation = "folded: BatchNorm folded into the preceding layer by the exporter; Δ is that of the folded graphs, not of the trained parameters"
				}
			}
		}
		a, _ := json.Marshal(ms[0].Spec)
		b, _ := json.Marshal(ms[1].Spec)
		if string(a) != string(b) {
			return nil, fmt.Errorf("import: %s and %s: the two graphs describe different architectures:\n  %s\n  %s", opt.Init, opt.Final, a, b)
		}
		spec, theta0, thetaT = ms[1].Spec, ms[0].State, ms[1].State
		dtype = "F64"
		rec.Model = "from the ONNX graph of " + abs(opt.Final)
	default:
		if opt.Model == "" {
			return nil, errors.New("import: --model model.json is required for state_dict checkpoints (only ONNX files carry their architecture)")
		}
		var err error
		if spec, err = nn.ReadSpec(opt.Model); err != nil {
			// a shape-chain error may start at an earlier layer than the
			// one it surfaces at: the checkpoints' shapes say which
			for _, p := range []string{opt.Init, opt.Final} {
				if s, _, _, rerr := ReadCheckpoint(p); rerr == nil {
					if e, ok := nn.BlameEarlierLayer(err, p, s); ok {
						return nil, e
					}
				}
			}
			return nil, err
		}
		rec.Model = abs(opt.Model)
		for k, p := range []string{opt.Init, opt.Final} {
			s, src, dt, err := ReadCheckpoint(p)
			if err != nil {
				return nil, err
			}
			if dt == "F64" {
				dtype = "F64"
			}
			if k == 0 {
				theta0, rec.Init = s, src
			} else {
				thetaT, rec.Final = s, src
			}
		}
	}

	// Data and loss.
	var x *mat.Dense
	var xShape []int // as in the file, checked against the model's input_shape below
	var targets nn.Targets
	var cfg *rundir.RunConfig
	lossSource := ""
	if opt.Data != "" {
		var err error
		if x, xShape, targets, err = readData(opt.Data, opt.Targets, opt.Limit); err != nil {
			return nil, err
		}
		n, _ := x.Dims()
		rec.Data, rec.Examples = abs(opt.Data), n
		if opt.Targets != "" {
			rec.Data += " (x), " + abs(opt.Targets) + " (y)"
		}
		if targets.Labels != nil {
			lossSource = "cross_entropy, as the data hold integer labels"
		} else {
			lossSource = "mse, as the data hold float targets"
		}
	} else {
		cfg = &rundir.RunConfig{Data: dataset.Spec{Name: opt.Dataset, Split: "train", Limit: opt.Limit}}
		rec.Data = fmt.Sprintf("data set %q (config.json)", opt.Dataset)
		lossSource = "cross_entropy, as the named data set holds class labels"
	}
	switch {
	case opt.Loss != "":
		if spec.Loss != "" && spec.Loss != opt.Loss {
			// said, not silent (developers' guide): the flag wins, as the
			// user asked, and the note names what it replaced
			rec.Notes = appendOnce(rec.Notes, fmt.Sprintf("--loss %s replaces the loss %q of %s", opt.Loss, spec.Loss, opt.Model))
		}
		spec.Loss, rec.LossSource = opt.Loss, "--loss"
	case spec.Loss != "":
		rec.LossSource = abs(opt.Model)
	default:
		spec.Loss = strings.SplitN(lossSource, ",", 2)[0]
		rec.LossSource = "inferred: " + lossSource + " (--loss to change)"
	}
	rec.Loss = spec.Loss
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("import: model: %w", err)
	}
	if x != nil {
		if _, d := x.Dims(); d != spec.InputSize() {
			return nil, fmt.Errorf("%s: x: %d features per example, the model's input_shape %v needs %d", opt.Data, d, spec.InputShape, spec.InputSize())
		}
		if err := nn.CheckInputShape(opt.Data, "x", xShape, spec.InputShape); err != nil {
			return nil, err // same size in another layout (channels-last images)
		}
	}
	model, err := nn.Build(spec)
	if err != nil {
		return nil, err
	}
	if x != nil {
		// Checked here so the error names the user's file, not the run
		// directory being written.
		dataName := opt.Data
		if opt.Targets != "" {
			dataName = opt.Targets
		}
		if err := nn.CheckTargets(targets, model.Layers[len(model.Layers)-1].OutSize(), spec.Loss, dataName); err != nil {
			return nil, err
		}
	}
	for _, c := range []struct {
		s    nn.State
		file string
	}{{theta0, opt.Init}, {thetaT, opt.Final}} {
		if err := checkState(model, c.s, c.file); err != nil {
			return nil, err
		}
	}
	rec.Init.File, rec.Final.File = abs(opt.Init), abs(opt.Final)
	for _, src := range []Source{rec.Init, rec.Final} {
		for _, n := range src.Notes {
			rec.Notes = appendOnce(rec.Notes, n)
		}
	}

	// Write under a temporary name next to Out, check, rename.
	parent := filepath.Dir(filepath.Clean(opt.Out))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, &WriteError{err}
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(opt.Out)+".partial-")
	if err != nil {
		return nil, &WriteError{err}
	}
	tmp = filepath.Clean(tmp) // as rundir.Read's errors spell it, for the replacement below
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, &WriteError{err}
	}
	write := func(err error) error {
		if err != nil {
			return &WriteError{err}
		}
		return nil
	}
	if err := write(spec.Write(filepath.Join(tmp, "model.json"))); err != nil {
		return nil, err
	}
	if err := write(nn.WriteState(filepath.Join(tmp, "init.safetensors"), theta0, dtype)); err != nil {
		return nil, err
	}
	if err := write(nn.WriteState(filepath.Join(tmp, "final.safetensors"), thetaT, dtype)); err != nil {
		return nil, err
	}
	if x != nil {
		if err := write(rundir.WriteDataFrom(filepath.Join(tmp, "data.safetensors"), x, targets, dataOrigin(opt))); err != nil {
			return nil, err
		}
	} else {
		b, _ := json.MarshalIndent(cfg, "", "  ")
		if err := write(atomicfile.Write(filepath.Join(tmp, "config.json"), append(b, '\n'))); err != nil {
			return nil, err
		}
	}
	b, _ := json.MarshalIndent(rec, "", "  ")
	if err := write(atomicfile.Write(filepath.Join(tmp, RecordFile), append(b, '\n'))); err != nil {
		return nil, err
	}
	// The run must load as `certify --run` will load it.
	if _, err := rundir.Read(tmp, 0); err != nil {
		return nil, fmt.Errorf("import: the run directory would not load: %s", strings.ReplaceAll(err.Error(), tmp, opt.Out))
	}
	if _, err := os.Lstat(opt.Out); err == nil {
		return nil, fmt.Errorf("import: %s appeared while importing; not replaced", opt.Out)
	}
	if err := os.Rename(tmp, opt.Out); err != nil {
		return nil, &WriteError{err}
	}
	done = true
	return rec, nil
}

func appendOnce(notes []string, s string) []string {
	for _, n := range notes {
		if n == s {
			return notes
		}
	}
	return append(notes, s)
}

// checkState checks s against the model, naming the file, and, when keys
// are missing, the keys that were found.
func checkState(m *nn.Model, s nn.State, file string) error {
	err := m.Check(s, file)
	switch {
	case err == nil:
		return nil
	case strings.Contains(err.Error(), "; found"): // Check named the keys found
		return fmt.Errorf("%w (wrong architecture for these weights?)", err)
	case strings.Contains(err.Error(), "missing") || strings.Contains(err.Error(), "expected shape") || strings.Contains(err.Error(), "unexpected tensor"):
		return fmt.Errorf("%w (wrong architecture for these weights? the file holds %s)", err, keyList(s))
	}
	return err
}

func keyList(s nn.State) string {
	ks := s.Names()
	sort.Strings(ks)
	parts := make([]string, 0, len(ks))
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s %v", k, s[k].Shape))
	}
	if len(parts) > 12 {
		parts = append(parts[:12], fmt.Sprintf("… (%d tensors)", len(ks)))
	}
	return strings.Join(parts, ", ")
}

// sniff returns the first bytes of path.
func sniff(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 8)
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:n], nil
}

// readTensors reads the named tensors of a torch.save file, an .npz or a
// safetensors file (by content), unwrapping a wrapped state_dict and
// stripping wrapper prefixes, with notes saying so.
func readTensors(path string) ([]safetensors.Tensor, Source, error) {
	src := Source{File: path}
	head, err := sniff(path)
	if err != nil {
		return nil, src, err
	}
	var ts []safetensors.Tensor
	switch torchpt.Magic(head) {
	case "zip":
		v, err := torchpt.Read(path)
		if errors.Is(err, torchpt.ErrFormat) && strings.Contains(err.Error(), "npz") {
			src.Format = "npz"
			if ts, err = npz.Read(path); err != nil {
				return nil, src, err
			}
			break
		}
		if err != nil {
			return nil, src, err
		}
		src.Format = "torch.save"
		var notes []string
		if ts, notes, err = torchpt.StateDict(v); err != nil {
			return nil, src, fmt.Errorf("%s: %w", path, err)
		}
		src.Notes = append(src.Notes, notes...)
	case "pickle":
		_, err := torchpt.Read(path) // the legacy-format message
		return nil, src, err
	default:
		src.Format = "safetensors"
		if ts, _, err = safetensors.Read(path); err != nil {
			return nil, src, err
		}
	}
	if p := torchpt.StripPrefixes(ts); len(p) > 0 {
		src.StrippedPrefixes = p
		src.Notes = append(src.Notes, fmt.Sprintf("key prefix %s stripped (nn.DataParallel / torch.compile wrappers)", strings.Join(quoteAll(p), " then ")))
	}
	return ts, src, nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// ReadCheckpoint reads θ from a torch.save file, safetensors or .npz (see
// the package doc), returning the state, how it was read, and "F64" when
// any floating tensor was float64 ("F32" otherwise: every other dtype is
// exact in float32).
func ReadCheckpoint(path string) (nn.State, Source, string, error) {
	ts, src, err := readTensors(path)
	if err != nil {
		return nil, src, "", err
	}
	dtype := "F32"
	for _, t := range ts {
		if t.DType == "F64" {
			dtype = "F64"
		}
	}
	s, err := nn.StateFromTensors(ts, path)
	return s, src, dtype, err
}

// dataOrigin is the source recorded in the imported data.safetensors
// (rundir.DataSourceKey): the data file's name, with the targets' file.
func dataOrigin(opt Options) string {
	if opt.Targets != "" {
		return fmt.Sprintf("data files %s and %s", filepath.Base(opt.Data), filepath.Base(opt.Targets))
	}
	return "data file " + filepath.Base(opt.Data)
}

// readData reads x and y from one file, or x and y from two .npy files,
// and returns x's shape as stored too.
func readData(path, targets string, limit int) (*mat.Dense, []int, nn.Targets, error) {
	var x, y *safetensors.Tensor
	if strings.EqualFold(filepath.Ext(path), ".npy") {
		if targets == "" {
			return nil, nil, nn.Targets{}, fmt.Errorf("import: --data %s is one array (x): give the labels or targets with --targets Y.npy", path)
		}
		xt, err := npz.ReadNPY(path, "x")
		if err != nil {
			return nil, nil, nn.Targets{}, err
		}
		yt, err := npz.ReadNPY(targets, "y")
		if err != nil {
			return nil, nil, nn.Targets{}, err
		}
		x, y = &xt, &yt
	} else {
		ts, _, err := readTensors(path)
		if err != nil {
			return nil, nil, nn.Targets{}, err
		}
		for i := range ts {
			switch ts[i].Name {
			case "x":
				x = &ts[i]
			case "y":
				y = &ts[i]
			}
		}
		if x == nil || y == nil {
			var names []string
			for _, t := range ts {
				names = append(names, t.Name)
			}
			return nil, nil, nn.Targets{}, fmt.Errorf("%s: want tensors x and y, found %s", path, strings.Join(names, ", "))
		}
	}
	if len(x.Shape) < 2 {
		return nil, nil, nn.Targets{}, fmt.Errorf("%s: x: expected [N, features…], found shape %v", path, x.Shape)
	}
	xm, t, err := nn.DataFromTensors(x, y, path, "--limit", limit)
	return xm, x.Shape, t, err
}
