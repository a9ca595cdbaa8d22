#!/bin/bash
# resnet-8 instability experiment (docs/lmc.md), sized for a shared 2-core machine; run in a
# directory holding fmnist-1000/:
#   python3 subset.py /usr/share/datasets/fashion-mnist fmnist-1000 1000 300
# One parent (seed 0) and one spawn (data-order seed 11) at each k: the parent is its own spawn
# at every k with its own seed, so (parent, spawn at k) is a pair of Frankle et al.'s analysis.
set -e
C=${CERTIFY:-certify}
nice -n 10 $C train --data idx --data-dir fmnist-1000 --arch resnet-8-bn --optim sgd --lr 0.01 \
    --momentum 0.9 --epochs 4 --batch 4 --seed 0 --out parent --quiet
for k in 0 100 500; do
  nice -n 10 $C train --spawn-from parent --at-step $k --seed 11 --out k$k-s11 --quiet &
done
wait
for k in 0 100 500; do
  nice -n 10 $C lmc parent k$k-s11 --split test --alphas 21 --no-certificate --out lmc-k$k &
done
wait
$C lmc-table . --format markdown --out table.md
$C lmc-table . --format csv --out table.csv
$C lmc-table . --format latex --out table.tex
$C figures . --out . --format png
