#!/usr/bin/python3
"""Generate torch_multistep.json: torch.optim.SGD with momentum and weight decay under
torch.optim.lr_scheduler.MultiStepLR, scheduler.step() at the end of every epoch of
STEPS_PER_EPOCH steps, on the objective of torch_optim.py (same gradient, same
operation order). Run with /usr/bin/python3 torch_multistep.py > torch_multistep.json.
"""
import json
import sys

import torch

from torch_optim import X0, B, rosen_grad, split

torch.set_default_dtype(torch.float64)

EPOCHS, STEPS_PER_EPOCH = 7, 3
CASES = [
    dict(name="sgd_momentum_wd_multistep", lr=0.05, momentum=0.9, weight_decay=5e-4,
         milestones=[2, 4, 4, 6], gamma=0.1),
    dict(name="sgd_nesterov_multistep", lr=0.03, momentum=0.8, nesterov=True, weight_decay=1e-3,
         milestones=[1, 3], gamma=0.3),
]


def run(c):
    params = [torch.tensor(t) for t in X0]
    opt = torch.optim.SGD(params, lr=c["lr"], momentum=c["momentum"],
                          weight_decay=c["weight_decay"], nesterov=c.get("nesterov", False))
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=c["milestones"], gamma=c["gamma"])
    lrs, traj = [], []
    for _ in range(EPOCHS):
        lrs.append(opt.param_groups[0]["lr"])
        for _ in range(STEPS_PER_EPOCH):
            flat = [v for p in params for v in p.tolist()]
            g = split(rosen_grad(flat))
            for p, gi in zip(params, g):
                p.grad = torch.tensor(gi)
            opt.step()
            traj.append([p.tolist() for p in params])
        sched.step()
    return dict(c, lrs=lrs, params=traj)


json.dump({"torch_version": torch.__version__, "B": B, "x0": X0, "epochs": EPOCHS,
           "steps_per_epoch": STEPS_PER_EPOCH, "cases": [run(c) for c in CASES]}, sys.stdout)
sys.stdout.write("\n")
