#!/bin/bash
# resnet-8 instability experiment (docs/lmc.md "A resnet-8 on Fashion-MNIST"); run in a
# directory holding fmnist-2000/:
#   python3 subset.py /usr/share/datasets/fashion-mnist fmnist-2000 2000 300
# One parent (seed 0) and one spawn (data-order seed 11) at each k: the parent is its own spawn
# at every k with its own seed, so (parent, spawn at k) is a pair of Frankle et al.'s analysis.
# Heavy steps one at a time, niced (the machine is shared).
set -e
C=${CERTIFY:-certify}
nice -n 10 $C train --data idx --data-dir fmnist-2000 --arch resnet-8-bn --optim sgd --lr 0.01 \
    --momentum 0.9 --epochs 5 --batch 4 --seed 0 --out parent --quiet
for k in 2000 0 500 100; do
  nice -n 10 $C train --spawn-from parent --at-step $k --seed 11 --out k$k-s11 --quiet
done
for k in 2000 0 500 100; do
  # grid barriers on the 300 test images, no certificate
  nice -n 10 $C lmc parent k$k-s11 --split test --alphas 11 --no-certificate --out grid300/grid-k$k
  # certified barrier bounds on the first 10 test images, within a budget of 64 leaves
  # (no accuracy search: one leaf, so accuracy_bounds are [0, 1])
  nice -n 10 $C lmc parent k$k-s11 --split test --examples 10 --alphas 21 --delta-tol 0.05 \
      --max-intervals 64 --accuracy-intervals 1 --out cert10/cert-k$k
done
$C lmc-table . --format markdown --out table.md
$C lmc-table . --format csv --out table.csv
$C lmc-table . --format latex --out table.tex
$C figures cert10 --out . --format png          # lmc-instability.png, with the certified bounds
$C figures grid300 --out grid300 --format png   # the 300-image grid barriers
