#!/usr/bin/env bash
# bench/run.sh: the benchmark of issues 7 and 12, end to end, on a fresh Debian machine.
#
#   bash bench/run.sh            certify vs PyTorch, 5000 examples × 50 α, then the peak memory of
#                                `certify --run` on all 60,000 MNIST training examples (docs/performance.md)
#   FULL=1 bash bench/run.sh     the full default analysis (certificate, corner-aware Gauss length,
#                                continuous Δ) instead of --loss-only (certify bench --full); hours
#   MEMORY=0 bash bench/run.sh   without the 60,000-example memory run (≈ 1 min per 5 α)
#   PRECISION=float32 bash bench/run.sh   certify and PyTorch in float32
#   BACKEND=go bash bench/run.sh the same with gonum's pure-Go BLAS
#   BACKEND=cgo bash bench/run.sh  a -tags openblas build (OpenBLAS linked through cgo)
#
# It installs (as root) Debian's libopenblas-dev and python3-torch when they
# are missing, builds certify with a plain `go build` (which loads OpenBLAS at
# run time; BACKEND=cgo: -tags openblas), trains the benchmark run
# (784-1024-1024-10 ReLU, 1 epoch SGD, 10,000 MNIST images) into bench/runs
# once, exports its first 5000 examples, and runs `certify bench --torch`.
# Results go to bench/results/ (JSON and the printed log).
set -euo pipefail
cd "$(dirname "$0")/.."

backend=${BACKEND:-auto}
need=()
[ -f /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h ] || need+=(libopenblas-dev)
/usr/bin/python3 -c 'import torch, functorch' 2>/dev/null || need+=(python3-torch)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "bench: missing Debian packages ${need[*]} (run as root to install)" >&2
    exit 2
  fi
fi

tags=()
if [ "$backend" = cgo ]; then tags=(-tags openblas); backend=openblas; fi
bin=bench/runs/certify
mkdir -p bench/runs bench/results
go build "${tags[@]}" -o "$bin" ./cmd/certify

stamp=$(date -u +%Y%m%dT%H%M%SZ)
full=()
[ "${FULL:-0}" = 0 ] || full=(--full)
memory=()
[ "${MEMORY:-1}" = 0 ] || memory=(--memory 60000 --memory-alphas "${MEMORY_ALPHAS:-5}")
name=$stamp-$backend${tags:+-cgo}-${PRECISION:-float64}
[ "${FULL:-0}" = 0 ] || name=$name-full
{
  echo "# $(date -u) $(uname -m) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "# torch's libblas.so.3 → $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3)"
  "$bin" bench --build --cache bench/runs --examples 5000 --alphas 50 --backend "$backend" --torch \
    --precision "${PRECISION:-float64}" "${full[@]}" "${memory[@]}" --out "bench/results/$name.json" 2>&1
} | tee "bench/results/$name.log"
