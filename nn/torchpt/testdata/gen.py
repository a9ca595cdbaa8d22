#!/usr/bin/python3
"""Writes the torch.save fixtures of package torchpt (run with Debian's python3-torch).

  tensors.pt         an OrderedDict of tensors covering every storage dtype the
                     reader knows, a parameter, a transposed (non-contiguous)
                     view, a view with a storage offset, two tensors sharing one
                     storage, an integer scalar buffer; pickle protocol 2
  tensors_proto4.pt  the same with pickle_protocol=4 (FRAME, MEMOIZE, short strings)
  expected.json      every tensor of tensors.pt: dtype, shape, values as float64
  evil.pt            a zip archive whose data.pkl would call os.system in Python
                     (a __reduce__ returning (os.system, ("touch MARKER",)))
  legacy.pt          the pre-1.6 format (_use_new_zipfile_serialization=False)
  module.pt          torch.save(model): a pickled nn.Module
"""
import json
import os
from collections import OrderedDict

import torch

MARKER = "/tmp/certify_torchpt_evil_marker"


class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + MARKER,))


def main():
    torch.manual_seed(0)
    base = torch.randn(4, 3)
    sd = OrderedDict()
    sd["p"] = torch.nn.Parameter(torch.randn(2, 3))
    sd["f64"] = torch.randn(3, dtype=torch.float64)
    sd["f16"] = torch.randn(2, 2).to(torch.float16)
    sd["bf16"] = torch.randn(5).to(torch.bfloat16)
    sd["i32"] = torch.tensor([-7, 0, 2**31 - 1], dtype=torch.int32)
    sd["u8"] = torch.tensor([0, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False])
    sd["num_batches_tracked"] = torch.tensor(25)
    sd["transposed"] = base.t()           # [3, 4], strides (1, 3)
    sd["offset"] = base[1:3]              # [2, 3], storage offset 3
    sd["shared"] = base[3]                # [3], the same storage again
    sd["empty"] = torch.zeros(0, 4)
    for name, proto in (("tensors.pt", 2), ("tensors_proto4.pt", 4)):
        torch.save(sd, name, pickle_protocol=proto)
    exp = OrderedDict()
    for k, v in sd.items():
        exp[k] = {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape),
                  "values": v.detach().double().flatten().tolist(),
                  "parameter": isinstance(v, torch.nn.Parameter)}
    with open("expected.json", "w") as f:
        json.dump(exp, f, indent=1)
    torch.save({"0.weight": Evil()}, "evil.pt")
    torch.save(OrderedDict(w=torch.ones(2)), "legacy.pt", _use_new_zipfile_serialization=False)
    torch.save(torch.nn.Linear(2, 1), "module.pt")


if __name__ == "__main__":
    main()
