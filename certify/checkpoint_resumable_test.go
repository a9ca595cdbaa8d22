package certify

import (
	"context"
	"encoding/gob"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckpointResumable: a file saved under another key is refused (a
// *CheckpointError naming it: not resumed, and not replaced) and leaves
// Resumable false; Resumable is true once this run saved its own state or
// resumed from a file under its key.
func TestCheckpointResumable(t *testing.T) {
	dir := t.TempDir()
	old := &Checkpoint{Dir: dir, Key: "old"}
	s := old.stageFile(CertificateCheckpoint, struct{ T float64 }{1e-3})
	if err := s.save("certificate", &roundState{obj: func(*gob.Encoder) error { return nil }}); err != nil {
		t.Fatal(err)
	}
	if !old.Resumable() {
		t.Fatalf("a run that saved its state is not Resumable")
	}
	if _, err := os.Stat(filepath.Join(dir, CertificateCheckpoint)); err != nil {
		t.Fatal(err)
	}
	other := &Checkpoint{Dir: dir, Key: "new"}
	o := other.stageFile(CertificateCheckpoint, struct{ T float64 }{1e-3})
	var ce *CheckpointError
	if h, _, err := o.load("certificate"); !errors.As(err, &ce) || ce.File != o.File || h != nil || !strings.Contains(err.Error(), "it is kept, not replaced") {
		t.Fatalf("a file under another key: header %v, error %v; want a CheckpointError naming %s, saying the file is kept", h, err, o.File)
	}
	if other.Resumable() {
		t.Errorf("a stale file under another key makes this run Resumable")
	}
	same := &Checkpoint{Dir: dir, Key: "old"}
	m := same.stageFile(CertificateCheckpoint, struct{ T float64 }{1e-3})
	if h, _, err := m.load("certificate"); err != nil || h == nil {
		t.Fatalf("a file under this run's key: header %v, error %v; want the header", h, err)
	}
	if !same.Resumable() {
		t.Errorf("a run that resumed from a file under its key is not Resumable")
	}
	var none *Checkpoint
	if none.Resumable() {
		t.Errorf("a nil checkpoint is Resumable")
	}
}

// TestCheckpointVerify: Verify accepts absent files and the files Analyze's
// searches save under its options, and refuses with a *CheckpointError
// naming the file one saved under another key or other search options
// (kept, not replaced) and a flipped, truncated or foreign one, for either
// search's file; --fresh (Fresh) skips the check, since the files are then
// ignored. The keys are those of a real Analyze: after one with a
// checkpoint directory (its files stay until the caller removes them),
// Verify with the same options accepts them and with another tolerance
// refuses them.
func TestCheckpointVerify(t *testing.T) {
	o := Options{Tolerance: 1e-3, Certificate: true}
	for _, file := range []string{CertificateCheckpoint, AccuracyCheckpoint} {
		dir := t.TempDir()
		c := &Checkpoint{Dir: dir, Key: "k"}
		if err := c.Verify(o); err != nil {
			t.Fatalf("%s: no files: %v", file, err)
		}
		oc := o
		oc.Checkpoint = c
		cert, acc := oc.searchCheckpoints()
		s, stage := cert, "certificate"
		if file == AccuracyCheckpoint {
			s, stage = acc, "accuracy"
		}
		if err := s.save(stage, &roundState{obj: func(*gob.Encoder) error { return nil }}); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, file)
		saved, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Verify(o); err != nil {
			t.Errorf("%s: this run's own file: %v", file, err)
		}
		other := o // other options of this search
		if file == CertificateCheckpoint {
			other.Tolerance = 1e-2
		} else {
			other.AccuracyIntervals = 128
		}
		for name, err := range map[string]error{
			"another key":          (&Checkpoint{Dir: dir, Key: "another key"}).Verify(o),
			"other search options": c.Verify(other),
		} {
			var ce *CheckpointError
			if !errors.As(err, &ce) || ce.File != path || !strings.Contains(err.Error(), "it is kept, not replaced") {
				t.Errorf("%s: a sound file under %s: Verify = %v, want a CheckpointError naming %s, saying it is kept", file, name, err, path)
			}
		}
		flipped := append([]byte{}, saved...)
		flipped[len(flipped)-1] ^= 1
		for name, b := range map[string][]byte{"flipped": flipped, "truncated": saved[:len(saved)-3], "foreign": []byte("hello\n")} {
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			err := c.Verify(o)
			var ce *CheckpointError
			if !errors.As(err, &ce) || ce.File != path {
				t.Errorf("%s %s: Verify = %v, want a CheckpointError naming %s", file, name, err, path)
			}
			if err := (&Checkpoint{Dir: dir, Key: "k", Fresh: true}).Verify(o); err != nil {
				t.Errorf("%s %s with Fresh: %v", file, name, err)
			}
		}
	}
	var none *Checkpoint
	if err := none.Verify(o); err != nil {
		t.Errorf("a nil checkpoint: %v", err)
	}

	// the keys of a real Analyze
	dir := t.TempDir()
	c := &Checkpoint{Dir: dir, Key: "k"}
	ao := Options{Alphas: 5, Certificate: true, NoPerLayer: true, LossOnly: true, Tolerance: 1e-3, MaxIntervals: 64, AccuracyIntervals: 64, Checkpoint: c}
	if _, err := Analyze(context.Background(), cornerPath(t, 0.3), ao); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{CertificateCheckpoint, AccuracyCheckpoint} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("Analyze left no %s: %v", f, err)
		}
	}
	ao.Checkpoint = nil
	if err := c.Verify(ao); err != nil {
		t.Errorf("Analyze's own files, its options: %v", err)
	}
	ao.Tolerance = 1e-2
	var ce *CheckpointError
	if err := c.Verify(ao); !errors.As(err, &ce) {
		t.Errorf("Analyze's files, another tolerance: Verify = %v, want a CheckpointError", err)
	}
}
