#!/usr/bin/env python3
"""The study's BatchNorm lines with the statistics re-estimated at every α (the paper's method).

usage: warm_bn.py RUNS_DIR DATA_DIR [EXAMPLES [RECOMPUTE_DIR]] > warm-bn.md

For every run of RUNS_DIR/*/* whose model has batchnorm2d, in PyTorch (tools/torchref builds
the model from model.json and loads init/final.safetensors with strict=True), at the 21 α
of its certificate.json:

- "interpolate": the loss of the evaluation-mode network θ0 + α(θT − θ0), running statistics
  interpolated with the other tensors (certify's --bn interpolate), on the first EXAMPLES
  (default 25) training images: a cross-check of certificate.json's loss;
- "re-estimated": the same weights, but every BatchNorm's running statistics reset and
  re-estimated on all the training images of DATA_DIR (in batches of the run's batch size,
  training-mode forward passes, cumulative average: momentum None), then the loss in
  evaluation mode on the same examples. This is Lucas et al.'s `warm_bn` (mli-release,
  lib/mli_eval: reset the statistics, one training-mode pass over the training loader) with
  an exact average instead of PyTorch's momentum 0.1, which over the 8 batches of 256 images
  would keep 0.9^8 = 43% of the reset values.

Prints a markdown table: per run, Δ (largest rise between consecutive α) and L(0), L(1) under
both, and the largest difference from certificate.json's loss (interpolate).

With RECOMPUTE_DIR (certify's own analyses of the same runs with `--bn recompute --examples N
--bn-reference N`, N = all DATA_DIR's training images, written to RECOMPUTE_DIR/OPTIM/RUN by
`certify --run RUN --out …`), a second table compares, on all N images: certify's verdict and
Δ under `recompute`; the same single-batch statistics in PyTorch (one training-mode forward
pass of all N images: each BatchNorm normalises with the batch mean and biased variance, which
is what `recompute` computes with the reference batch = the N examples), whose loss must agree
with certify's; and warm_bn's re-estimated loss (batches of the run's batch size, cumulative
average, evaluation mode) on the same N images.
"""
import glob, gzip, json, os, struct, sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "torchref"))
import torchref  # noqa: E402


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    nd = magic & 0xFF
    dims = struct.unpack(">" + "I" * nd, data[4:4 + 4 * nd])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def delta(loss):
    """Largest rise L(β) − L(α) over grid points α < β (the grid Δ)."""
    best, lo = 0.0, loss[0]
    for v in loss[1:]:
        best = max(best, v - lo)
        lo = min(lo, v)
    return best


def main():
    runs, data_dir = sys.argv[1], sys.argv[2]
    n_eval = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    rec_dir = sys.argv[4] if len(sys.argv) > 4 else None
    second = []
    torch.set_num_threads(1)
    x_all = torch.from_numpy(idx(os.path.join(data_dir, "train-images-idx3-ubyte.gz")).astype(np.float64) / 255).reshape(-1, 1, 28, 28)
    y_all = torch.from_numpy(idx(os.path.join(data_dir, "train-labels-idx1-ubyte.gz")).astype(np.int64))
    x, y = x_all[:n_eval], y_all[:n_eval]
    print("| optim | run | Δ interpolate | Δ re-estimated | L(0) interp. | L(1) interp. | L(0) re-est. | L(1) re-est. | max \\|L − certificate.json\\| |")
    print("| :-- | :-- | --: | --: | --: | --: | --: | --: | --: |")
    for d in sorted(glob.glob(os.path.join(runs, "*", "*", "certificate.json"))):
        d = os.path.dirname(d)
        spec = json.load(open(os.path.join(d, "model.json")))
        if "batchnorm2d" not in json.dumps(spec):
            continue
        cert = json.load(open(os.path.join(d, "certificate.json")))
        cfg = json.load(open(os.path.join(d, "config.json")))
        model = torchref.build(spec)
        sd = []
        for name in ("init.safetensors", "final.safetensors"):
            t = {k: (torch.from_numpy(v.astype(np.int64)) if v.dtype.kind in "iu" else torch.from_numpy(v.astype(np.float64)))
                 for k, v in torchref.read_safetensors(os.path.join(d, name)).items()}
            model.load_state_dict(t, strict=True)
            sd.append({k: v.clone() for k, v in model.state_dict().items()})
        for m in model.modules():  # torch's own BatchNorm2d: training mode uses the batch statistics
            if isinstance(m, torchref.EvalBatchNorm2d):
                m.__class__ = torch.nn.BatchNorm2d
        bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        batch = cfg.get("batch", 32)
        li, lr = [], []
        with torch.no_grad():
            for a in cert["alphas"]:
                st = {k: (v if not v.is_floating_point() else (1 - a) * v + a * sd[1][k]) for k, v in sd[0].items()}
                model.load_state_dict(st, strict=True)
                model.eval()
                li.append(F.cross_entropy(model(x), y).item())
                for m in bns:
                    m.reset_running_stats()
                    m.momentum = None
                model.train()
                for lo in range(0, x_all.shape[0], batch):
                    model(x_all[lo:lo + batch])
                model.eval()
                lr.append(F.cross_entropy(model(x), y).item())
        diff = max(abs(u - v) for u, v in zip(li, cert["loss"]))
        optim = os.path.basename(os.path.dirname(d))
        print(f"| {optim} | {os.path.basename(d)} | {delta(li):.3g} | {delta(lr):.3g} | {li[0]:.3f} | {li[-1]:.3f} | {lr[0]:.3f} | {lr[-1]:.3f} | {diff:.1e} |", flush=True)
        rc = os.path.join(rec_dir, optim, os.path.basename(d), "certificate.json") if rec_dir else None
        if rc and os.path.exists(rc):
            crec = json.load(open(rc))
            ls, lw = [], []
            with torch.no_grad():
                for a in crec["alphas"]:
                    st = {k: (v if not v.is_floating_point() else (1 - a) * v + a * sd[1][k]) for k, v in sd[0].items()}
                    model.load_state_dict(st, strict=True)
                    model.train()  # single batch: the batch statistics of all N images
                    ls.append(F.cross_entropy(model(x_all), y_all).item())
                    for m in bns:
                        m.reset_running_stats()
                        m.momentum = None
                    for lo in range(0, x_all.shape[0], batch):
                        model(x_all[lo:lo + batch])
                    model.eval()
                    lw.append(F.cross_entropy(model(x_all), y_all).item())
            dr = max(abs(u - v) for u, v in zip(ls, crec["loss"]))
            second.append(f"| {optim} | {os.path.basename(d)} | {crec.get('bn_policy')} | {crec['verdict']} | {crec['delta']:.3g} | {delta(ls):.3g} | {delta(lw):.3g} | {crec['loss'][0]:.3f} | {crec['loss'][-1]:.3f} | {lw[0]:.3f} | {lw[-1]:.3f} | {dr:.1e} |")
    if second:
        print()
        print(f"On all {x_all.shape[0]} training images, certify's own `--bn recompute` (RECOMPUTE_DIR):")
        print()
        print("| optim | run | bn_policy | certify verdict | Δ certify | Δ PyTorch single batch | Δ warm_bn | L(0) certify | L(1) certify | L(0) warm_bn | L(1) warm_bn | max \\|L certify − PyTorch single batch\\| |")
        print("| :-- | :-- | :-- | :-- | --: | --: | --: | --: | --: | --: | --: | --: |")
        for row in second:
            print(row)


main()
