//go:build !(linux && (amd64 || arm64)) || nodlopen

package blasbackend

import (
	"errors"
	"strings"
	"testing"
)

// TestNoLoader: a build without the run-time loader refuses to load, and
// "auto" says so once and stays pure Go.
func TestNoLoader(t *testing.T) {
	if _, err := Load("libopenblas.so.0"); !errors.Is(err, ErrNoLoader) {
		t.Fatalf("Load: %v, want ErrNoLoader", err)
	}
	b, note, err := choose("auto", sources{linked: func() (*Backend, error) { return nil, ErrNotBuilt }, load: loadCBLAS, libs: Libraries})
	if err != nil || b.Name != "go" || strings.Count(note, "nodlopen") != 1 {
		t.Errorf("auto: %v, %q, %v", b, note, err)
	}
}
