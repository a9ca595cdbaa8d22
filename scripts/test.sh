#!/usr/bin/env bash
# The test command of the README, also run by CI (.ci/run): installs what the
# tests need on a fresh Debian machine (as root), then vets and tests everything.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
/usr/bin/python3 -c 'import torch, functorch' 2>/dev/null || need+=(python3-torch)
command -v pdflatex >/dev/null 2>&1 || need+=(texlive-latex-base texlive-latex-recommended)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)   # also pdffonts: no Type 3 fonts in our PDFs
dpkg -s lmodern >/dev/null 2>&1 || need+=(lmodern)   # summary.tex and table LaTeX use lmodern (Type 1 fonts, not Type 3 bitmaps)
[ -x /usr/bin/time ] || need+=(time)   # GNU time: certify bench --memory (TestMeasureMemory)
[ -f /usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz ] || need+=(dataset-fashion-mnist)
dpkg -s libopenblas-dev >/dev/null 2>&1 || need+=(libopenblas-dev)   # OpenBLAS, loaded at run time (libopenblas0) or linked with -tags openblas
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "warning: missing Debian packages ${need[*]}; tests that need them will skip (run as root to install)" >&2
  fi
fi

go vet ./...
# A line per package as it finishes (in the order they finish, with its time),
# failures in full, and a heartbeat naming the packages still running after a
# minute without output: a plain `go test ./...` is silent until certify, the
# slowest package, is done. Same tests; pipefail keeps go test's exit status.
go build -o "${TMPDIR:-/tmp}/certify-testprogress.$$" ./scripts/testprogress
trap 'rm -f "${TMPDIR:-/tmp}/certify-testprogress.$$"' EXIT
echo "testing every package (the slowest, certify, takes several minutes)"
go test -count=1 -timeout 20m -json ./... | "${TMPDIR:-/tmp}/certify-testprogress.$$"
# The BLAS backends: the run-time loader without cgo (what a machine without a C compiler
# builds), the fully static build without it, and the optional cgo backend (build tag openblas).
CGO_ENABLED=0 go test -count=1 ./internal/blasbackend/
CGO_ENABLED=0 go test -count=1 -tags nodlopen -run 'NoLoader|TestSelect$' ./internal/blasbackend/
if dpkg -s libopenblas-dev >/dev/null 2>&1; then
  go test -count=1 -tags openblas ./internal/blasbackend/
fi
if [ "$(id -u)" = 0 ]; then scripts/slurm_test.sh; fi   # the SLURM path of certify sweep, on a real one-node cluster
