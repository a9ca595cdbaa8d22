// Package blasbackend chooses the implementation of the matrix products
// behind gonum's blas64 (float64) and blas32 (float32), and so behind every
// nn layer's Jet, Forward and Backward (THEORY.md §2: the two wide products
// W·[h ḣ ḧ] and ΔW·[h ḣ] per affine layer are almost all of the work of an
// analysis).
//
// Backends:
//
//   - "openblas" loaded at run time (the default when it is there): the
//     plain `go build` binary opens Debian's libopenblas.so.0 (package
//     libopenblas0, any flavour; then libopenblas.so and libblas.so.3 when
//     that is OpenBLAS) with the system's dynamic loader through
//     github.com/ebitengine/purego, without cgo and without a build tag,
//     and replaces Dgemm and Sgemm by its cblas_dgemm and cblas_sgemm;
//     every other routine stays gonum's. Products under 16³ multiply-adds
//     stay in gonum (a call costs about 1.5 µs).
//   - "openblas" linked at build time: the same through cgo, in binaries
//     built with `-tags openblas` (and cgo, and Debian's libopenblas-dev);
//     preferred when present.
//   - any other CBLAS library, only when named (a file name or path).
//   - "go": gonum's pure-Go BLAS (gonum.org/v1/gonum/blas/gonum) for both
//     precisions: the fallback, always works.
//
// What the run-time loader costs: importing purego makes the binary
// dynamically linked even with CGO_ENABLED=0: an ELF interpreter
// (/lib64/ld-linux-x86-64.so.2) and libc.so.6, libdl.so.2 and
// libpthread.so.0 as needed libraries, and the Go runtime starts its
// threads through pthread_create (purego's internal fakecgo). It still
// builds without a C compiler and without OpenBLAS, and runs on any glibc
// Linux with or without OpenBLAS; it does not start where there is no
// glibc loader (a scratch container, musl). `go build -tags nodlopen`
// leaves the loader out: a fully static, pure-Go binary.
//
// A library is trusted only after SelfTest has compared its Dgemm, and
// SelfTest32 its Sgemm, with gonum's on this machine: every transpose
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
