#!/bin/bash
# resnet-8 instability experiment, reduced for a shared 2-core machine; run in a directory holding
# fmnist-512/ (python3 subset.py /usr/share/datasets/fashion-mnist fmnist-512 512 500)
set -e
C=${CERTIFY:-certify}
D="--data idx --data-dir fmnist-512"
nice -n 10 $C train $D --arch resnet-8-bn --optim sgd --lr 0.01 --momentum 0.9 --epochs 2 --batch 32 --seed 0 --out parent --quiet
for k in 0 4 16; do
  for s in 11 12; do nice -n 10 $C train --spawn-from parent --at-step $k --seed $s --out k$k-s$s --quiet & done
done
wait
for k in 0 4 16; do
  nice -n 10 $C lmc k$k-s11 k$k-s12 --split test --examples 100 --alphas 11 --no-certificate --out lmc-k$k &
done
wait
