#!/usr/bin/env bash
# sweep_kill_resume.sh: the acceptance test of issue 5 (docs/sweeps.md).
# Runs the 12-point grid testdata/sweeps/mnist12.json with --jobs 2,
# SIGKILLs it once half the points are done, reruns it, and checks that
# the finished points were not retrained (trained_at in sweep.json and the
# mtime of final.safetensors unchanged, last_invocation counts), that no
# run directory was half-written, and that all 12 validate (certify loads
# each with rundir.Read on a copy). Prints PASS or FAIL: why.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${SWEEP_TEST_DIR:-/tmp/certify-kill-resume}
GRID=$PWD/testdata/sweeps/mnist12.json
PY=/usr/bin/python3
fail() { echo "sweep_kill_resume: FAIL: $*"; exit 1; }
rm -rf "$W" && mkdir -p "$W/bin"
go build -o "$W/bin/certify" ./cmd/certify || fail "go build"
C=$W/bin/certify RUNS=$W/runs
t0=$(date +%s.%N)
"$C" sweep "$GRID" --out "$RUNS" --jobs 2 2>"$W/first.log" &
pid=$!
done_count() { ls -d "$RUNS"/*/certificate.json 2>/dev/null | wc -l; }
while kill -0 $pid 2>/dev/null && [ "$(done_count)" -lt 6 ]; do sleep 0.1; done
kill -KILL $pid 2>/dev/null || fail "the sweep ended before it could be killed"
wait $pid || true
echo "killed after $(echo "$(date +%s.%N) - $t0" | bc) s with $(done_count) of 12 points done"
cat "$W/first.log"; echo
for d in "$RUNS"/*/; do [ -f "$d/certificate.json" ] || fail "half-written run directory $d"; done
ls -la "$RUNS/.work" | grep -v lock || true
$PY - "$RUNS" > "$W/before.json" <<'PYEOF'
import json, os, sys
runs = sys.argv[1]
out = {}
for n in os.listdir(runs):
    if os.path.isfile(os.path.join(runs, n, "certificate.json")):
        rec = json.load(open(os.path.join(runs, n, "sweep-point.json")))
        out[n] = [rec["trained_at"], os.stat(os.path.join(runs, n, "final.safetensors")).st_mtime_ns]
print(json.dumps(out))
PYEOF
t1=$(date +%s.%N)
"$C" sweep "$GRID" --out "$RUNS" --jobs 2 || fail "rerun"
echo "rerun took $(echo "$(date +%s.%N) - $t1" | bc) s"
$PY - "$RUNS" "$W/before.json" <<'PYEOF' || fail "resume check"
import json, os, sys
runs, before = sys.argv[1], json.load(open(sys.argv[2]))
idx = json.load(open(os.path.join(runs, "sweep.json")))
inv = idx["last_invocation"]
assert idx["counts"] == {"done": 12}, idx["counts"]
assert inv["skipped"] == len(before), (inv, len(before))
# Points killed while being certified (trained, in .work) are certified
# again without retraining: analysed counts them, trained does not.
assert inv["analysed"] == 12 - len(before) and inv["trained"] <= inv["analysed"], inv
for e in idx["points"]:
    if e["name"] in before:
        tr, mt = before[e["name"]]
        assert e["trained_at"] == tr, ("retrained", e["name"])
        assert os.stat(os.path.join(runs, e["name"], "final.safetensors")).st_mtime_ns == mt, ("final rewritten", e["name"])
print("resume check: %d points kept, %d certified now, of which %d trained (%d resumed from checkpoints)" % (inv["skipped"], inv["analysed"], inv["trained"], inv["resumed"]))
PYEOF
for d in "$RUNS"/*/; do
  rm -rf "$W/copy" && cp -r "$d" "$W/copy"
  "$C" --run "$W/copy" --loss-only --alphas 3 --examples 50 --no-figures --quiet || fail "$d does not validate"
done
[ -z "$(find "$RUNS/.work" -mindepth 1 -type d)" ] || fail "directories left in .work"
echo "sweep_kill_resume: PASS (12 run directories validate)"
