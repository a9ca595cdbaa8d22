package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/functionspace"
)

// checkpointDirName is the directory, next to the report (the run
// directory, DIR/variants/NAME/ or --out), that holds the certificate's and
// the accuracy bounds' checkpoints while an analysis runs
// (certify.CertificateCheckpoint, certify.AccuracyCheckpoint). It is
// removed once the report is written. RUN_FORMAT.md gives the name to
// nothing else.
const checkpointDirName = "certify-checkpoint"

// runInputFiles are the files of a run directory rundir.Read may read; a
// checkpoint's key digests those present (and --from's file).
var runInputFiles = []string{"model.json", "init.safetensors", "init.npz", "final.safetensors", "final.npz", "config.json",
	"data.safetensors", "data.npz", "label_noise.safetensors", "import.json"}

// checkpointKey is the identity of an analysis's checkpoints: SHA-256 of
// the program's version, the run's input files (SHA-256 each), what the
// path read (certify.PathDigest: model, θ0, δ, examples, targets, chunks,
// precision, BatchNorm policy), the line (variant flags) and every option
// that changes a result (opt with its defaults, the loading flags). The
// searches add their own options (certify.Checkpoint.Key).
func checkpointKey(af analyzeFlags, p *functionspace.Path, opt certify.Options) (string, map[string]string, error) {
	version, err := programVersion()
	if err != nil {
		return "", nil, err
	}
	files := map[string]string{} // by name in the run directory (the key does not depend on how it is reached)
	paths := map[string]string{}
	for _, f := range runInputFiles {
		paths[f] = filepath.Join(af.run, f)
	}
	if from := af.variant.from; from != "" && from != "init" {
		paths["--from "+from] = from
		paths["--from run/"+from] = filepath.Join(af.run, from)
	}
	for name, path := range paths {
		s, err := fileSHA256(path)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		files[name] = s
	}
	o, err := json.Marshal(opt)
	if err != nil {
		return "", nil, err
	}
	key := struct {
		Version   string            `json:"version"`
		Files     map[string]string `json:"files"`
		Path      string            `json:"path"`
		Options   json.RawMessage   `json:"options"`
		Loading   string            `json:"loading"`
		Variation string            `json:"variant"`
	}{version, files, certify.PathDigest(p), o,
		fmt.Sprintf("examples=%d chunk=%d precision=%s bn=%s bn-reference=%d", af.examples.n, af.chunk, af.prec, af.bn, af.bnRef),
		fmt.Sprintf("interpolate=%s layer=%d hold=%s from=%s labels=%s", af.variant.interpolate, af.variant.layer, af.variant.hold, af.variant.from, af.variant.labels)}
	b, err := json.Marshal(key)
	if err != nil {
		return "", nil, err
	}
	h := sha256.Sum256(b)
	sum := func(s string) string { x := sha256.Sum256([]byte(s)); return hex.EncodeToString(x[:]) }
	parts := map[string]string{"program version": sum(version), "path read (model, θ0, δ, examples)": key.Path,
		"options": sum(string(o)), "loading flags": sum(key.Loading), "line": sum(key.Variation)}
	for name, s := range files {
		parts[name] = s
	}
	return hex.EncodeToString(h[:]), parts, nil
}

// programVersion identifies the binary: its VCS revision when it was built
// from a clean checkout, else the SHA-256 of the executable (a modified
// checkout's revision does not say which changes it had).
func programVersion() (string, error) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, modified := "", true
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if rev != "" && !modified {
			return "vcs " + rev, nil
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("checkpoint key: the executable: %w", err)
	}
	s, err := fileSHA256(exe)
	if err != nil {
		return "", fmt.Errorf("checkpoint key: the executable: %w", err)
	}
	return "executable " + s, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if st.IsDir() {
		return "", os.ErrNotExist
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// analysisCheckpoint returns the checkpoint settings of an analysis whose
// report goes to outDir (nil without a certificate).
func analysisCheckpoint(af analyzeFlags, p *functionspace.Path, opt certify.Options, outDir string) (*certify.Checkpoint, error) {
	if !opt.Certificate || outDir == "" {
		return nil, nil
	}
	key, parts, err := checkpointKey(af, p, opt)
	if err != nil {
		return nil, err
	}
	return &certify.Checkpoint{Dir: filepath.Join(outDir, checkpointDirName), Key: key, KeyParts: parts, Every: af.checkpointEvery, Fresh: af.fresh,
		Notify: func(msg string) { fmt.Fprintln(stderr, msg) }}, nil
}

// savedCheckpoint reports whether this run saved a state in ck, or resumed
// from one under its key (certify.Checkpoint.Resumable): the same command
// then resumes. A stale file under another key does not count.
func savedCheckpoint(ck *certify.Checkpoint) bool {
	return ck.Resumable()
}
