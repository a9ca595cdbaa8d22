#!/usr/bin/env bash
# Cross-checks certify's loss along α against PyTorch (Debian's python3-torch,
# float64) on a run directory: exports the run with its first N evaluation
# examples, evaluates L(α) and accuracy at M equally spaced α in [0, 1] with
# both, and prints the relative differences.
# Usage: scripts/torch_check.sh RUN [N] [M]
#   N: examples (default: min(1000, the examples certify --run evaluates by
#      default: all of data.safetensors, or the first 5000 of config.json's data))
#   M: grid points (default 3)
set -euo pipefail
usage="usage: scripts/torch_check.sh RUN [N] [M] (N: examples, default min(1000, the run's own count); M: α points, default 3)"
run=${1:?$usage}
n=${2:-}
m=${3:-3}
[ -d "$run" ] || { echo "torch_check: $run: not a run directory" >&2; exit 2; }
run=$(cd "$run" && pwd) # RUN is relative to the caller's directory, not the repository's
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/certify" ./cmd/certify
if [ -z "$n" ]; then
	# the run's own example count, read from the export certify --run would analyse
	line=$("$tmp/certify" export --run "$run" --out "$tmp/all")
	count=$(sed -n 's/.* with \([0-9][0-9]*\) examples .*/\1/p' <<<"$line")
	[ -n "$count" ] || { echo "torch_check: cannot read the example count from: $line" >&2; exit 1; }
	n=$((count < 1000 ? count : 1000))
	echo "torch_check: $n examples (min(1000, the run's $count); give N to choose)"
	run="$tmp/all"
fi
"$tmp/certify" export --run "$run" --examples "$n" --out "$tmp/run" >/dev/null
/usr/bin/python3 tools/torchref/torchref.py "$tmp/run" --grid "$m" > "$tmp/torch.json"
"$tmp/certify" --run "$tmp/run" --alphas "$m" --loss-only --no-figures --json > "$tmp/go.json"
/usr/bin/python3 - "$tmp/go.json" "$tmp/torch.json" <<'PY'
import json, sys
g, t = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
worst = 0.0
print(f"{'alpha':>6} {'certify L(alpha)':>22} {'PyTorch L(alpha)':>22} {'rel. diff':>10} {'acc. equal':>10}")
for a, ta, l, tl, acc, tacc in zip(g["alphas"], t["alphas"], g["loss"], t["loss"], g["accuracy"], t["accuracy"]):
    assert abs(a - ta) < 1e-15, (a, ta)
    rel = abs(l - tl) / abs(tl)
    worst = max(worst, rel)
    print(f"{a:6.3f} {l:22.17g} {tl:22.17g} {rel:10.2e} {str(acc == tacc):>10}")
print(f"worst relative difference {worst:.2e} ({'PASS' if worst <= 1e-9 else 'FAIL'} at 1e-9)")
sys.exit(0 if worst <= 1e-9 else 1)
PY
