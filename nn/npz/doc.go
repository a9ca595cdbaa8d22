// Package npz reads numpy .npz archives of named arrays, the alternative to
// safetensors for θ0, θT and data in a certify run directory (RUN_FORMAT.md,
// "Files": "Also accept .npz with the same keys").
//
// An .npz file is a zip archive (members stored or deflated) of .npy files,
// one per array, as written by numpy.savez and numpy.savez_compressed; the
// key of an array is its member name without the ".npy" suffix, so
// np.savez(f, **{"0.weight": w}) gives the key "0.weight".
//
// A .npy file (numpy's NEP 1 format, versions 1.0, 2.0 and 3.0) is the magic
// "\x93NUMPY", a major and minor version byte, the header length (2 bytes
// little-endian in version 1, 4 bytes in versions 2 and 3), a header holding
// a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...)},
// and the raw elements. Supported descr values are the floating '<f8',
// '<f4', '<f2' (read as safetensors dtypes F64, F32, F16, converted exactly
// to float64) and the integer '<i8', '<i4', '<i2', '|i1', '<u8', '<u4',
// '<u2', '|u1', '|b1' (I64, I32, I16, I8, U64, U32, U16, U8, BOOL, kept
// exactly as int64); big-endian '>' variants are byte-swapped. Arrays stored
// in Fortran order (fortran_order True) are transposed into the C
// (row-major) order that safetensors.Tensor uses, so their values and shape
// are those numpy reports. Complex, structured, object and string dtypes are
// refused with ErrDType.
package npz
