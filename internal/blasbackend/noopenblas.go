//go:build !openblas || !cgo

package blasbackend

func linkedOpenBLAS() (*Backend, error) { return nil, ErrNotBuilt }
