#!/usr/bin/python3
"""Generate the PyTorch reference fixtures for package safetensors.

Debian has no python3-safetensors, so the file is assembled by hand from the
format's definition (8-byte little-endian header length N, N bytes of JSON,
raw little-endian data), with every element's bytes produced by torch itself
(tensor.numpy().tobytes() / .view(torch.int16) for F16 and BF16).
The values torch reports for each tensor, converted by torch to float64
(tensor.to(torch.float64).tolist()), go to torch_state.json; non-finite values
are written as the strings "inf", "-inf", "nan".

torch_exhaustive.json holds SHA-256 digests of the float64 bit patterns that
torch gives for all 65536 F16 and all 65536 BF16 bit patterns (NaNs
canonicalised to 0x7ff8000000000000), so the Go decoders are checked
exhaustively against torch without committing 1 MB of values.

torch_f32.safetensors holds a subset (F32, I64, I32 only) laid out as the
reference writer lays it out, for checking the Go writer byte for byte.

Run from this directory:  /usr/bin/python3 gen_fixtures.py
"""
import hashlib
import json
import math
import struct

import torch

torch.manual_seed(20240611)

SIZE = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4,
        "F16": 2, "BF16": 2, "I16": 2, "U16": 2, "I8": 1, "U8": 1, "BOOL": 1}
TORCH = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
         "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
         "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


def raw(t, dtype):
    t = t.contiguous()
    if dtype == "BF16":
        # numpy has no bfloat16: reinterpret torch's own bf16 bits as int16.
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().tobytes()  # little-endian host (x86-64)


def pyval(v):
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
    if isinstance(v, bool):
        return int(v)
    return v


specials16 = [1.0, 65504.0, 2.0 ** -24, 2.0 ** -14, -0.0, 0.0, math.inf, -math.inf,
              math.nan, -2.0, 0.333251953125, 3 * 2.0 ** -24, 1023 * 2.0 ** -24]
specialsbf = [1.0, -0.0, math.inf, -math.inf, math.nan, 3.3895313892515355e38,
              2.0 ** -133, 1.1754943508222875e-38, 0.1, -7.5]

tensors = {
    "0.weight": torch.randn(3, 4).to(torch.float32),
    "0.bias": torch.randn(3).to(torch.float32),
    "1.running_mean": torch.randn(3, dtype=torch.float64),
    "1.running_var": torch.rand(3, dtype=torch.float64) + 0.5,
    "1.num_batches_tracked": torch.tensor(937, dtype=torch.int64),  # shape []
    "labels": torch.tensor([0, 9, 3, -1, 2147483647], dtype=torch.int32),
    "big": torch.tensor([[-(2 ** 63), 2 ** 63 - 1], [1, -2]], dtype=torch.int64),
    "half": torch.cat([torch.tensor(specials16, dtype=torch.float64),
                       torch.randn(11, dtype=torch.float64) * 100]).to(torch.float16),
    "bhalf": torch.cat([torch.tensor(specialsbf, dtype=torch.float64),
                        torch.randn(6, dtype=torch.float64) * 1e5]).to(torch.bfloat16).reshape(2, 8),
    "i8": torch.tensor([-128, -1, 0, 127], dtype=torch.int8),
    "u8": torch.tensor([0, 1, 255], dtype=torch.uint8),
    "i16": torch.tensor([[-32768], [32767]], dtype=torch.int16),
    "mask": torch.tensor([True, False, True]),
    "empty": torch.zeros(0, 3, dtype=torch.float32),
    "scalar": torch.tensor(-2.5, dtype=torch.float64),
    "conv.weight": torch.randn(2, 1, 3, 3).to(torch.float32),
}
dtype_of = {v: k for k, v in TORCH.items()}

# Layout as the reference (Rust) writer does it: larger element size first, then name.
order = sorted(tensors, key=lambda n: (-SIZE[dtype_of[tensors[n].dtype]], n))
header = {"__metadata__": {"format": "pt", "source": "gen_fixtures.py"}}
data = b""
expect = {}
for name in order:
    t = tensors[name]
    dt = dtype_of[t.dtype]
    b = raw(t, dt)
    assert len(b) == t.numel() * SIZE[dt]
    header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [len(data), len(data) + len(b)]}
    data += b
    if t.dtype.is_floating_point:
        vals = t.to(torch.float64).flatten().tolist()
    else:
        vals = t.to(torch.int64).flatten().tolist()
    expect[name] = {"dtype": dt, "shape": list(t.shape), "values": [pyval(v) for v in vals]}

hjson = json.dumps(header, separators=(",", ":")).encode()
hjson += b" " * (-len(hjson) % 8)
with open("torch_state.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(hjson)) + hjson + data)
with open("torch_state.json", "w") as f:
    json.dump({"order": order, "metadata": header["__metadata__"], "tensors": expect}, f, indent=1)
    f.write("\n")

# A second file holding only what certify itself writes by default (F32
# parameters, integer buffers in their own dtype), laid out like the
# reference writer; the Go writer must reproduce it byte for byte.
small = {n: tensors[n] for n in ["0.weight", "0.bias", "conv.weight", "empty",
                                 "1.num_batches_tracked", "labels"]}
order = sorted(small, key=lambda n: (-SIZE[dtype_of[small[n].dtype]], n))
header = {"__metadata__": {"format": "pt"}}
data = b""
for name in order:
    t = small[name]
    dt = dtype_of[t.dtype]
    b = raw(t, dt)
    header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [len(data), len(data) + len(b)]}
    data += b
hjson = json.dumps(header, separators=(",", ":")).encode()
hjson += b" " * (-len(hjson) % 8)
with open("torch_f32.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(hjson)) + hjson + data)


def digest(t16, dtype):
    x = t16.view(dtype).to(torch.float64)
    x = torch.where(torch.isnan(x), torch.tensor(math.nan, dtype=torch.float64), x)
    bits = x.view(torch.int64).numpy()
    bits[bits == struct.unpack("<q", struct.pack("<d", math.nan))[0]] = 0x7FF8000000000000
    return hashlib.sha256(bits.astype("<i8").tobytes()).hexdigest()


allbits = torch.arange(65536, dtype=torch.int32).to(torch.int16)  # wraps: bit patterns 0..0xffff
with open("torch_exhaustive.json", "w") as f:
    json.dump({"comment": "sha256 of little-endian float64 bits of torch's conversion of bit patterns 0..65535, NaN -> 0x7ff8000000000000",
               "torch": torch.__version__,
               "F16": digest(allbits, torch.float16), "BF16": digest(allbits, torch.bfloat16)}, f, indent=1)
    f.write("\n")
