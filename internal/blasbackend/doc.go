// Package blasbackend chooses the implementation of the matrix products
// behind gonum's blas64 (float64) and blas32 (float32), and so behind every
// nn layer's Jet, Forward and Backward (THEORY.md §2: the two wide products
// W·[h ḣ ḧ] and ΔW·[h ḣ] per affine layer are almost all of the work of an
// analysis).
//
// Two backends exist:
//
//   - "go": gonum's pure-Go BLAS (gonum.org/v1/gonum/blas/gonum) for both
//     precisions. It is the default, needs no cgo, and always works.
//   - "openblas": Dgemm and Sgemm by OpenBLAS's cblas_dgemm and cblas_sgemm
//     through cgo, every other routine still gonum's. It exists only in
//     binaries built with `-tags openblas` (and cgo, and Debian's
//     libopenblas-dev); elsewhere OpenBLAS returns ErrNotBuilt.
//
// A foreign backend is trusted only after SelfTest has compared its Dgemm,
// and SelfTest32 its Sgemm, with gonum's on this machine: every transpose
// combination (NN, NT, TN, TT), several α and β (β = 0 with NaN in C, which
// BLAS must not read), leading dimensions wider than the matrices, and shapes
// from 1×1×1 to sizes that reach the blocked and threaded kernels. In
// float64 each element must agree within 1e-12 relative to
// Σ_k |α a_ik b_kj| + |β c_ij| (a dot product of length k in float64 errs by
// at most k·2⁻⁵³ of that sum); in float32 within 2·γ(k+2) of the same sum,
// γ(n) = n·2⁻²⁴/(1 − n·2⁻²⁴), the worst-case error of two float32 products
// (SelfTestTol32). The padding between rows of C must be left untouched.
// Select falls back to "go" for both precisions, and says why, when either
// self-test fails.
package blasbackend
