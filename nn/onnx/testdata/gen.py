#!/usr/bin/python3
"""Writes the ONNX fixtures of package onnx (run with Debian's python3-torch 1.13).

  mlp13.onnx, mlp17.onnx  an nn.Sequential MLP with every supported layer, exported
                          at opsets 13 (constant folding) and 17 (no folding: a
                          Transpose node feeds the bias-free linear's MatMul)
  mlp.json                the input x and PyTorch's output, in float64 from the
                          float32 weights, and the MLP's state_dict
  mlp.pt, mlp_module.pt   torch.save(mlp.state_dict()), and nn.DataParallel's ("module." keys)
  mlp_data.npz            x and integer labels y for the MLP
  mlp_train.onnx          the MLP (a deep copy) exported with training=TrainingMode.TRAINING
                          at opset 14: BatchNormalization with training_mode=1, whose
                          running statistics the export's forward pass on x updated
  conv.onnx, maxpool.onnx, avgpool.onnx, gap.onnx, layernorm.onnx, residual.onnx,
  scale.onnx, softmax.onnx  graphs the import must refuse, naming the operator
  silu.onnx, layernorm13.onnx, logsoftmax.onnx  more of those (SiLU as Sigmoid·x,
                          LayerNorm at opset 13 as ReduceMean…, LogSoftmax last)
  drop.onnx, drop.json    Linear, Dropout, Linear(bias=False), ReLU, Linear exported with
                          torch.onnx.export's defaults (constant folding: the bias-free
                          weight becomes onnx::MatMul_N), and its layer types and state_dict
"""
import copy
import json
from collections import OrderedDict

import torch

torch.manual_seed(0)


def export(m, x, name, opset=13, fold=True):
    torch.onnx.export(m.eval(), x, name, opset_version=opset, do_constant_folding=fold,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}})


class Residual(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(4, 4)

    def forward(self, x):
        return x + self.body(x)


class Scale(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.full((1,), 0.5))

    def forward(self, x):
        return self.scale * x


def main():
    mlp = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(6, 7), torch.nn.BatchNorm1d(7), torch.nn.ReLU(),
        torch.nn.Linear(7, 6), torch.nn.GELU(), torch.nn.Linear(6, 5, bias=False),
        torch.nn.LeakyReLU(0.2), torch.nn.Linear(5, 5), torch.nn.Tanh(), torch.nn.Linear(5, 4),
        torch.nn.Sigmoid(), torch.nn.Linear(4, 4), torch.nn.Softplus(), torch.nn.Linear(4, 3))
    mlp.train()
    mlp(torch.randn(32, 2, 3) * 2 + 0.5)  # move the running statistics
    mlp.eval()
    x = torch.randn(5, 2, 3)
    export(mlp, x, "mlp13.onnx", 13, True)
    export(mlp, x, "mlp17.onnx", 17, False)
    torch.onnx.export(copy.deepcopy(mlp), x, "mlp_train.onnx", opset_version=14, do_constant_folding=False,
                      training=torch.onnx.TrainingMode.TRAINING,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}})
    with torch.no_grad():
        y = mlp.double()(x.double())
    sd = OrderedDict((k, {"shape": list(v.shape), "values": v.double().flatten().tolist()})
                     for k, v in mlp.state_dict().items())
    torch.save(mlp.float().state_dict(), "mlp.pt")
    torch.save(torch.nn.DataParallel(mlp).state_dict(), "mlp_module.pt")
    import numpy as np
    np.savez("mlp_data.npz", x=x.numpy(), y=np.array([0, 1, 2, 1, 0]))
    with open("mlp.json", "w") as f:
        json.dump({"x": x.double().tolist(), "y": y.tolist(), "state_dict": sd}, f)
    x4 = torch.randn(2, 1, 4, 4)
    export(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(8, 2)), x4, "conv.onnx")
    export(torch.nn.Sequential(torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4, 2)), x4, "maxpool.onnx")
    export(torch.nn.Sequential(torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4, 2)), x4, "avgpool.onnx")
    export(torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(1, 2)), x4, "gap.onnx")
    x2 = torch.randn(3, 4)
    export(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4)), x2, "layernorm.onnx", 17)
    export(torch.nn.Sequential(torch.nn.Linear(4, 4), Residual()), x2, "residual.onnx")
    export(torch.nn.Sequential(torch.nn.Linear(4, 4), Scale()), x2, "scale.onnx")
    export(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Softmax(dim=1)), x2, "softmax.onnx")
    export(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.SiLU(), torch.nn.Linear(4, 2)), x2, "silu.onnx")
    export(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4)), x2, "layernorm13.onnx", 13)
    export(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LogSoftmax(dim=1)), x2, "logsoftmax.onnx")
    drop = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Dropout(0.1), torch.nn.Linear(5, 3, bias=False),
                               torch.nn.ReLU(), torch.nn.Linear(3, 2)).eval()
    torch.onnx.export(drop, x2, "drop.onnx")  # the defaults a user types
    types = {torch.nn.Linear: "linear", torch.nn.Dropout: "identity", torch.nn.ReLU: "relu"}
    with open("drop.json", "w") as f:
        json.dump({"types": [types[type(m)] for m in drop],
                   "state_dict": {k: v.double().flatten().tolist() for k, v in drop.state_dict().items()}}, f)


if __name__ == "__main__":
    main()
