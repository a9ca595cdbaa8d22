#!/usr/bin/python3
"""Generate the numpy reference fixtures for package npz.

plain.npz       numpy.savez (zip, stored), .npy format 1.0
compressed.npz  numpy.savez_compressed (zip, deflated), same arrays
versions.npz    members written with numpy.lib.format.write_array at format
                versions 1.0, 2.0 and 3.0 (zipfile, deflated)
bad_*.npz       archives that must be refused (see npz_test.go)
expected.json   for each array: numpy dtype string, shape and the values in
                C order as numpy reports them (arr.astype(float64 or int64)
                .ravel(order="C").tolist()); non-finite floats as "inf",
                "-inf", "nan".

Run from this directory:  /usr/bin/python3 gen_fixtures.py
"""
import io
import json
import math
import zipfile

import numpy as np

rng = np.random.default_rng(20240611)
arrays = {
    "0.weight": rng.standard_normal((3, 4)).astype("<f4"),
    "0.bias": rng.standard_normal(3).astype("<f8"),
    "half": np.array([1.0, 65504.0, 2.0 ** -24, -0.0, np.inf, -np.inf, np.nan, 0.1], dtype="<f2"),
    "labels": np.array([0, 9, -3, 2 ** 62], dtype="<i8"),
    "idx": np.array([[1, -2147483648], [2147483647, 0]], dtype="<i4"),
    "scalar": np.array(-2.5, dtype="<f8"),
    "empty": np.zeros((0, 3), dtype="<f4"),
    "fortran": np.asfortranarray(rng.standard_normal((2, 3, 4))),
    "fortran_i4": np.asfortranarray(np.arange(6, dtype="<i4").reshape(2, 3)),
    "big_endian": np.array([1.5, -2.25, 1e300], dtype=">f8"),
    "mask": np.array([True, False, True]),
    "u8": np.array([0, 255], dtype="|u1"),
    "i2": np.array([-32768, 7], dtype="<i2"),
}
assert arrays["fortran"].flags.f_contiguous and not arrays["fortran"].flags.c_contiguous


def val(v):
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
    return v


np.savez("plain.npz", **arrays)
np.savez_compressed("compressed.npz", **arrays)

expected = {}
for k, a in arrays.items():
    wide = a.astype(np.float64 if a.dtype.kind == "f" else np.int64)
    expected[k] = {"descr": a.dtype.str, "shape": list(a.shape),
                   "values": [val(v) for v in wide.ravel(order="C").tolist()]}

def member(name):
    """A zip member with a fixed date, so the fixtures are reproducible."""
    return zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))


versions = {}
with zipfile.ZipFile("versions.npz", "w", compression=zipfile.ZIP_DEFLATED) as z:
    for ver in [(1, 0), (2, 0), (3, 0)]:
        name = "v%d" % ver[0]
        a = rng.standard_normal((2, 2)).astype("<f4")
        buf = io.BytesIO()
        np.lib.format.write_array(buf, a, version=ver)
        assert buf.getvalue()[6] == ver[0]
        z.writestr(member(name + ".npy"), buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
        versions[name] = {"descr": a.dtype.str, "shape": list(a.shape),
                          "values": a.astype(np.float64).ravel().tolist()}


def npy(a, **kw):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, **kw)
    return buf.getvalue()


good = npy(np.arange(4, dtype="<f8"))
bad = {
    "bad_complex.npz": {"z.npy": npy(np.array([1 + 2j]))},
    "bad_structured.npz": {"rec.npy": npy(np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))},
    "bad_truncated.npz": {"w.npy": good[:-3]},
    "bad_magic.npz": {"w.npy": b"\x93NUMPX" + good[6:]},
    "bad_extra.npz": {"w.npy": good + b"\x00" * 8},
    "bad_member.npz": {"w.npy": good, "notes.txt": b"hello"},
}
for fname, members in bad.items():
    with zipfile.ZipFile(fname, "w") as z:
        for m, b in members.items():
            z.writestr(member(m), b)
with open("bad_notzip.npz", "wb") as f:
    f.write(b"this is not a zip archive")

with open("expected.json", "w") as f:
    json.dump({"arrays": expected, "order": list(arrays), "versions": versions}, f, indent=1)
    f.write("\n")
