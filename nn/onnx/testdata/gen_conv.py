#!/usr/bin/python3
"""Writes the convolutional ONNX fixtures of package onnx (Debian's python3-torch 1.13).

  resnet13.onnx, resnet17.onnx  an nn.Sequential with conv2d, batchnorm2d, relu, two
                          RUN_FORMAT.md Residual blocks (a conv shortcut with a BatchNorm2d
                          in the body; the identity shortcut with a scale), maxpool2d,
                          avgpool2d(padding=1) (Pad + AveragePool), and global average
                          pooling (opset 13), plus layernorm at opset 17; exported with
                          training=TrainingMode.PRESERVE on the eval-mode model (keeps
                          BatchNormalization nodes), constant folding on
  resnet.json             the input x, PyTorch's outputs of both (float64 from the float32
                          weights) and the state_dict
  resnet_folded.onnx      resnet13's model exported with the defaults (evaluation mode):
                          BatchNorm2d folded into the Conv before it (onnx::Conv_N)
  group.onnx              Conv2d(2, 2, 3, groups=2): refused naming group
  ceil.onnx               AvgPool2d(2, ceil_mode=True): refused naming ceil_mode
  nopad.onnx              AvgPool2d(3, padding=1, count_include_pad=False): refused
  nested.onnx, nested.json  a residual block whose body holds another (identity shortcut,
                          scale) after a conv, at opset 17, with x and PyTorch's output
                          (`gen_conv.py nested` writes only these)
"""
import copy
import json
from collections import OrderedDict

import torch

torch.manual_seed(1)
nn = torch.nn


class Residual(nn.Module):
    def __init__(self, body, shortcut=None, scale=False):
        super().__init__()
        self.body, self.shortcut = nn.Sequential(*body), nn.Sequential(*(shortcut or []))
        self.scale = nn.Parameter(torch.zeros(1)) if scale else None

    def forward(self, x):
        b = self.body(x)
        return self.shortcut(x) + (self.scale * b if self.scale is not None else b)


def export(m, x, name, opset, preserve=True):
    mode = torch.onnx.TrainingMode.PRESERVE if preserve else torch.onnx.TrainingMode.EVAL
    torch.onnx.export(copy.deepcopy(m).eval(), x, name, opset_version=opset, training=mode,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}})


def net(layernorm):
    layers = [nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(),
              Residual([nn.Conv2d(2, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.ReLU(),
                        nn.Conv2d(3, 3, 3, stride=1, padding=1)], [nn.Conv2d(2, 3, 1)]),
              nn.ReLU(), Residual([nn.Conv2d(3, 3, (3, 1), padding=(1, 0)), nn.Tanh()], scale=True),
              nn.MaxPool2d(2, stride=1), nn.AvgPool2d(2, padding=1)]
    if layernorm:
        layers.append(nn.LayerNorm([3, 3, 3]))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2)]
    m = nn.Sequential(*layers)
    with torch.no_grad():  # move every tensor off its initial value
        for k, v in m.state_dict().items():
            if v.is_floating_point():
                v.add_(0.3 * torch.randn_like(v))
                if "running_var" in k:
                    v.abs_()
    return m.eval()


def main():
    x = torch.randn(3, 1, 6, 6)
    out = {"x": x.double().tolist()}
    for tag, opset, ln in (("resnet13", 13, False), ("resnet17", 17, True)):
        m = net(ln)
        export(m, x, tag + ".onnx", opset)
        if tag == "resnet13":
            export(m, x, "resnet_folded.onnx", 13, preserve=False)
        with torch.no_grad():
            y = copy.deepcopy(m).double()(x.double())
        out[tag] = {"y": y.tolist(), "state_dict": OrderedDict(
            (k, {"shape": list(v.shape), "values": v.double().flatten().tolist()}) for k, v in m.state_dict().items())}
    with open("resnet.json", "w") as f:
        json.dump(out, f)
    x2 = torch.randn(2, 2, 4, 4)
    export(nn.Sequential(nn.Conv2d(2, 2, 3, groups=2), nn.Flatten(), nn.Linear(8, 2)), x2, "group.onnx", 13)
    export(nn.Sequential(nn.AvgPool2d(3, ceil_mode=True), nn.Flatten(), nn.Linear(8, 2)), x2, "ceil.onnx", 13)
    export(nn.Sequential(nn.AvgPool2d(3, padding=1, count_include_pad=False), nn.Flatten(), nn.Linear(8, 2)), x2, "nopad.onnx", 13)


def nested():
    torch.manual_seed(2)
    inner = Residual([nn.Conv2d(2, 2, 3, padding=1), nn.ReLU()], scale=True)
    m = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1),
                      Residual([nn.Conv2d(2, 2, 3, padding=1), nn.Tanh(), inner], [nn.Conv2d(2, 2, 1, bias=False)]),
                      nn.Flatten(), nn.Linear(32, 2))
    with torch.no_grad():
        inner.scale.fill_(0.7)
    x = torch.randn(2, 1, 4, 4)
    export(m, x, "nested.onnx", 17)
    with torch.no_grad():
        y = copy.deepcopy(m).double()(x.double())
    with open("nested.json", "w") as f:
        json.dump({"x": x.double().tolist(), "y": y.tolist(), "keys": list(m.state_dict().keys())}, f)


if __name__ == "__main__":
    import sys
    if sys.argv[1:] == ["nested"]:
        nested()
    else:
        main()
        nested()
