#!/usr/bin/env python3
"""List every finished run of the ResNet study, one row each (docs/resnet/README.md).

usage: runs.py RUNS_DIR GRID.json... > runs.md

Reads RUNS_DIR/*/NAME/{config.json,certificate.json} and lists, in each grid's point order,
every point with its verdict, grid Δ, the loss on the line at α = 0 and α = 1 (the analysis's
examples, evaluation mode), trapezoid Gauss length, normalised weight distance,
training loss and accuracy, test accuracy, or "missing" for a point that has not finished.
"""
import itertools, json, os, re, sys

def name_of(axes, values):
    parts = [f"{k}={v}" for (k, vals), v in zip(axes.items(), values) if len(vals) > 1]
    return re.sub(r"[^A-Za-z0-9._+=-]", "-", "_".join(parts)) or "base"

def fmt(x, spec):
    return "–" if x is None else format(x, spec)

def main():
    runs, grids = sys.argv[1], sys.argv[2:]
    print("| optim | variant | lr | seed | verdict | Δ (grid) | L(0) | L(1) | Gauss length (trapezoid, rad) | weight distance (normalised) | train loss | train acc | test acc |")
    print("| :-- | :-- | --: | --: | :-- | --: | --: | --: | --: | --: | --: | --: | --: |")
    missing = 0
    for g in grids:
        grid = json.load(open(g))
        axes = grid["axes"]
        optim = grid["base"]["optim"]
        sub = os.path.join(runs, optim)
        for values in itertools.product(*axes.values()):
            p = dict(zip(axes.keys(), values))
            d = os.path.join(sub, name_of(axes, values))
            variant = p["arch"].replace("resnet-8-", "")
            if not os.path.exists(os.path.join(d, "certificate.json")):
                missing += 1
                print(f"| {optim} | {variant} | {p['lr']} | {p['seed']} | missing | | | | | | | | |")
                continue
            c = json.load(open(os.path.join(d, "certificate.json")))
            cfg = json.load(open(os.path.join(d, "config.json")))
            print(f"| {optim} | {variant} | {p['lr']} | {p['seed']} | {c['verdict']} | {fmt(c['delta'], '.3g')} | "
                  f"{fmt(c['loss'][0], '.3f')} | {fmt(c['loss'][-1], '.3f')} | "
                  f"{fmt(c['gauss_length_mean_trapezoid'], '.3f')} | {fmt(c['weight_distance_normalized'], '.3f')} | "
                  f"{fmt(cfg.get('train_loss'), '.3f')} | {fmt(cfg.get('train_accuracy'), '.3f')} | {fmt(cfg.get('test_accuracy'), '.3f')} |")
    print()
    print(f"{missing} point(s) missing.")

main()
