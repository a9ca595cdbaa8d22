//go:build !(linux && (amd64 || arm64)) || nodlopen

package blasbackend

import "fmt"

// loadCBLAS is not available in this build: binaries built with
// -tags nodlopen (fully static, no dynamic loader) or for a platform other
// than linux/amd64 and linux/arm64 use pure Go unless OpenBLAS is linked in
// with -tags openblas.
func loadCBLAS(lib string) (*Backend, error) {
	return nil, fmt.Errorf("%w: %s not loaded: this binary cannot load libraries at run time (built with -tags nodlopen, or not linux/amd64 or linux/arm64)", ErrNoLoader, lib)
}
