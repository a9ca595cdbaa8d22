#!/usr/bin/python3
"""torchref: an independent PyTorch oracle for certify's run directories.

Given a run directory (RUN_FORMAT.md: model.json, init.safetensors,
final.safetensors, data.safetensors with x and y), it builds the
torch.nn.Sequential described by model.json in float64 (or float32 with
--dtype float32: model, θ0, θT, δ, inputs, α and every operation, the loss's
mean included), loads θ0 and θT with
load_state_dict(strict=True) (so the files certify writes load into PyTorch
unchanged), and prints JSON with, for every α of the grid, along
θα = θ0 + α(θT − θ0) (THEORY.md §1):

  loss      torch.nn.functional.cross_entropy / mse_loss, mean reduction (§4)
  accuracy  fraction of examples whose arg-max output is the label

and with --derivs:

  output, velocity, acceleration   γ, γ′, γ″ per example [N, K], by nested
                                   forward-mode AD (functorch.jvp of
                                   α ↦ functional_call(model, θ0 + αδ, x)) (§2)
  dloss, d2loss                    dL/dα, d²L/dα² by the same nesting (§4)
  gauss_length_mean_trapezoid      mean over examples of ∫‖T′‖ dα by the
                                   trapezoid rule on the grid (the paper's value)
  gauss_length_stacked_trapezoid   the same for the stacked path Γ (§3)

with ‖T′‖ = ‖a − (⟨a,v⟩/‖v‖²) v‖ / ‖v‖ (= sqrt(‖a‖²‖v‖² − ⟨a,v⟩²)/‖v‖²,
without the cancellation), 0 where v = 0.

At a kink (a ReLU input exactly 0, a max-pool window with tied maxima) the
derivatives are THEORY.md §2's one-sided ones for α increasing (RightReLU,
RightMaxPool2d), not torch's relu′(0) = 0 / first-index rule: the two differ
at α = 0 of BatchNorm nets on images with blank backgrounds.

This is an oracle for certify's Go code: it shares no code with it. Safetensors
files are parsed and written by hand (no safetensors package here).

  torchref.py RUN_DIR [--alphas 0,0.5,1 | --grid 50] [--derivs] [--no-paths]
                      [--time] [--threads N] [--dtype float64|float32]
                      [--one-pass] [--chunk N] [--examples N]
                      [--bn interpolate|recompute] [--bn-reference N]
  torchref.py --make-fixture OUT_DIR      write testdata/torchref/mlp-* and cnn-* runs

Run it with /usr/bin/python3 (Debian's torch 1.13 with functorch).
"""

import argparse
import json
import os
import struct
import sys
import time

# Debian's torch calls libblas.so.3 (OpenBLAS, pthreads) from inside its own
# intra-op threads (torch.set_num_threads, --threads): slow_conv2d's
# parallel_for over the batch calls one GEMM per image, and OpenBLAS's own
# threads on top of torch's oversubscribe the cores and spin; on the shared
# 2-core machine that inflated torchref's CPU time 1.7× on a resnet-20
# (docs/performance.md, "The paper-method ratio after the fix"). PyTorch's
# MKL builds tie the BLAS threads to torch's; here the BLAS is pinned to one
# thread per torch thread unless the caller set OPENBLAS_NUM_THREADS
# (it must be set before the library loads).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _keep_large_blocks():
    """glibc serves every block above its mmap threshold (≤ 32 MiB) by a fresh mmap and
    unmaps it on free, so each of the nested jvp's large intermediate tensors is
    page-faulted in anew (a resnet-20 on 100 examples: 1.8 million minor faults and
    13.5 s of system time per α). Serve them from the heap and never trim it, as
    jemalloc/tcmalloc setups of PyTorch do: 29.6 → 23.5 s of CPU per α there, the
    same values bit for bit. Skipped where libc has no mallopt."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        # mallopt's value is a C int: ctypes masks a larger Python int to its
        # low 32 bits (1 << 62 became 0, trim at every free: the heap was
        # returned to the kernel and page-faulted back all the time).
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, (1 << 31) - 1)  # M_TRIM_THRESHOLD, the largest int
    except (OSError, AttributeError):
        pass


_keep_large_blocks()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import functorch  # noqa: E402
import torch.autograd.forward_ad as fwAD  # noqa: E402
from torch.nn.utils.stateless import functional_call  # noqa: E402

# ---------------------------------------------------------------------------
# safetensors, by hand: 8-byte little-endian header length N, N bytes of JSON
# header {name: {dtype, shape, data_offsets}}, then raw little-endian data.

_NP = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4"}


def read_safetensors(path):
    """Returns {name: numpy array} (BF16 widened exactly to float32)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        buf, dt, shape = data[lo:hi], info["dtype"], info["shape"]
        if dt == "BF16":
            bits = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif dt in _NP:
            arr = np.frombuffer(buf, dtype=_NP[dt])
        else:
            raise ValueError(f"{path}: {name}: unsupported dtype {dt}")
        out[name] = arr.reshape(shape).copy()
    return out


def write_safetensors(path, tensors):
    """Writes {name: (numpy array, dtype)}; dtype is one of F64 F32 F16 BF16 I64 I32."""
    header, chunks, off = {}, [], 0
    for name in sorted(tensors):
        arr, dt = tensors[name]
        if dt == "BF16":  # round to nearest even from float32
            b = np.ascontiguousarray(arr, dtype="<f4").view(np.uint32)
            b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype("<u2")
            blob = b.tobytes()
        else:
            blob = np.ascontiguousarray(arr, dtype=_NP[dt]).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape),
                        "data_offsets": [off, off + len(blob)]}
        chunks.append(blob)
        off += len(blob)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


# ---------------------------------------------------------------------------
# model.json → torch.nn.Sequential (RUN_FORMAT.md layer types)

class EvalBatchNorm1d(torch.nn.BatchNorm1d):
    """BatchNorm1d in evaluation mode written out, (x − μ)/√(σ² + eps)·w + b:
    torch's batch_norm kernel refuses forward-mode derivatives with respect to
    the running statistics, which move along the line under the interpolate
    policy. Same state_dict as torch.nn.BatchNorm1d."""

    def forward(self, x):
        return (x - self.running_mean) / torch.sqrt(self.running_var + self.eps) * self.weight + self.bias


class WrittenLayerNorm(torch.nn.LayerNorm):
    """LayerNorm written out, (x − μ)/√(v + eps)·w + b over the trailing
    dimensions (v biased): torch 1.13's native_layer_norm forward-mode rule is
    not differentiable again, so nested jvp gives a wrong γ″ through it (off
    from central differences of γ′ by ~10%). The value is checked against
    torch.nn.LayerNorm's on every call. Same state_dict as torch.nn.LayerNorm."""

    def forward(self, x):
        dims = tuple(range(-len(self.normalized_shape), 0))
        mu = x.mean(dim=dims, keepdim=True)
        v = ((x - mu) ** 2).mean(dim=dims, keepdim=True)
        y = (x - mu) / torch.sqrt(v + self.eps)
        if self.elementwise_affine:
            y = y * self.weight + self.bias
        if not torch.allclose(y, super().forward(x), rtol=1e-12, atol=1e-12):
            raise AssertionError("WrittenLayerNorm: value differs from torch.nn.LayerNorm")
        return y


class EvalBatchNorm2d(torch.nn.BatchNorm2d):
    """BatchNorm2d in evaluation mode written out per channel (see
    EvalBatchNorm1d) as torch's own inference kernel computes it: a per-channel
    scale s = w/√(σ² + eps) and shift t = b − μ·s, then y = x·s + t, so the
    nested jvp makes two passes over the [N, C, H, W] tensor, not four (the
    (x − μ)/√(σ² + eps)·w + b form cost 4–8% of a resnet-20's jvp). Same
    state_dict as torch.nn.BatchNorm2d; outside a jvp (the loss pass) its
    value is checked against torch.nn.BatchNorm2d's evaluation mode on every
    call. Inside one it is not: torch refuses batch_norm with forward-mode
    tangents on the running statistics, but only after computing it, which
    had cost another 3% of the jvp."""

    def forward(self, x):
        c = lambda t: t.reshape(1, -1, 1, 1)
        s = self.weight / torch.sqrt(self.running_var + self.eps)
        y = x * c(s) + c(self.bias - self.running_mean * s)
        if fwAD.unpack_dual(x).tangent is not None:
            return y  # inside a jvp
        try:
            ref = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        except RuntimeError:
            return y  # inside a jvp whose input carries no tangent
        if not torch.allclose(y, ref, rtol=1e-12, atol=1e-12):
            raise AssertionError("EvalBatchNorm2d: value differs from torch.nn.BatchNorm2d")
        return y


class RecomputeBatchNorm(torch.nn.Module):
    """Mixin of bn_policy "recompute" (THEORY.md §2, §9): the statistics are those of
    the batch's first `reference` rows (certify's reference batch, the first
    BNReference evaluation examples), mean and biased variance per feature (1d) or
    per channel over (N, H, W) (2d), written out so that nested functorch.jvp
    differentiates them along α; every row of the batch is normalised with them.
    Outside a jvp the reference rows' output is checked against torch's own
    training-mode F.batch_norm on those rows. The running statistics are in the
    state_dict (strict loading) but unused."""

    reference = 0

    def forward(self, x):
        r = x[:self.reference] if self.reference else x
        dims = (0,) if x.dim() == 2 else (0, 2, 3)
        shape = (1, -1) if x.dim() == 2 else (1, -1, 1, 1)
        mu = r.mean(dim=dims, keepdim=True)
        var = ((r - mu) ** 2).mean(dim=dims, keepdim=True)
        y = (x - mu) / torch.sqrt(var + self.eps) * self.weight.reshape(shape) + self.bias.reshape(shape)
        if fwAD.unpack_dual(x).tangent is None:
            try:
                ref = F.batch_norm(r, None, None, self.weight, self.bias, True, 0.0, self.eps)
            except RuntimeError:
                return y  # inside a jvp (tangents on the parameters)
            if not torch.allclose(y[:r.shape[0]], ref, rtol=1e-12, atol=1e-12):
                raise AssertionError("RecomputeBatchNorm: value differs from torch's training-mode batch_norm")
        return y


class RecomputeBatchNorm1d(RecomputeBatchNorm, torch.nn.BatchNorm1d):
    """batchnorm1d under bn_policy recompute (RecomputeBatchNorm)."""
    forward = RecomputeBatchNorm.forward


class RecomputeBatchNorm2d(RecomputeBatchNorm, torch.nn.BatchNorm2d):
    """batchnorm2d under bn_policy recompute (RecomputeBatchNorm)."""
    forward = RecomputeBatchNorm.forward


class RightReLU(torch.nn.LeakyReLU):
    """ReLU (slope 0) or leaky ReLU with THEORY.md §2's one-sided rule at a
    kink: where the input z is exactly 0, the derivative is the one for α
    increasing, taken from the sign of ż (slope 1 if ż > 0, else the negative
    slope). torch's own rule (relu′(0) = 0, leaky_relu′(0) = slope) is neither
    one-sided derivative, and exact zeros are common at α = 0 of a BatchNorm
    net: with the running statistics at their reset (0, 1) and β = 0, an
    all-zero input patch (image background) reaches a ReLU as exactly 0.
    Inside nested functorch.jvp, fwAD.unpack_dual exposes the inner tangent ż;
    the output is z·m with m ∈ {slope, 1} a constant mask, so the value is
    bit for bit torch's. Where z = ż = 0 the right derivative depends on z̈,
    which is not exposed: m = 1 there and the units are counted in
    zero_velocity_ties (reported as relu_zero_velocity_ties; γ″ through a
    unit with z = ż = 0 and z̈ < 0 would differ from certify's). Same
    state_dict as torch.nn.ReLU / LeakyReLU (none)."""

    zero_velocity_ties = 0

    def forward(self, x):
        u = fwAD.unpack_dual(x)
        if u.tangent is None:
            return super().forward(x)
        z, zd = u.primal, u.tangent
        up = (z > 0) | ((z == 0) & (zd >= 0))
        RightReLU.zero_velocity_ties += int(((z == 0) & (zd == 0)).sum().item())
        one = torch.ones((), dtype=x.dtype)
        return x * torch.where(up, one, one * self.negative_slope)


class RightMaxPool2d(torch.nn.MaxPool2d):
    """MaxPool2d with THEORY.md §9's tie rule: of the inputs of a window
    equal to its maximum, the one with the largest velocity ż is selected
    (the right-derivative for α increasing; the first such in PyTorch's window
    order when velocities tie too). torch's own max_pool2d takes the first
    maximal input whatever its velocity; ties are common at α = 0 (windows of
    ReLU zeros). Outside a jvp it is torch.nn.MaxPool2d; inside, the window is
    unfolded (−inf padding) and the selected input gathered, so the value is
    the maximum exactly. Windows where two maximal inputs also tie in velocity
    (certify then compares accelerations, not exposed here) are counted in
    velocity_ties (reported as maxpool_velocity_ties)."""

    velocity_ties = 0

    def forward(self, x):
        u = fwAD.unpack_dual(x)
        if u.tangent is None or self.dilation not in (1, (1, 1)) or self.ceil_mode:
            return super().forward(x)
        kh, kw = pair2(self.kernel_size)
        sh, sw = pair2(self.stride)
        ph, pw = pair2(self.padding)
        n, c, h, w = x.shape
        ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1

        def windows(t, fill):
            t = F.pad(t, (pw, pw, ph, ph), value=fill)
            return F.unfold(t, (kh, kw), stride=(sh, sw)).reshape(n, c, kh * kw, ho * wo)

        z = windows(u.primal, float("-inf"))
        zd = windows(u.tangent, 0.0)
        top = z == z.max(dim=2, keepdim=True).values
        score = torch.where(top, zd, torch.full_like(zd, float("-inf")))
        best = score.max(dim=2, keepdim=True).values
        RightMaxPool2d.velocity_ties += int(((score == best).sum(dim=2) > 1).sum().item())
        pick = score.argmax(dim=2, keepdim=True)
        return windows(x, float("-inf")).gather(2, pick).reshape(n, c, ho, wo)


def pair2(v):
    """An int-or-pair size as a pair."""
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def pair(v):
    """model.json's int-or-[h, w] sizes as PyTorch's tuple."""
    return tuple(v) if isinstance(v, list) else v


class Residual(torch.nn.Module):
    """RUN_FORMAT.md's residual block, verbatim: out = shortcut(x) + scale·body(x)
    (the shortcut an nn.Sequential, empty = identity; scale a learnable [1]
    gain, initialised to 0, when scale=True). Its state_dict is the format's
    nested keys: i.scale, i.body.j.…, i.shortcut.j.…"""

    def __init__(self, body, shortcut=None, scale=False):
        super().__init__()
        self.body, self.shortcut = torch.nn.Sequential(*body), torch.nn.Sequential(*(shortcut or []))
        self.scale = torch.nn.Parameter(torch.zeros(1)) if scale else None

    def forward(self, x):
        b = self.body(x)
        return self.shortcut(x) + (self.scale * b if self.scale is not None else b)


def build_layers(layers, width, where="layers", bn="interpolate"):
    """The modules of a list of model.json layers and the width after them; BatchNorm
    follows bn ("interpolate": evaluation mode, running statistics moving along the line;
    "recompute": RecomputeBatchNorm)."""
    mods = []
    for i, l in enumerate(layers):
        t = l["type"]
        if t == "linear":
            width = l["out"]
            m = torch.nn.Linear(l["in"], l["out"], bias=l.get("bias", True))
        elif t == "relu":
            m = RightReLU(0.0)
        elif t == "leaky_relu":
            m = RightReLU(l.get("slope", 0.01))
        elif t == "tanh":
            m = torch.nn.Tanh()
        elif t == "sigmoid":
            m = torch.nn.Sigmoid()
        elif t == "gelu":
            m = torch.nn.GELU(approximate=l.get("approximate") or "none")
        elif t == "softplus":
            m = torch.nn.Softplus(beta=l.get("beta", 1), threshold=l.get("threshold", 20))
        elif t == "identity":
            m = torch.nn.Identity()
        elif t == "flatten":
            m = torch.nn.Flatten()
        elif t == "batchnorm1d":
            c = l.get("features") or l.get("in") or l.get("out") or width
            cls = RecomputeBatchNorm1d if bn == "recompute" else EvalBatchNorm1d
            m = cls(c, eps=l.get("eps", 1e-5), momentum=l.get("momentum", 0.1))
        elif t == "layernorm":
            m = WrittenLayerNorm(l.get("shape") or [width], eps=l.get("eps", 1e-5),
                                 elementwise_affine=l.get("affine", True))
        elif t == "conv2d":
            m = torch.nn.Conv2d(l["in"], l["out"], pair(l["kernel"]), stride=pair(l.get("stride", 1)),
                                padding=pair(l.get("padding", 0)), bias=l.get("bias", True))
        elif t == "maxpool2d":
            m = RightMaxPool2d(pair(l["kernel"]), stride=pair(l.get("stride", l["kernel"])),
                                   padding=pair(l.get("padding", 0)))
        elif t == "avgpool2d":
            m = torch.nn.AvgPool2d(pair(l["kernel"]), stride=pair(l.get("stride", l["kernel"])),
                                   padding=pair(l.get("padding", 0)))
        elif t == "adaptive_avgpool2d":
            m = torch.nn.AdaptiveAvgPool2d(pair(l["output"]))
        elif t == "batchnorm2d":
            cls = RecomputeBatchNorm2d if bn == "recompute" else EvalBatchNorm2d
            m = cls(l["features"], eps=l.get("eps", 1e-5), momentum=l.get("momentum", 0.1))
        elif t == "residual":
            body, bw = build_layers(l["body"], width, f"{where}[{i}].body", bn)
            short, sw = build_layers(l.get("shortcut") or [], width, f"{where}[{i}].shortcut", bn)
            m = Residual(body, short, scale=l.get("scale", False))
            width = bw
        else:
            raise ValueError(f"model.json: {where}[{i}]: unsupported type {t!r}")
        mods.append(m)
    return mods, width


def build(spec, dtype=torch.float64, bn="interpolate"):
    if spec.get("format") != "sequential/v1":
        raise ValueError(f"model.json: format {spec.get('format')!r}")
    mods, _ = build_layers(spec["layers"], None, bn=bn)
    # Evaluation mode: BatchNorm normalises with its running statistics, which
    # are interpolated with the other tensors (bn_policy "interpolate").
    return torch.nn.Sequential(*mods).to(dtype).eval()


def load_run(d, dtype=torch.float64, bn="interpolate"):
    """The run in dtype: floating tensors are read as float64 and rounded once."""
    with open(os.path.join(d, "model.json")) as f:
        spec = json.load(f)
    model = build(spec, dtype, bn)
    states = []
    for name in ("init.safetensors", "final.safetensors"):
        sd = {k: (torch.from_numpy(v.astype(np.int64)) if v.dtype.kind in "iu"
                  else torch.from_numpy(v.astype(np.float64)).to(dtype))
              for k, v in read_safetensors(os.path.join(d, name)).items()}
        model.load_state_dict(sd, strict=True)  # proves the keys and shapes
        states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    data = read_safetensors(os.path.join(d, "data.safetensors"))
    x = torch.from_numpy(data["x"].astype(np.float64)).to(dtype)
    x = x.reshape([x.shape[0]] + list(spec["input_shape"]))
    y = data["y"]
    y = torch.from_numpy(y.astype(np.int64)) if y.dtype.kind == "i" else torch.from_numpy(y.astype(np.float64)).to(dtype)
    return spec, model, states[0], states[1], x, y


# ---------------------------------------------------------------------------
# The loss of model.json with PyTorch's mean reduction (THEORY.md §4)

def make_loss(kind, y, k, dtype=torch.float64, reduction="mean"):
    if kind == "cross_entropy":
        return lambda out: F.cross_entropy(out, y)
    target = F.one_hot(y, k).to(dtype) if y.dtype == torch.int64 else y
    if reduction == "sum":
        # model.json loss_reduction "sum": the per-example summed squared
        # error, averaged over the examples (THEORY.md §11).
        return lambda out: F.mse_loss(out, target, reduction="sum") / out.shape[0]
    return lambda out: F.mse_loss(out, target)


def accuracy(out, y):
    want = y if y.dtype == torch.int64 else y.argmax(dim=1)
    return (out.argmax(dim=1) == want).double().mean().item()


def turning_rate(v, a):
    """‖T′‖ = ‖a⊥‖/‖v‖ per row of v, a [N, K] (THEORY.md §3); 0 where v = 0."""
    vv = (v * v).sum(dim=1)
    va = (v * a).sum(dim=1)
    c = torch.where(vv > 0, va / torch.where(vv > 0, vv, torch.ones_like(vv)), torch.zeros_like(vv))
    perp = a - c[:, None] * v
    r = perp.norm(dim=1) / vv.sqrt()
    return torch.where(vv > 0, r, torch.zeros_like(r))


def trapezoid(alphas, f):
    return sum((alphas[j] - alphas[j - 1]) / 2 * (f[j] + f[j - 1]) for j in range(1, len(alphas)))


def evaluate(d, alphas, derivs, paths, timing, dtype=torch.float64, bn="interpolate", bn_reference=256,
             one_pass=False, chunk=0, examples=0):
    """The JSON of the module docstring for the run in d, and the times of its passes
    (wall "*_seconds" and process CPU "*_cpu_seconds", all threads; "start_cpu_seconds"
    is the CPU spent before this call: import and start-up).

    one_pass: the loss and accuracy are those of the nested jvp's own forward values
    (its aux γ and L at every α) and the separate no-grad loss pass is skipped: what a
    PyTorch user computing the paper's method (loss, accuracy, trapezoid Gauss length)
    runs, one nested jvp per α. Without it the no-grad pass gives "loss" and the jvp's
    L is reported apart as "loss_jvp", an independent check of each other.

    chunk: examples per nested jvp (0: all at once); the per-example γ, γ′, γ″ are
    concatenated and L, L′, L″ combined as example-weighted means, so the results are
    those of one batch up to summation order. Refused under bn "recompute", whose
    statistics are those of the batch's first rows.

    examples: evaluate the first that many examples of the run's data (0: all), as
    certify --examples does."""
    cpu_start = time.process_time()
    spec, model, theta0, thetaT, x, y = load_run(d, dtype, bn)
    if examples < 0 or examples > x.shape[0]:
        raise ValueError(f"examples {examples}: the run's data holds {x.shape[0]}")
    if examples:
        x, y = x[:examples], y[:examples]
    n_ex = x.shape[0]
    if chunk < 0:
        raise ValueError(f"chunk {chunk}: want 0 (all examples at once) or a positive count")
    chunk = n_ex if chunk == 0 else min(chunk, n_ex)
    if bn == "recompute" and chunk < n_ex:
        raise ValueError(f"chunk {chunk} < {n_ex} examples: bn recompute normalises with the batch's first rows, "
                         "so the examples must be evaluated in one batch")
    if bn == "recompute":  # the reference batch: the first bn_reference examples (all if fewer)
        for m in model.modules():
            if isinstance(m, RecomputeBatchNorm):
                m.reference = min(bn_reference, n_ex)
    # Every floating tensor moves along the line: parameters and BatchNorm's
    # running statistics; num_batches_tracked (an integer buffer) does not.
    names = [n for n, v in theta0.items() if v.is_floating_point()]
    delta = {n: thetaT[n] - theta0[n] for n in names}
    th0 = {n: theta0[n] for n in names}
    res = {"run": os.path.basename(os.path.normpath(d)), "torch": torch.__version__,
           "loss_kind": spec["loss"], "examples": int(n_ex), "alphas": alphas,
           "dtype": str(dtype).replace("torch.", ""), "bn_policy": bn}
    if bn == "recompute":
        res["bn_reference"] = min(bn_reference, int(n_ex))
    spans = [(s, min(s + chunk, n_ex)) for s in range(0, n_ex, chunk)]

    def gamma(alpha, xs=x):  # γ(α) = f(xs; θ0 + αδ), [n, K]
        return functional_call(model, {n: th0[n] + alpha * delta[n] for n in names}, (xs,))

    with torch.no_grad():  # the output width, for the loss's one-hot targets
        k = gamma(torch.tensor(0.0, dtype=dtype), x[:1]).shape[1]
    losses = [make_loss(spec["loss"], y[s:e], k, dtype, spec.get("loss_reduction", "mean")) for s, e in spans]

    def mean_of(parts):  # the mean over all examples of per-chunk means (one chunk: itself)
        if len(parts) == 1:
            return parts[0]
        return sum(p * (e - s) for p, (s, e) in zip(parts, spans)) / n_ex

    # one_pass: no loss pass, 0 s (not the clock's noise between two readings)
    times = {"start_cpu_seconds": cpu_start, "loss_seconds": 0.0, "loss_cpu_seconds": 0.0}
    if not one_pass:
        t0, c0 = time.perf_counter(), time.process_time()
        loss, acc = [], []
        with torch.no_grad():
            for a in alphas:
                al = torch.tensor(a, dtype=dtype)
                out = torch.cat([gamma(al, x[s:e]) for s, e in spans])
                loss.append(mean_of([f(out[s:e]) for f, (s, e) in zip(losses, spans)]).item())
                acc.append(accuracy(out, y))
        res["loss"], res["accuracy"] = loss, acc
        times.update({"loss_seconds": time.perf_counter() - t0, "loss_cpu_seconds": time.process_time() - c0})
    if not (derivs or timing or one_pass):
        return res, times

    one = torch.tensor(1.0, dtype=dtype)

    def first(alpha, xs, loss_fn):  # ((γ′, L′), aux (γ, L)) by one forward-mode pass
        def f(al):
            out = gamma(al, xs)
            return out, loss_fn(out)
        (out, l), (v, dl) = functorch.jvp(f, (alpha,), (one,))
        return (v, dl), (out, l)

    cols = {k: [] for k in ("output", "velocity", "acceleration", "dloss", "d2loss", "loss_jvp")}
    rate, srate, acc_jvp = [], [], []
    ties = {"relu_zero_velocity_ties": [], "maxpool_velocity_ties": []}
    t2, c2 = time.perf_counter(), time.process_time()
    for a in alphas:
        al = torch.tensor(a, dtype=dtype)
        RightReLU.zero_velocity_ties = RightMaxPool2d.velocity_ties = 0
        part = {k: [] for k in ("v", "acc2", "out", "dl", "d2l", "l")}
        for (s, e), loss_fn in zip(spans, losses):
            (v, dl), (acc2, d2l), (out, l) = functorch.jvp(lambda t: first(t, x[s:e], loss_fn), (al,), (one,),
                                                          has_aux=True)
            for k_, t_ in zip(part, (v, acc2, out, dl, d2l, l)):
                part[k_].append(t_)
        v, acc2, out = (torch.cat(part[k_]) for k_ in ("v", "acc2", "out"))
        ties["relu_zero_velocity_ties"].append(RightReLU.zero_velocity_ties)
        ties["maxpool_velocity_ties"].append(RightMaxPool2d.velocity_ties)
        cols["output"].append(out)
        cols["velocity"].append(v)
        cols["acceleration"].append(acc2)
        cols["dloss"].append(mean_of(part["dl"]).item())
        cols["d2loss"].append(mean_of(part["d2l"]).item())
        cols["loss_jvp"].append(mean_of(part["l"]).item())
        acc_jvp.append(accuracy(out, y))
        rate.append(turning_rate(v, acc2))
        srate.append(turning_rate(v.reshape(1, -1), acc2.reshape(1, -1))[0].item())
    gmean = trapezoid(alphas, [r.mean().item() for r in rate]) if len(alphas) > 1 else 0.0
    # The mean of per-example integrals, as an explicit per-example trapezoid.
    per = trapezoid(alphas, rate) if len(alphas) > 1 else torch.zeros(n_ex)
    gstack = trapezoid(alphas, srate) if len(alphas) > 1 else 0.0
    t3, c3 = time.perf_counter(), time.process_time()
    times.update({"gauss_seconds": t3 - t2, "gauss_cpu_seconds": c3 - c2})
    if one_pass:  # the jvp's forward values are the loss and accuracy
        res["loss"], res["accuracy"] = cols["loss_jvp"], acc_jvp
    res["one_pass"], res["chunk"] = one_pass, chunk
    res["dloss"], res["d2loss"] = cols["dloss"], cols["d2loss"]
    res["loss_jvp"] = cols["loss_jvp"]  # L from the AD pass: a self-check of "loss"
    res["gauss_length_mean_trapezoid"] = float(per.mean()) if len(alphas) > 1 else 0.0
    res["gauss_length_mean_trapezoid_check"] = gmean
    res["gauss_length_stacked_trapezoid"] = gstack
    res["turning_rate_stacked"] = srate
    # Kinks the one-sided rules could not resolve from (z, ż) alone, per α
    # (RightReLU, RightMaxPool2d): 0 means γ″ follows THEORY.md's rule exactly.
    res.update(ties)
    if paths:
        res["turning_rate"] = [r.tolist() for r in rate]
        for k_ in ("output", "velocity", "acceleration"):
            res[k_] = [t.tolist() for t in cols[k_]]
    return res, times


# ---------------------------------------------------------------------------
# --make-fixture: tiny seeded runs covering every layer type (not made by Go)

FIXTURES = [
    # cross_entropy, I64 labels, F64 checkpoints; a real flatten of [N, 1, 5].
    dict(name="mlp-tanh-gelutanh-leaky", seed=1, input_shape=[1, 5], n=12, loss="cross_entropy",
         layers=[{"type": "flatten"}, {"type": "linear", "in": 5, "out": 7}, {"type": "tanh"},
                 {"type": "linear", "in": 7, "out": 6}, {"type": "gelu", "approximate": "tanh"},
                 {"type": "leaky_relu", "slope": 0.2}, {"type": "linear", "in": 6, "out": 3}],
         wdtype=("F64", "F64"), xdtype="F64", ydtype="I64"),
    # mse with float targets [N, K], F32 checkpoints and data; a linear without bias.
    # Large weights put some of softplus's β·z above its threshold (its linear branch).
    dict(name="mlp-sigmoid-softplus-gelu", seed=2, input_shape=[5], n=12, loss="mse", wscale=3.0,
         layers=[{"type": "linear", "in": 5, "out": 7}, {"type": "sigmoid"},
                 {"type": "linear", "in": 7, "out": 6, "bias": False},
                 {"type": "softplus", "beta": 2.0, "threshold": 5.0},
                 {"type": "gelu", "approximate": "none"}, {"type": "linear", "in": 6, "out": 3},
                 {"type": "identity"}],
         wdtype=("F32", "F32"), xdtype="F32", ydtype="F64"),
    # relu and default leaky_relu, mse on I32 labels (one-hot), BF16 θ0 and F16 θT.
    dict(name="mlp-relu-leaky-mse", seed=3, input_shape=[5], n=16, loss="mse",
         layers=[{"type": "linear", "in": 5, "out": 7}, {"type": "relu"},
                 {"type": "linear", "in": 7, "out": 6}, {"type": "leaky_relu"},
                 {"type": "linear", "in": 6, "out": 3}],
         wdtype=("BF16", "F16"), xdtype="F64", ydtype="I32"),
    # batchnorm1d in evaluation mode (running statistics interpolated), mse on F64 targets.
    dict(name="mlp-batchnorm-tanh", seed=4, input_shape=[5], n=10, loss="mse",
         layers=[{"type": "linear", "in": 5, "out": 6}, {"type": "batchnorm1d", "in": 6},
                 {"type": "tanh"}, {"type": "linear", "in": 6, "out": 3}],
         wdtype=("F64", "F64"), xdtype="F64", ydtype="F64"),
    # layernorm with affine parameters (moving along the line) and without.
    dict(name="mlp-layernorm-relu", seed=5, input_shape=[5], n=10, loss="cross_entropy",
         layers=[{"type": "linear", "in": 5, "out": 6}, {"type": "layernorm", "shape": [6]},
                 {"type": "relu"}, {"type": "linear", "in": 6, "out": 4},
                 {"type": "layernorm", "shape": [4], "eps": 0.01, "affine": False}, {"type": "tanh"},
                 {"type": "linear", "in": 4, "out": 3}],
         wdtype=("F64", "F64"), xdtype="F64", ydtype="I64"),
    # a small CNN: conv2d (padding, no bias), relu, maxpool2d, conv2d (stride 2), flatten, linear.
    dict(name="cnn-conv-relu-maxpool", seed=6, input_shape=[2, 7, 7], n=8, loss="cross_entropy",
         layers=[{"type": "conv2d", "in": 2, "out": 3, "kernel": 3, "padding": 1, "bias": False},
                 {"type": "relu"}, {"type": "maxpool2d", "kernel": 2},
                 {"type": "conv2d", "in": 3, "out": 4, "kernel": [2, 3], "stride": 2}, {"type": "tanh"},
                 {"type": "flatten"}, {"type": "linear", "in": 4, "out": 3}],
         wdtype=("F64", "F64"), xdtype="F64", ydtype="I64"),
    # batchnorm2d (running statistics interpolated), avgpool2d with padding,
    # adaptive_avgpool2d to [2, 1], mse on F64 targets.
    dict(name="cnn-batchnorm-avgpool", seed=7, input_shape=[1, 6, 6], n=8, loss="mse",
         layers=[{"type": "conv2d", "in": 1, "out": 3, "kernel": 3},
                 {"type": "batchnorm2d", "features": 3}, {"type": "tanh"},
                 {"type": "avgpool2d", "kernel": 3, "stride": 1, "padding": 1},
                 {"type": "adaptive_avgpool2d", "output": [2, 1]}, {"type": "flatten"},
                 {"type": "linear", "in": 6, "out": 2}],
         wdtype=("F64", "F64"), xdtype="F64", ydtype="F64"),
    # RUN_FORMAT's Residual module in nn.Sequential: one block with a bias-free
    # linear shortcut and a scale gain (moving along the line), a ReLU inside
    # its body and one after it; one identity-shortcut block without scale
    # whose body ends in batchnorm1d.
    dict(name="mlp-residual-relu", seed=6, input_shape=[5], n=10, loss="mse",
         layers=[{"type": "linear", "in": 5, "out": 6},
                 {"type": "residual", "scale": True,
                  "body": [{"type": "linear", "in": 6, "out": 7}, {"type": "relu"},
                           {"type": "linear", "in": 7, "out": 6}],
                  "shortcut": [{"type": "linear", "in": 6, "out": 6, "bias": False}]},
                 {"type": "relu"},
                 {"type": "residual",
                  "body": [{"type": "linear", "in": 6, "out": 6}, {"type": "tanh"},
                           {"type": "linear", "in": 6, "out": 6}, {"type": "batchnorm1d", "in": 6}]},
                 {"type": "linear", "in": 6, "out": 3}],
         wdtype=("F64", "F64"), xdtype="F64", ydtype="F64"),
    # bn_policy recompute (statistics of the first 6 of the 9 examples at every α,
    # differentiated along α) with batchnorm2d before, inside and after a residual
    # block: in its body and in its strided 1×1 conv shortcut, the resnet pattern;
    # ReLU inside the block and a max-pool after it.
    dict(name="cnn-residual-bn-recompute", seed=8, input_shape=[2, 6, 6], n=9, loss="cross_entropy",
         bn="recompute", bn_reference=6,
         layers=[{"type": "conv2d", "in": 2, "out": 3, "kernel": 3, "padding": 1, "bias": False},
                 {"type": "batchnorm2d", "features": 3}, {"type": "relu"},
                 {"type": "residual",
                  "body": [{"type": "conv2d", "in": 3, "out": 4, "kernel": 3, "stride": 2, "padding": 1, "bias": False},
                           {"type": "batchnorm2d", "features": 4}, {"type": "relu"},
                           {"type": "conv2d", "in": 4, "out": 4, "kernel": 3, "padding": 1, "bias": False},
                           {"type": "batchnorm2d", "features": 4}],
                  "shortcut": [{"type": "conv2d", "in": 3, "out": 4, "kernel": 1, "stride": 2, "bias": False},
                               {"type": "batchnorm2d", "features": 4}]},
                 {"type": "relu"}, {"type": "maxpool2d", "kernel": 3},
                 {"type": "flatten"}, {"type": "linear", "in": 4, "out": 3}],
         wdtype=("F64", "F64"), xdtype="F64", ydtype="I64"),
]

FIXTURE_ALPHAS = [0.0, 0.3, 0.5, 1.0, 1.2]


def draw_tensors(rng, fx, layers, prefix, scale, dt, ts):
    """Draws the tensors of layers into ts under prefix ("" or "1.body."), in
    model order, descending into residual blocks (their scale first, as in
    PyTorch's state_dict)."""
    for i, l in enumerate(layers):
        if l["type"] in ("batchnorm1d", "batchnorm2d"):
            c = l.get("in") or l["features"]
            ts[f"{prefix}{i}.weight"] = (1 + rng.normal(0, 0.2, c), dt)
            ts[f"{prefix}{i}.bias"] = (rng.normal(0, 0.2, c), dt)
            ts[f"{prefix}{i}.running_mean"] = (rng.normal(0, 0.5, c), dt)
            ts[f"{prefix}{i}.running_var"] = (np.exp(rng.normal(0, 0.3, c)), dt)
            ts[f"{prefix}{i}.num_batches_tracked"] = (np.array(int(7 * scale)), "I64")
            continue
        if l["type"] == "layernorm":
            if l.get("affine", True):
                ts[f"{prefix}{i}.weight"] = (1 + rng.normal(0, 0.3, l["shape"]), dt)
                ts[f"{prefix}{i}.bias"] = (rng.normal(0, 0.3, l["shape"]), dt)
            continue
        if l["type"] == "residual":
            if l.get("scale", False):
                ts[f"{prefix}{i}.scale"] = (rng.normal(0, 0.6, 1), dt)
            draw_tensors(rng, fx, l["body"], f"{prefix}{i}.body.", scale, dt, ts)
            draw_tensors(rng, fx, l.get("shortcut") or [], f"{prefix}{i}.shortcut.", scale, dt, ts)
            continue
        if l["type"] == "conv2d":
            kh, kw = (l["kernel"], l["kernel"]) if isinstance(l["kernel"], int) else l["kernel"]
            s = scale / np.sqrt(l["in"] * kh * kw)
            ts[f"{prefix}{i}.weight"] = (rng.normal(0, s, (l["out"], l["in"], kh, kw)), dt)
            if l.get("bias", True):
                ts[f"{prefix}{i}.bias"] = (rng.normal(0, s, (l["out"],)), dt)
            continue
        if l["type"] != "linear":
            continue
        s = scale * fx.get("wscale", 1.0) / np.sqrt(l["in"])
        ts[f"{prefix}{i}.weight"] = (rng.normal(0, s, (l["out"], l["in"])), dt)
        if l.get("bias", True):
            ts[f"{prefix}{i}.bias"] = (rng.normal(0, s, (l["out"],)), dt)


def make_fixture(out_dir, only=None):
    for fx in FIXTURES:
        if only and fx["name"] not in only:
            continue
        rng = np.random.default_rng(fx["seed"])
        d = os.path.join(out_dir, fx["name"])
        os.makedirs(d, exist_ok=True)
        spec = {"format": "sequential/v1", "input_shape": fx["input_shape"],
                "layers": fx["layers"], "loss": fx["loss"]}
        with open(os.path.join(d, "model.json"), "w") as f:
            json.dump(spec, f, indent=2)
            f.write("\n")
        k = [l for l in fx["layers"] if l["type"] == "linear"][-1]["out"]
        for fname, dt, scale in (("init.safetensors", fx["wdtype"][0], 1.0),
                                 ("final.safetensors", fx["wdtype"][1], 2.0)):
            ts = {}
            draw_tensors(rng, fx, fx["layers"], "", scale, dt, ts)
            write_safetensors(os.path.join(d, fname), ts)
        n = fx["n"]
        x = rng.normal(0, 1.5, [n] + fx["input_shape"])
        if fx["ydtype"] == "F64":
            y = rng.normal(0, 1, (n, k))
        else:
            y = rng.integers(0, k, n)
        write_safetensors(os.path.join(d, "data.safetensors"),
                          {"x": (x, fx["xdtype"]), "y": (y, fx["ydtype"])})
        res, _ = evaluate(d, FIXTURE_ALPHAS, derivs=True, paths=True, timing=False,
                          bn=fx.get("bn", "interpolate"), bn_reference=fx.get("bn_reference", 256))
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump(res, f)
            f.write("\n")
        print(f"wrote {d}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", nargs="?", help="run directory")
    ap.add_argument("--alphas", help="comma-separated α list, e.g. 0,0.5,1")
    ap.add_argument("--grid", type=int, default=50, help="number of equally spaced α in [0,1] (default 50)")
    ap.add_argument("--derivs", action="store_true", help="γ, γ′, γ″, L′, L″ and trapezoid Gauss lengths")
    ap.add_argument("--no-paths", action="store_true", help="omit per-example γ, γ′, γ″ and ‖T′‖")
    ap.add_argument("--time", action="store_true", help="print wall times (implies the Gauss-length pass)")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                    help="floating-point format of the whole computation (default float64)")
    ap.add_argument("--bn", choices=["interpolate", "recompute"], default="interpolate",
                    help="BatchNorm along the line: interpolate (evaluation mode, running statistics "
                         "moving with the weights) or recompute (statistics of the reference batch "
                         "at every α, differentiated; certify's --bn recompute)")
    ap.add_argument("--bn-reference", type=int, default=256,
                    help="--bn recompute: the reference batch is the first N examples (default 256)")
    ap.add_argument("--one-pass", action="store_true",
                    help="loss and accuracy from the nested jvp's own forward values, no separate no-grad "
                         "loss pass: the paper's method as one nested jvp per α (implies --derivs)")
    ap.add_argument("--chunk", type=int, default=0,
                    help="examples per nested jvp (default 0: all at once; refused under --bn recompute)")
    ap.add_argument("--examples", type=int, default=0,
                    help="evaluate the first N examples of the run's data (default 0: all)")
    ap.add_argument("--make-fixture", metavar="OUT_DIR", help="write the seeded fixture runs")
    ap.add_argument("--only", help="with --make-fixture: comma-separated fixture names to write")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.make_fixture:
        make_fixture(a.make_fixture, a.only.split(",") if a.only else None)
        return
    if not a.run:
        ap.error("a run directory is required")
    if a.alphas:
        alphas = [float(s) for s in a.alphas.split(",")]
    else:
        alphas = np.linspace(0, 1, a.grid).tolist()
    dtype = {"float64": torch.float64, "float32": torch.float32}[a.dtype]
    res, times = evaluate(a.run, alphas, a.derivs or a.one_pass, not a.no_paths, a.time, dtype, a.bn,
                          a.bn_reference, one_pass=a.one_pass, chunk=a.chunk, examples=a.examples)
    if a.time:
        res.update(times)
        res["threads"] = torch.get_num_threads()
        res["openblas_threads"] = os.environ.get("OPENBLAS_NUM_THREADS")
        print(json.dumps(times), file=sys.stderr)
    json.dump(res, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
