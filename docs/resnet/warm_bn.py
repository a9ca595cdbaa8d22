#!/usr/bin/env python3
"""The study's BatchNorm lines with the statistics re-estimated at every α (the paper's method).

usage: warm_bn.py RUNS_DIR DATA_DIR [EXAMPLES] > warm-bn.md
       warm_bn.py --recompute-only RUNS_DIR DATA_DIR > bn-recompute-check.md

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

Then, for every analysis variant of these runs made with certify's own `--bn recompute`
(RUN/variants/NAME/variant.json with bn_policy recompute, e.g. from bn-recompute.sh), a second
table on that variant's N examples (the first N training images) and α: certify's verdict
and Δ; the same statistics in PyTorch — one training-mode forward pass of the N examples, in
which each BatchNorm normalises with the batch mean and biased variance of those N examples,
which is what `recompute` computes when its reference batch is the N analysed examples
(--bn-reference ≥ N; a smaller reference batch is refused here) — whose loss must agree with
certify's (last column); and warm_bn's re-estimated loss (statistics of all DATA_DIR's
training images, as above) on the same N examples.

--recompute-only prints only the second table, without the warm_bn columns (those are the
first table's "re-estimated" columns when N = EXAMPLES): it skips the re-estimation over the
training set at every α, the bulk of the cost.
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


def recompute_variants(d, alphas):
    """certify's --bn recompute variants of run d: (name, report), on the run's α."""
    out = []
    for v in sorted(glob.glob(os.path.join(d, "variants", "*", "variant.json"))):
        rep = json.load(open(v))
        if rep.get("bn_policy") != "recompute":
            continue
        n = rep["examples"]
        ref = rep["options"].get("bn_reference", n)
        if ref < n:
            sys.exit(f"{v}: bn_reference {ref} < examples {n}: the reference batch is not the analysed examples; not supported here")
        if rep["alphas"] != alphas:
            sys.exit(f"{v}: its α differ from certificate.json's")
        out.append((os.path.basename(os.path.dirname(v)), rep))
    return out


def main():
    args = sys.argv[1:]
    only = "--recompute-only" in args
    args = [a for a in args if a != "--recompute-only"]
    runs, data_dir = args[0], args[1]
    n_eval = int(args[2]) if len(args) > 2 else 25
    second = []
    torch.set_num_threads(1)
    x_all = torch.from_numpy(idx(os.path.join(data_dir, "train-images-idx3-ubyte.gz")).astype(np.float64) / 255).reshape(-1, 1, 28, 28)
    y_all = torch.from_numpy(idx(os.path.join(data_dir, "train-labels-idx1-ubyte.gz")).astype(np.int64))
    x, y = x_all[:n_eval], y_all[:n_eval]
    if not only:
        print("| optim | run | Δ interpolate | Δ re-estimated | L(0) interp. | L(1) interp. | L(0) re-est. | L(1) re-est. | max \\|L − certificate.json\\| |")
        print("| :-- | :-- | --: | --: | --: | --: | --: | --: | --: |")
    for d in sorted(glob.glob(os.path.join(runs, "*", "*", "certificate.json"))):
        d = os.path.dirname(d)
        spec = json.load(open(os.path.join(d, "model.json")))
        if "batchnorm2d" not in json.dumps(spec):
            continue
        cert = json.load(open(os.path.join(d, "certificate.json")))
        cfg = json.load(open(os.path.join(d, "config.json")))
        variants = recompute_variants(d, cert["alphas"])
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
        single = [[] for _ in variants]  # PyTorch, the batch statistics of the variant's N examples
        warm = [[] for _ in variants]    # warm_bn's statistics, loss on the variant's N examples
        with torch.no_grad():
            for a in cert["alphas"]:
                st = {k: (v if not v.is_floating_point() else (1 - a) * v + a * sd[1][k]) for k, v in sd[0].items()}
                model.load_state_dict(st, strict=True)
                model.train()
                for j, (_, rep) in enumerate(variants):
                    n = rep["examples"]
                    single[j].append(F.cross_entropy(model(x_all[:n]), y_all[:n]).item())
                if only:
                    continue
                model.load_state_dict(st, strict=True)  # the running statistics, untouched by the passes above
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
                for j, (_, rep) in enumerate(variants):
                    n = rep["examples"]
                    warm[j].append(F.cross_entropy(model(x_all[:n]), y_all[:n]).item())
        optim = os.path.basename(os.path.dirname(d))
        if only:
            for j, (name, rep) in enumerate(variants):
                ls = single[j]
                dr = max(abs(u - v) for u, v in zip(ls, rep["loss"]))
                second.append(f"| {optim} | {os.path.basename(d)} | {rep['examples']} | {name} | {rep['verdict']} | {rep['delta']:.3g} | {delta(ls):.3g} | {rep['loss'][0]:.3f} | {rep['loss'][-1]:.3f} | {ls[0]:.3f} | {ls[-1]:.3f} | {dr:.1e} |")
            print(f"{os.path.basename(d)} done", file=sys.stderr, flush=True)
            continue
        diff = max(abs(u - v) for u, v in zip(li, cert["loss"]))
        print(f"| {optim} | {os.path.basename(d)} | {delta(li):.3g} | {delta(lr):.3g} | {li[0]:.3f} | {li[-1]:.3f} | {lr[0]:.3f} | {lr[-1]:.3f} | {diff:.1e} |", flush=True)
        for j, (name, rep) in enumerate(variants):
            ls, lw = single[j], warm[j]
            dr = max(abs(u - v) for u, v in zip(ls, rep["loss"]))
            second.append(f"| {optim} | {os.path.basename(d)} | {rep['examples']} | {name} | {rep['verdict']} | {rep['delta']:.3g} | {delta(ls):.3g} | {delta(lw):.3g} | {rep['loss'][0]:.3f} | {rep['loss'][-1]:.3f} | {lw[0]:.3f} | {lw[-1]:.3f} | {dr:.1e} |")
    if second and only:
        print("certify's own `--bn recompute` (each run's variants/NAME/variant.json; statistics of the N analysed examples) against PyTorch's training-mode forward pass of the same N examples:")
        print()
        print("| optim | run | N | variant | certify verdict | Δ certify | Δ PyTorch single batch | L(0) certify | L(1) certify | L(0) PyTorch | L(1) PyTorch | max \\|L certify − PyTorch single batch\\| |")
        print("| :-- | :-- | --: | :-- | :-- | --: | --: | --: | --: | --: | --: | --: |")
        for row in second:
            print(row)
    elif second:
        print()
        print("certify's own `--bn recompute` (each run's variants/NAME/variant.json; statistics of the N analysed examples) against PyTorch:")
        print()
        print("| optim | run | N | variant | certify verdict | Δ certify | Δ PyTorch single batch | Δ warm_bn | L(0) certify | L(1) certify | L(0) warm_bn | L(1) warm_bn | max \\|L certify − PyTorch single batch\\| |")
        print("| :-- | :-- | --: | :-- | :-- | --: | --: | --: | --: | --: | --: | --: | --: |")
        for row in second:
            print(row)


main()
