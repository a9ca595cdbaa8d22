#!/usr/bin/env bash
# slurm_test.sh: tests `certify sweep --emit slurm` on a real one-node SLURM
# cluster (docs/sweeps.md). As root, on Debian, with no systemd:
#   1. installs slurm-wlm and munge if missing (apt-get);
#   2. starts munged (unless one runs), slurmctld -D and slurmd -D with a
#      private slurm.conf (SLURM_CONF, ports 16817/16818, state under $W), so
#      /etc/slurm is not touched;
#   3. builds certify, runs testdata/sweeps/slurm4.json on the local pool,
#      then as an sbatch array (sbatch --wait) into the same directory;
#   4. checks every run directory is complete and identical in content to
#      the local pool's: weights, checkpoints, model.json, metrics.jsonl
#      byte for byte, config.json / certificate.json / sweep-point.json equal
#      but for timing, host and job fields;
#   5. stops the daemons it started, by PID (trap).
# SLURM_TEST_GRID=FILE runs another grid the same way (default
# testdata/sweeps/slurm4.json; docs/resnet/grid-tiny.json is the ResNet
# study's grid in tiny form).
# Prints "slurm_test: PASS" or "slurm_test: FAIL: why" and exits non-zero on
# failure. Rerunnable: it wipes its own work directory $W first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
W=${SLURM_TEST_DIR:-/tmp/certify-slurm-test}
GRID=$(realpath "${SLURM_TEST_GRID:-$ROOT/testdata/sweeps/slurm4.json}")
PY=/usr/bin/python3
T0=$(date +%s)

say() { echo "slurm_test: $*"; }
fail() {
  say "FAIL: $*"
  for f in "$W"/slurm/log/*.log "$W"/runs/logs/*.log; do
    [ -f "$f" ] && { echo "---- $f (last 20 lines)"; tail -n 20 "$f"; }
  done
  exit 1
}
[ "$(id -u)" = 0 ] || { say "SKIP: must run as root (installs packages, starts daemons)"; exit 0; }

# alive PID: the process exists and is not a zombie (PID 1 may reap late).
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null || true); [ -n "$s" ] && [ "${s:0:1}" != Z ]; }
stop_pid() { # stop_pid FILE NAME: TERM the PID in FILE, wait up to 10 s.
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f"); rm -f "$f"
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 40); do alive "$pid" || return 0; sleep 0.25; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$W/slurmd.bgpid"
  stop_pid "$W/slurmctld.bgpid"
  stop_pid "$W/munged.started"
}
# Daemons of an earlier, interrupted run of this script.
cleanup
trap cleanup EXIT
rm -rf "$W"
mkdir -p "$W"/slurm/{state,spool,log} "$W/bin"

# 1. Packages.
if ! command -v sbatch >/dev/null || ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null || fail "apt-get install slurm-wlm munge"
fi

# 2. munge: key, run directory, daemon.
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
if [ -f /run/munge/munged.pid ] && alive "$(cat /run/munge/munged.pid)"; then
  say "using the running munged (PID $(cat /run/munge/munged.pid))"
else
  runuser -u munge -- /usr/sbin/munged --force || fail "munged did not start"
  for _ in $(seq 40); do [ -s /run/munge/munged.pid ] && break; sleep 0.25; done
  cp /run/munge/munged.pid "$W/munged.started"
fi
munge -n | unmunge >/dev/null || fail "munge -n | unmunge"

# slurm.conf of this test only (SLURM_CONF is read by every slurm command).
HOST=$(hostname -s)
export SLURM_CONF=$W/slurm.conf
cat > "$SLURM_CONF" <<EOF
ClusterName=certifytest
SlurmctldHost=$HOST
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
MailProg=/bin/true
StateSaveLocation=$W/slurm/state
SlurmdSpoolDir=$W/slurm/spool
SlurmctldPidFile=$W/slurm/slurmctld.pid
SlurmdPidFile=$W/slurm/slurmd.pid
SlurmctldLogFile=$W/slurm/log/slurmctld.log
SlurmdLogFile=$W/slurm/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
NodeName=$HOST CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
nohup slurmctld -D >"$W/slurm/log/slurmctld.out" 2>&1 &
echo $! >"$W/slurmctld.bgpid"
for i in $(seq 120); do scontrol ping 2>/dev/null | grep -q UP && break; [ "$i" = 120 ] && fail "slurmctld not up after 30 s"; sleep 0.25; done
nohup slurmd -D >"$W/slurm/log/slurmd.out" 2>&1 &
echo $! >"$W/slurmd.bgpid"
for i in $(seq 120); do [ "$(sinfo -h -o %t 2>/dev/null)" = idle ] && break; [ "$i" = 120 ] && fail "node not idle after 60 s: $(sinfo -h -o '%t %E' 2>&1)"; sleep 0.5; done
say "cluster up in $(( $(date +%s) - T0 )) s ($(sinfo -V))"

# 3. Build, run the local pool, then the array into the same directory.
go build -o "$W/bin/certify" ./cmd/certify || fail "go build"
CERTIFY=$W/bin/certify
RUNS=$W/runs
t=$(date +%s)
NPTS=$("$CERTIFY" sweep "$GRID" --out "$W/count" --dry-run | sed -n 's/^\([0-9]*\) of \1 points.*/\1/p')
[ -n "$NPTS" ] || fail "could not count the points of $GRID"
"$CERTIFY" sweep "$GRID" --out "$RUNS" --jobs 2 || fail "local sweep"
say "local pool: $(( $(date +%s) - t )) s"
mv "$RUNS" "$W/local"
"$CERTIFY" sweep "$GRID" --out "$RUNS" --emit slurm --array-limit 2 \
  --slurm-opt=--time=00:10:00 --slurm-opt=--cpus-per-task=1 || fail "--emit slurm"
cat "$RUNS/sweep.sbatch"
t=$(date +%s)
timeout 600 sbatch --wait "$RUNS/sweep.sbatch" || fail "sbatch --wait: exit $?"
say "SLURM array: $(( $(date +%s) - t )) s"

# 4. Checks.
"$CERTIFY" sweep "$GRID" --out "$RUNS" --dry-run | tee "$W/status.txt"
grep -q "^$NPTS of $NPTS points, $NPTS done$" "$W/status.txt" || fail "not every point is done"
n=$(ls "$RUNS"/logs/*.log 2>/dev/null | wc -l)
[ "$n" = "$NPTS" ] || fail "want $NPTS task logs in $RUNS/logs, found $n"
mapfile -t names < <(cd "$W/local" && ls -d */ | tr -d /)
[ "${#names[@]}" = "$NPTS" ] || fail "want $NPTS local run directories, found ${#names[@]}"
for name in "${names[@]}"; do
  a=$W/local/$name b=$RUNS/$name
  [ -f "$b/certificate.json" ] || fail "$b has no certificate.json"
  diff <(cd "$a" && find . -type f | sort) <(cd "$b" && find . -type f | sort) || fail "$name: the file lists differ"
  while read -r f; do
    case "$f" in
      ./config.json | ./certificate.json | ./sweep-point.json) continue ;;
      ./summary.tex)  # its timing rows differ; everything else must not
        diff <(grep -v 'time (s)' "$a/$f") <(grep -v 'time (s)' "$b/$f") >/dev/null ||
          fail "$name/$f differs beyond its timing rows"
        continue ;;
    esac
    cmp -s "$a/$f" "$b/$f" || fail "$name/$f differs between the local pool and SLURM"
  done < <(cd "$a" && find . -type f)
  $PY - "$a" "$b" <<'EOF' || fail "$name: JSON files differ beyond timing fields"
import json, sys
a, b = sys.argv[1], sys.argv[2]
TIMING = {"seconds", "train_seconds", "analysis_seconds", "trained_at", "host", "slurm_job"}
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in TIMING and not k.endswith("_seconds")}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
for f in ["config.json", "certificate.json", "sweep-point.json"]:
    x, y = (strip(json.load(open(d + "/" + f))) for d in (a, b))
    if x != y:
        print("differs:", f, file=sys.stderr)
        sys.exit(1)
rec = json.load(open(b + "/sweep-point.json"))
if not rec.get("slurm_job"):
    print("sweep-point.json of the SLURM run has no slurm_job", file=sys.stderr)
    sys.exit(1)
EOF
done
say "PASS: $NPTS points of $(basename "$GRID") identical between the local pool and the SLURM array ($(( $(date +%s) - T0 )) s in all)"
