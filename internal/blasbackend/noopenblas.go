//go:build !openblas || !cgo

package blasbackend

func openBLAS() (*Backend, error) { return nil, ErrNotBuilt }
