package certify

import (
	"encoding/gob"
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
