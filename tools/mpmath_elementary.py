#!/usr/bin/env python3
"""Reference values of the interval package's elementary functions (issue 18).

Writes interval/testdata/elementary_mpmath.txt.gz: for every function, 10,000
points x = s * ldexp(1 + f/1024, e) (exact in float64, so the Go test rebuilds
the same x from the same integers) and f(x) to 25 significant digits,
computed by mpmath at 256 bits. Run: python3 tools/mpmath_elementary.py
(Debian: python3-mpmath).
"""
import gzip
import math

import mpmath as mp

mp.mp.prec = 256

N = 10000

# name, signed, emin, emax, function (of an mpf)
FUNCS = [
    ("exp", True, -40, 9, mp.exp),
    ("expm1", True, -60, 9, mp.expm1),
    ("log", False, -1022, 1023, mp.log),
    ("log1p", True, -60, 60, mp.log1p),  # negative x only when |x| < 1 (see point)
    ("tanh", True, -60, 9, mp.tanh),
    ("sigmoid", True, -60, 10, lambda x: 1 / (1 + mp.exp(-x))),
    ("softplus", True, -60, 10, lambda x: mp.log1p(mp.exp(x))),
    ("normcdf", True, -40, 6, lambda x: mp.ncdf(x)),
    ("normpdf", True, -40, 6, lambda x: mp.npdf(x)),
]


def point(name, signed, emin, emax, i):
    """The i-th point (the Go test's stressPoint)."""
    s = -1.0 if signed and i % 2 == 1 else 1.0
    e = emin + ((i // 2) * 7919) % (emax - emin + 1)
    f = (i * 613) % 1024
    if name == "log1p" and s < 0 and e >= 0:
        e = -1 - (e % 60)  # keep x > −1
    return s * math.ldexp(1 + f / 1024, e)


def main():
    with gzip.open("interval/testdata/elementary_mpmath.txt.gz", "wt") as out:
        for name, signed, emin, emax, fn in FUNCS:
            out.write(f"# {name} {int(signed)} {emin} {emax} {N}\n")
            for i in range(N):
                x = point(name, signed, emin, emax, i)
                v = fn(mp.mpf(x))
                out.write(mp.nstr(v, 25, min_fixed=1, max_fixed=0) + "\n")


main()
