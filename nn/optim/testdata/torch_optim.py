#!/usr/bin/python3
"""Generate torch_optim.json: reference trajectories of torch.optim optimizers.

Run with Debian's python3-torch 1.13 (/usr/bin/python3 torch_optim.py > torch_optim.json).
Everything is float64. The objective is a chained Rosenbrock-like function of the
concatenation x of three parameter tensors (lengths 3, 2 and 19):

    f(x) = sum_k 0.5*(k+1)*(x_k - 1)^2 + B * sum_{k<n-1} (x_{k+1} - x_k^2)^2,  B = 0.5,

and its gradient is evaluated in plain Python floats in exactly the operation order used
by the Go test (optim_test.go, rosenGrad), so both sides feed bit-identical gradients to
the optimizer whenever they hold bit-identical parameters.
"""
import json
import math
import sys

import torch

torch.set_default_dtype(torch.float64)

B = 0.5
# Two small tensors (ATen's scalar loop) and one of 19 elements (two passes of its
# AVX2 loop over 8 doubles, plus a scalar tail).
X0 = [[-1.2, 1.0, 0.5], [0.3, -0.7], [0.9 * math.sin(1.7 * k + 0.3) for k in range(19)]]
STEPS = 20


def rosen_grad(x):
    n = len(x)
    g = []
    for k in range(n):
        v = float(k + 1) * (x[k] - 1.0)
        if k < n - 1:
            v = v - 4.0 * B * x[k] * (x[k + 1] - x[k] * x[k])
        if k > 0:
            v = v + 2.0 * B * (x[k] - x[k - 1] * x[k - 1])
        g.append(v)
    return g


def split(flat):
    out, i = [], 0
    for t in X0:
        out.append(flat[i:i + len(t)])
        i += len(t)
    return out


CASES = [
    dict(name="sgd_plain", optimizer="sgd", lr=0.01),
    dict(name="sgd_momentum", optimizer="sgd", lr=0.01, momentum=0.9),
    dict(name="sgd_dampening", optimizer="sgd", lr=0.01, momentum=0.9, dampening=0.3),
    dict(name="sgd_nesterov", optimizer="sgd", lr=0.01, momentum=0.9, nesterov=True),
    dict(name="sgd_weight_decay", optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4),
    dict(name="sgd_nesterov_weight_decay", optimizer="sgd", lr=0.02, momentum=0.8,
         nesterov=True, weight_decay=0.05),
    dict(name="adam_default", optimizer="adam"),
    dict(name="adam_lr_weight_decay", optimizer="adam", lr=0.05, weight_decay=1e-2),
    dict(name="adam_betas_eps", optimizer="adam", lr=0.03, betas=[0.8, 0.99], eps=1e-3),
    dict(name="adam_amsgrad", optimizer="adam", lr=0.05, amsgrad=True),
    dict(name="adamw_default", optimizer="adamw"),
    dict(name="adamw_lr", optimizer="adamw", lr=0.05, weight_decay=0.1, amsgrad=True),
]


def make(case, params):
    o = case["optimizer"]
    if o == "sgd":
        return torch.optim.SGD(params, lr=case["lr"], momentum=case.get("momentum", 0.0),
                               dampening=case.get("dampening", 0.0),
                               weight_decay=case.get("weight_decay", 0.0),
                               nesterov=case.get("nesterov", False), foreach=False)
    kw = {}
    for k in ("lr", "eps", "weight_decay", "amsgrad"):
        if k in case:
            kw[k] = case[k]
    if "betas" in case:
        kw["betas"] = tuple(case["betas"])
    if o == "adam":
        return torch.optim.Adam(params, foreach=False, **kw)
    if o == "adamw":
        return torch.optim.AdamW(params, foreach=False, **kw)
    raise ValueError(o)


def run(case):
    params = [torch.tensor(t, dtype=torch.float64) for t in X0]
    opt = make(case, params)
    traj, grads = [], []
    for _ in range(STEPS):
        x = [v for p in params for v in p.tolist()]
        traj.append(split(x))
        g = rosen_grad(x)
        grads.append(split(g))
        for p, gi in zip(params, split(g)):
            p.grad = torch.tensor(gi, dtype=torch.float64)
        opt.step()
    traj.append([p.tolist() for p in params])
    # Final optimizer state in torch's state_dict layout: state[i][name].
    state = {}
    sd = opt.state_dict()["state"]
    for i, st in sd.items():
        for name, val in st.items():
            if val is None:  # SGD without momentum stores momentum_buffer=None
                continue
            state["%d.%s" % (i, name)] = [float(v) for v in val.reshape(-1).tolist()]
    g = opt.param_groups[0]
    hyper = {k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()
             if k in ("lr", "momentum", "dampening", "weight_decay", "nesterov",
                      "betas", "eps", "amsgrad")}
    return dict(name=case["name"], optimizer=case["optimizer"], hyper=hyper,
                params=traj, grads=grads, state=state)


def main():
    out = dict(torch_version=torch.__version__, B=B, x0=X0, steps=STEPS,
               cases=[run(c) for c in CASES])
    # One line per case keeps the fixture small and its diffs readable per case.
    cases = out.pop("cases")
    head = json.dumps(out)
    sys.stdout.write(head[:-1] + ', "cases": [\n')
    sys.stdout.write(",\n".join(json.dumps(c) for c in cases))
    sys.stdout.write("\n]}\n")


if __name__ == "__main__":
    main()
