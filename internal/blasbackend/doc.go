// Package blasbackend chooses the implementation of the float64 matrix
// product behind gonum's blas64 (and so behind every nn layer's Jet, Forward
// and Backward, THEORY.md §2: the two wide products W·[h ḣ ḧ] and ΔW·[h ḣ]
// per affine layer are almost all of the work of an analysis).
//
// Two backends exist:
//
//   - "go": gonum's pure-Go BLAS (gonum.org/v1/gonum/blas/gonum). It is the
//     default, needs no cgo, and always works.
//   - "openblas": Dgemm by OpenBLAS's cblas_dgemm through cgo, every other
//     routine still gonum's. It exists only in binaries built with
//     `-tags openblas` (and cgo, and Debian's libopenblas-dev); elsewhere
//     OpenBLAS returns ErrNotBuilt.
//
// A foreign backend is trusted only after SelfTest has compared its Dgemm
// with gonum's on this machine: every transpose combination (NN, NT, TN, TT),
// several α and β (β = 0 with NaN in C, which BLAS must not read), leading
// dimensions wider than the matrices, and shapes from 1×1×1 to sizes that
// reach the blocked and threaded kernels. Each element must agree within
// 1e-12 relative to Σ_k |α a_ik b_kj| + |β c_ij| (a dot product of length k
// in float64 errs by at most k·2⁻⁵³ of that sum), and the padding between
// rows of C must be left untouched. Select falls back to "go", and says why,
// when the self-test fails.
package blasbackend
