package certify

import (
	"encoding/gob"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestCheckpointResumable: Resumable is false while the only file on disk
// was saved under another key (it is not used, and a command interrupted
// then must not say its state is saved), and true once this run saved its
// own state or resumed from a file under its key.
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
	if h, _, err := o.load("certificate"); err != nil || h != nil {
		t.Fatalf("a file under another key: header %v, error %v; want neither", h, err)
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

// TestCheckpointVerify: Verify accepts a sound file under any key and absent
// files, and refuses a flipped, truncated or foreign one with a
// *CheckpointError naming it, for either search's file; --fresh (Fresh)
// skips the check, since the files are then ignored.
func TestCheckpointVerify(t *testing.T) {
	for _, file := range []string{CertificateCheckpoint, AccuracyCheckpoint} {
		dir := t.TempDir()
		c := &Checkpoint{Dir: dir, Key: "k"}
		if err := c.Verify(); err != nil {
			t.Fatalf("%s: no files: %v", file, err)
		}
		s := c.stageFile(file, struct{ T float64 }{1e-3})
		if err := s.save("certificate", &roundState{obj: func(*gob.Encoder) error { return nil }}); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, file)
		saved, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := (&Checkpoint{Dir: dir, Key: "another key"}).Verify(); err != nil {
			t.Errorf("%s: a sound file under another key: %v", file, err)
		}
		flipped := append([]byte{}, saved...)
		flipped[len(flipped)-1] ^= 1
		for name, b := range map[string][]byte{"flipped": flipped, "truncated": saved[:len(saved)-3], "foreign": []byte("hello\n")} {
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			err := c.Verify()
			var ce *CheckpointError
			if !errors.As(err, &ce) || ce.File != path {
				t.Errorf("%s %s: Verify = %v, want a CheckpointError naming %s", file, name, err, path)
			}
			if err := (&Checkpoint{Dir: dir, Key: "k", Fresh: true}).Verify(); err != nil {
				t.Errorf("%s %s with Fresh: %v", file, name, err)
			}
		}
	}
	var none *Checkpoint
	if err := none.Verify(); err != nil {
		t.Errorf("a nil checkpoint: %v", err)
	}
}
