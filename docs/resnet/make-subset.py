#!/usr/bin/env python3
"""Write a reduced Fashion-MNIST in idx format for the ResNet study (docs/resnet/README.md).

usage: make-subset.py OUTDIR [SRC] [NTRAIN] [NTEST]

Copies the first NTRAIN (default 1000) training and the first NTEST (default 1000) test
images and labels of Debian's dataset-fashion-mnist (SRC, default
/usr/share/datasets/fashion-mnist) into OUTDIR as gzipped idx files with the same names,
so that `certify train --data fashion-mnist --data-dir OUTDIR` reads them. Only the
count field of each header changes; the bytes of the kept examples are the originals.
"""
import gzip, os, struct, sys

def subset(src, dst, n):
    with gzip.open(src, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * (ndim - 1), data[8:4 + 4 * ndim])
    if n > count:
        sys.exit(f"{src}: has {count} items, asked for {n}")
    item = 1
    for d in dims:
        item *= d
    head = 4 + 4 * ndim
    out = struct.pack(">II", magic, n) + data[8:head] + data[head:head + n * item]
    tmp = dst + ".tmp"
    with gzip.GzipFile(tmp, "wb", mtime=0) as g:
        g.write(out)
    os.replace(tmp, dst)

def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    src = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
    ntrain = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    ntest = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    os.makedirs(out, exist_ok=True)
    for split, n in (("train", ntrain), ("t10k", ntest)):
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{split}-{kind}-ubyte.gz"
            subset(os.path.join(src, name), os.path.join(out, name), n)
    print(f"wrote {out}: {ntrain} training and {ntest} test examples of {src}")

main()
