#!/usr/bin/python3
"""import_fixtures: PyTorch-made inputs for `certify import`, with PyTorch's L(α).

  import_fixtures.py OUT_DIR

trains two small MLPs, a CNN with max-pool and a residual net in PyTorch (float32, a few SGD steps in training mode,
so BatchNorm's running statistics move) and writes, for each model NAME,

  NAME/plain/{init,final}.pt          torch.save(model.state_dict())
  NAME/module/{init,final}.pt         nn.DataParallel(model).state_dict(): "module." keys
  NAME/orig_mod/{init,final}.pt       "_orig_mod." keys, as torch.compile's wrapper names them
                                      (torch 1.13 has no torch.compile: the keys are renamed)
  NAME/wrapped/{init,final}.pt        {"epoch", "state_dict", "optimizer": optimizer.state_dict()}
  NAME/wrapped_model/{init,final}.pt  {"model": state_dict, "step": …}
  NAME/npz/{init,final}.npz           numpy.savez of the state_dict's arrays
  NAME/onnx13/{init,final}.onnx       torch.onnx.export(model.eval(), opset_version=13)
  NAME/onnx17/{init,final}.onnx       the same at opset 17 with do_constant_folding=False
                                      (the conv models: both with training=TrainingMode.PRESERVE,
                                      which keeps BatchNorm2d nodes)
  NAME/onnx_eval/{init,final}.onnx    conv models only: the default evaluation-mode export, which
                                      folds BatchNorm2d into the Conv before it
  NAME/model.json                     the architecture, written by hand here
  NAME/data.npz, x.npy, y.npy, data.pt   the evaluation data (x, y)
  NAME/expected.json                  alphas (50, linspace(0, 1)) and loss: PyTorch's L(α)

L(α) is computed on the original nn.Module in float64 and evaluation mode,
with every floating tensor of the state_dict (parameters and BatchNorm's
running statistics) on the line θ0 + α(θT − θ0), as tools/torchref/torchref.py
does for a run directory (bn_policy "interpolate"), through
torch.func-style functional_call. It shares no code with certify.
"""

import copy
import json
import os
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.stateless import functional_call

ALPHAS = np.linspace(0, 1, 50).tolist()


def models():
    # Cross-entropy MLP with two BatchNorms of equal width (at initialisation
    # the export merges their equal ones and zeros into one initialiser),
    # Dropout (dropped by the export: the indices after it stay the
    # module's), GELU, a bias-free linear, LeakyReLU.
    bn = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
        torch.nn.Dropout(0.1), torch.nn.Linear(8, 8), torch.nn.BatchNorm1d(8), torch.nn.GELU(),
        torch.nn.Linear(8, 5, bias=False), torch.nn.LeakyReLU(0.2), torch.nn.Linear(5, 3))
    # MSE MLP on float targets with tanh, sigmoid and softplus.
    mse = torch.nn.Sequential(
        torch.nn.Linear(6, 7), torch.nn.Tanh(), torch.nn.Linear(7, 5), torch.nn.Sigmoid(),
        torch.nn.Linear(5, 4), torch.nn.Softplus(), torch.nn.Linear(4, 2))
    spec_bn = {"format": "sequential/v1", "input_shape": [2, 3], "loss": "cross_entropy", "layers": [
        {"type": "flatten"}, {"type": "linear", "in": 6, "out": 8}, {"type": "batchnorm1d", "features": 8},
        {"type": "relu"}, {"type": "identity"}, {"type": "linear", "in": 8, "out": 8},
        {"type": "batchnorm1d", "features": 8}, {"type": "gelu"},
        {"type": "linear", "in": 8, "out": 5, "bias": False}, {"type": "leaky_relu", "slope": 0.2},
        {"type": "linear", "in": 5, "out": 3}]}
    spec_mse = {"format": "sequential/v1", "input_shape": [6], "loss": "mse", "layers": [
        {"type": "linear", "in": 6, "out": 7}, {"type": "tanh"}, {"type": "linear", "in": 7, "out": 5},
        {"type": "sigmoid"}, {"type": "linear", "in": 5, "out": 4}, {"type": "softplus"},
        {"type": "linear", "in": 4, "out": 2}]}
    # CNN with max-pool: conv2d, batchnorm2d, relu, maxpool2d, flatten, linear.
    cnn = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.BatchNorm2d(3), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(27, 3))
    spec_cnn = {"format": "sequential/v1", "input_shape": [1, 6, 6], "loss": "cross_entropy", "layers": [
        {"type": "conv2d", "in": 1, "out": 3, "kernel": 3, "padding": 1}, {"type": "batchnorm2d", "features": 3},
        {"type": "relu"}, {"type": "maxpool2d", "kernel": 2}, {"type": "flatten"},
        {"type": "linear", "in": 27, "out": 3}]}
    # Residual net (RUN_FORMAT.md's Residual): a block with a conv shortcut
    # and a batchnorm2d in its body, a block with the identity shortcut and a
    # scale, an avgpool2d with padding, global average pooling.
    res = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(),
        Residual([torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.BatchNorm2d(3), torch.nn.ReLU(),
                  torch.nn.Conv2d(3, 3, 3, padding=1)], [torch.nn.Conv2d(2, 3, 1)]),
        torch.nn.ReLU(), Residual([torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.Tanh()], scale=True),
        torch.nn.AvgPool2d(2, padding=1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
        torch.nn.Linear(3, 3))
    spec_res = {"format": "sequential/v1", "input_shape": [1, 6, 6], "loss": "cross_entropy", "layers": [
        {"type": "conv2d", "in": 1, "out": 2, "kernel": 3, "padding": 1}, {"type": "relu"},
        {"type": "residual", "body": [
            {"type": "conv2d", "in": 2, "out": 3, "kernel": 3, "padding": 1}, {"type": "batchnorm2d", "features": 3},
            {"type": "relu"}, {"type": "conv2d", "in": 3, "out": 3, "kernel": 3, "padding": 1}],
         "shortcut": [{"type": "conv2d", "in": 2, "out": 3, "kernel": 1}]},
        {"type": "relu"},
        {"type": "residual", "body": [{"type": "conv2d", "in": 3, "out": 3, "kernel": 3, "padding": 1},
                                      {"type": "tanh"}], "scale": True},
        {"type": "avgpool2d", "kernel": 2, "padding": 1}, {"type": "adaptive_avgpool2d", "output": 1},
        {"type": "flatten"}, {"type": "linear", "in": 3, "out": 3}]}
    return [("mlp_bn", bn, spec_bn, [2, 3], "labels"), ("mlp_mse", mse, spec_mse, [6], "targets"),
            ("cnn_bn", cnn, spec_cnn, [1, 6, 6], "labels"), ("resnet", res, spec_res, [1, 6, 6], "labels")]


class Residual(torch.nn.Module):
    """RUN_FORMAT.md's residual block: shortcut(x) + (scale·)body(x)."""

    def __init__(self, body, shortcut=None, scale=False):
        super().__init__()
        self.body, self.shortcut = torch.nn.Sequential(*body), torch.nn.Sequential(*(shortcut or []))
        self.scale = torch.nn.Parameter(torch.zeros(1)) if scale else None

    def forward(self, x):
        b = self.body(x)
        return self.shortcut(x) + (self.scale * b if self.scale is not None else b)


def loss_fn(kind, out, y):
    return F.cross_entropy(out, y) if kind == "labels" else F.mse_loss(out, y)


def curve(model, sd0, sdT, x, y, kind):
    m = copy.deepcopy(model).double().eval()
    names = [k for k, v in sd0.items() if v.is_floating_point()]
    th0 = {k: sd0[k].double() for k in names}
    d = {k: sdT[k].double() - th0[k] for k in names}
    x, y = x.double(), (y if kind == "labels" else y.double())
    out = []
    with torch.no_grad():
        for a in ALPHAS:
            p = {k: th0[k] + a * d[k] for k in names}
            out.append(loss_fn(kind, functional_call(m, p, (x,)), y).item())
    return out


def export_onnx(model, x, path, opset, fold, preserve=False):
    # preserve: training=TrainingMode.PRESERVE on the eval-mode model, which
    # keeps BatchNormalization nodes (torch 1.13 folds BatchNorm2d into the
    # Conv in every TrainingMode.EVAL export, with or without
    # do_constant_folding).
    m = copy.deepcopy(model).eval()
    mode = torch.onnx.TrainingMode.PRESERVE if preserve else torch.onnx.TrainingMode.EVAL
    torch.onnx.export(m, x[:4], path, opset_version=opset, do_constant_folding=fold, training=mode,
                      input_names=["x"], output_names=["logits"], dynamic_axes={"x": {0: "batch"}})


def main(out):
    torch.manual_seed(0)
    for name, model, spec, shape, kind in models():
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        n = 40
        x = torch.randn([n] + shape)
        y = torch.randint(0, 3, (n,)) if kind == "labels" else torch.randn(n, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
        init_model = copy.deepcopy(model)
        sd0 = copy.deepcopy(model.state_dict())
        opt0 = copy.deepcopy(opt.state_dict())
        model.train()
        for step in range(25):
            opt.zero_grad()
            loss_fn(kind, model(x), y).backward()
            opt.step()
        model.eval()
        sdT = copy.deepcopy(model.state_dict())
        for tag, sd, o, mod in (("init", sd0, opt0, init_model), ("final", sdT, opt.state_dict(), model)):
            for sub in ("plain", "module", "orig_mod", "wrapped", "wrapped_model", "npz", "onnx13", "onnx17"):
                os.makedirs(os.path.join(d, sub), exist_ok=True)
            torch.save(sd, os.path.join(d, "plain", tag + ".pt"))
            torch.save(torch.nn.DataParallel(mod).state_dict(), os.path.join(d, "module", tag + ".pt"))
            torch.save(OrderedDict(("_orig_mod." + k, v) for k, v in sd.items()), os.path.join(d, "orig_mod", tag + ".pt"))
            torch.save({"epoch": 3, "state_dict": sd, "optimizer": o}, os.path.join(d, "wrapped", tag + ".pt"))
            torch.save({"model": sd, "step": 25}, os.path.join(d, "wrapped_model", tag + ".pt"))
            np.savez(os.path.join(d, "npz", tag + ".npz"), **{k: v.numpy() for k, v in sd.items()})
            conv = name in ("cnn_bn", "resnet")
            export_onnx(mod, x, os.path.join(d, "onnx13", tag + ".onnx"), 13, True, preserve=conv)
            export_onnx(mod, x, os.path.join(d, "onnx17", tag + ".onnx"), 17, False, preserve=conv)
            if conv:
                # torch.onnx.export's defaults (evaluation mode): BatchNorm2d
                # folded into the Conv before it (onnx::Conv_N weights).
                os.makedirs(os.path.join(d, "onnx_eval"), exist_ok=True)
                export_onnx(mod, x, os.path.join(d, "onnx_eval", tag + ".onnx"), 13, True)
        # The exports ran the model: check they changed nothing (BatchNorm's
        # running statistics move if a forward pass runs in training mode).
        for k, v in model.state_dict().items():
            assert torch.equal(v, sdT[k]), k
        with open(os.path.join(d, "model.json"), "w") as f:
            json.dump(spec, f, indent=2)
        np.savez(os.path.join(d, "data.npz"), x=x.numpy(), y=y.numpy())
        np.save(os.path.join(d, "x.npy"), x.numpy())
        np.save(os.path.join(d, "y.npy"), y.numpy())
        torch.save({"x": x, "y": y}, os.path.join(d, "data.pt"))
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump({"alphas": ALPHAS, "loss": curve(model, sd0, sdT, x, y, kind),
                       "torch": torch.__version__}, f)
        print("wrote", d, file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
