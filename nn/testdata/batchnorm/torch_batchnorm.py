#!/usr/bin/python3
"""Reference trajectories of nn.BatchNorm1d training with PyTorch (Debian python3-torch 1.13).

    /usr/bin/python3 torch_batchnorm.py > torch_batchnorm.json
    go test ./nn -run TestBatchNormWriteState -update-bn   # writes go_state.safetensors
    /usr/bin/python3 torch_batchnorm.py check > go_state_check.json

Everything is float64. Each case is nn.Sequential(Linear, BatchNorm1d, activation, Linear)
with fixed weights (including non-default BatchNorm affine parameters and running
statistics), trained in train mode by torch.optim.SGD(lr=0.1) on fixed batches of
varying size. After every step the script records the train-mode outputs, the loss, the
gradients and the whole state_dict (running statistics and num_batches_tracked included);
at the end it records eval-mode outputs on a separate batch.

`check` loads go_state.safetensors (written by nn.WriteState from the Go replay of case 0)
into the case's model with load_state_dict(strict=True), verifies the key set and that
num_batches_tracked is stored as I64, and records the eval-mode outputs torch computes
from it.
"""
import json
import struct
import sys

import torch

torch.set_default_dtype(torch.float64)
HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."

CASES = [
    dict(name="ce_relu", dims=(4, 5, 3), act="relu", loss="cross_entropy", eps=None, momentum=None,
         batches=[6, 6, 3], eval_n=7, seed=11),
    dict(name="mse_tanh_eps_momentum", dims=(3, 4, 2), act="tanh", loss="mse", eps=1e-3, momentum=0.3,
         batches=[5, 4, 2, 5], eval_n=6, seed=12),
]


def build(c):
    d_in, h, k = c["dims"]
    kw = {}
    if c["eps"] is not None:
        kw["eps"] = c["eps"]
    if c["momentum"] is not None:
        kw["momentum"] = c["momentum"]
    act = torch.nn.ReLU() if c["act"] == "relu" else torch.nn.Tanh()
    return torch.nn.Sequential(torch.nn.Linear(d_in, h), torch.nn.BatchNorm1d(h, **kw), act, torch.nn.Linear(h, k))


def fill(model, seed):
    g = torch.Generator().manual_seed(seed)
    sd = model.state_dict()
    with torch.no_grad():
        for k, v in sd.items():
            if k.endswith("num_batches_tracked"):
                continue
            r = torch.randn(v.shape, generator=g)
            if k == "1.weight":
                v.copy_(1 + 0.3 * r)
            elif k == "1.running_var":
                v.copy_(0.5 + r.abs())
            else:
                v.copy_(0.7 * r)


def state(model):
    return {k: (int(v) if k.endswith("num_batches_tracked") else v.flatten().tolist())
            for k, v in model.state_dict().items()}


def loss_fn(c, out, y):
    if c["loss"] == "mse":
        return torch.nn.functional.mse_loss(out, y)
    return torch.nn.functional.cross_entropy(out, y)


def run(c):
    torch.manual_seed(c["seed"])
    model = build(c)
    fill(model, c["seed"])
    g = torch.Generator().manual_seed(100 + c["seed"])
    d_in, _, k = c["dims"]
    rec = dict(name=c["name"], dims=list(c["dims"]), act=c["act"], loss=c["loss"],
               eps=model[1].eps, momentum=model[1].momentum, init=state(model), steps=[])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for n in c["batches"]:
        x = 1.5 * torch.randn(n, d_in, generator=g) + 0.4
        if c["loss"] == "mse":
            y = torch.randn(n, k, generator=g)
            ylist = y.flatten().tolist()
        else:
            y = torch.randint(0, k, (n,), generator=g)
            ylist = y.tolist()
        opt.zero_grad()
        out = model(x)
        loss = loss_fn(c, out, y)
        loss.backward()
        grads = {name: p.grad.flatten().tolist() for name, p in model.named_parameters()}
        opt.step()
        rec["steps"].append(dict(x=x.flatten().tolist(), y=ylist, out=out.detach().flatten().tolist(),
                                 loss=loss.item(), grads=grads, state=state(model)))
    model.eval()
    x = 1.5 * torch.randn(c["eval_n"], d_in, generator=g) + 0.4
    with torch.no_grad():
        rec["eval_x"] = x.flatten().tolist()
        rec["eval_out"] = model(x).flatten().tolist()
    return rec


def read_safetensors(path):
    with open(path, "rb") as f:
        b = f.read()
    (n,) = struct.unpack("<Q", b[:8])
    header = json.loads(b[8:8 + n])
    data = b[8 + n:]
    dt = {"F64": torch.float64, "F32": torch.float32, "I64": torch.int64}
    out, dtypes = {}, {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        lo, hi = v["data_offsets"]
        t = torch.frombuffer(bytearray(data[lo:hi]), dtype=dt[v["dtype"]]).reshape(v["shape"])
        out[k], dtypes[k] = t, v["dtype"]
    return out, dtypes


def check():
    c = CASES[0]
    model = build(c)
    sd, dtypes = read_safetensors(HERE + "/go_state.safetensors")
    assert set(sd) == set(model.state_dict()), (sorted(sd), sorted(model.state_dict()))
    assert dtypes["1.num_batches_tracked"] == "I64", dtypes
    assert sd["1.num_batches_tracked"].shape == torch.Size([]), sd["1.num_batches_tracked"].shape
    model.load_state_dict(sd, strict=True)
    model.eval()
    ref = run(c)
    x = torch.tensor(ref["eval_x"]).reshape(c["eval_n"], c["dims"][0])
    with torch.no_grad():
        out = model(x).flatten().tolist()
    json.dump(dict(keys=sorted(sd), dtypes=dtypes, num_batches_tracked=int(model[1].num_batches_tracked),
                   eval_out=out), sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    if sys.argv[1:] == ["check"]:
        check()
    else:
        json.dump(dict(torch=torch.__version__, cases=[run(c) for c in CASES]), sys.stdout)
        print()
