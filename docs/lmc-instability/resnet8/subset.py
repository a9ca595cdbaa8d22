# First N images and labels of Fashion-MNIST's idx files (the Debian package's), same format.
import gzip, os, struct, sys
src, dst, ntrain, ntest = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
os.makedirs(dst, exist_ok=True)
for split, n in (("train", ntrain), ("t10k", ntest)):
    for kind, per in (("images-idx3-ubyte", 28 * 28), ("labels-idx1-ubyte", 1)):
        b = gzip.open(f"{src}/{split}-{kind}.gz").read()
        hdr = 16 if per > 1 else 8
        out = b[:4] + struct.pack(">I", n) + b[8:hdr] + b[hdr:hdr + n * per]
        gzip.open(f"{dst}/{split}-{kind}.gz", "wb").write(out)
