#!/bin/bash
# the lmc step of run.sh alone (after the spawns)
C=${CERTIFY:-certify}
for k in 0 4 16; do
  nice -n 10 $C lmc k$k-s11 k$k-s12 --split test --examples 100 --alphas 11 --no-certificate --out lmc-k$k &
done
wait
