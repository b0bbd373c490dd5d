"""The AVX-512 lanes' float32 reciprocal (lanes_odd_quotients_f32 in csrc/scaled_lanes_avx512.h)
against the numpy path, bit for bit, on the inputs where it could go wrong.

Where a block's scale S is a float32 in [2^-126, 2^100] (the FP32 scales of fp8_block128,
fp8_block128x128 and fp8_tensor, and NVFP4 blocks whose E4M3 x FP32 product happens to be a
float32), the AVX-512 copy takes RO32(x / S) from x (hi + lo), the split float32 reciprocal, and
the sign of one fused multiply-add, instead of float64 lanes.  This file puts, for random S of
every exponent the path takes and around its cut-offs (2^-126, 2^100; 2^-103 - E_S and 2^-110
for the quotient), inputs at, one ulp and two ulps either side of every element value and
midpoint times S, quotients around the smallest kept one, float32 subnormals, +-0, and random
values, through every deterministic rounding mode and compares every code, scale, count and
value with scaled._encode_numpy / _quantize_numpy (numpy around the element codec, no
scaled.c).  It runs on whichever copy the CPU picks (the lanes on AVX-512 CPUs); with the
reciprocal lanes broken (one of hi or lo dropped, the tiny cut-off ignored) it fails.
"""
import numpy as np
import pytest

import fmtlab as fl
from reference import max_value, sorted_magnitudes
from test_scaled_c import assert_same

DETERMINISTIC = ("nearest_even", "nearest_away", "toward_zero", "up", "down", "odd")
FORMATS = ("fp8_block128", "fp8_block128x128", "fp8_tensor", "nvfp4",
           "e2m1fn:block=32,scale=fp32,rule=amax", "e5m2:block=16,scale=fp32,rule=amax",
           "e3m2fn:block=64,scale=fp32,rule=amax")


def block_width(sf):
    block = sf.block
    if isinstance(block, tuple):
        return block[-1]
    return block if isinstance(block, int) else 128


def boundary_row(sf, amax, width, rng):
    """One row of a block: amax first (it fixes S = RN32(amax / element max) for rule amax), then
    points m S for element values and midpoints m, 0, 1 and 2 float32 ulps either side, both signs,
    tiny quotients around 2^-110 and 2^-103 - E_S, subnormals and zeros."""
    element = sf.element
    top = float(max_value(element))
    magnitudes = [float(v) for v in sorted_magnitudes(element) if 0 < v <= top]
    points = sorted(set(magnitudes) | {(a + b) / 2 for a, b in zip(magnitudes, magnitudes[1:])})
    s = np.float64(np.float32(amax / top))
    row = [np.float32(amax)]
    while len(row) < width:
        kind = rng.integers(6)
        if kind <= 2:
            target = np.float32(rng.choice(points) * s)
            for step in range(-2, 3):
                value = target
                for _ in range(abs(step)):
                    value = np.nextafter(value, np.float32(np.inf if step > 0 else 0))
                row.append(value if rng.integers(2) else -value)
        elif kind == 3:
            exponent = int(rng.integers(-115, -98)) if rng.integers(2) else -103 - int(np.floor(np.log2(s)))
            value = np.float32(s * 2.0 ** exponent * (1 + rng.random()))
            row += [value, -np.nextafter(value, np.float32(0))]
        elif kind == 4:
            row += [np.float32(rng.choice([1e-45, 3e-42, 1.1e-38, 0.0, -0.0]))]
        else:
            row += [np.float32(rng.standard_normal() * amax / 3)]
    values = np.array(row[:width], np.float32)
    np.clip(values, -amax, amax, out=values)
    return values


def amax_values(rng, count):
    """Block maxima whose S = amax / element max spans the path and its cut-offs."""
    exponents = np.concatenate([rng.integers(-135, 128, count - 12),
                                [-126, -125, -124, -128, -118, -117, 99, 100, 101, 107, 108, 109]])
    return [float(np.float32((1 + rng.random()) * 2.0 ** int(e))) for e in exponents]


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_float32_reciprocal_lanes_match_the_numpy_path(name, mode):
    sf = fl.format(name)
    rng = np.random.default_rng(abs(hash((name, mode))) % 2**32)
    width = max(block_width(sf), 32)
    top = float(max_value(sf.element))
    if sf.block == "tensor":
        for amax in amax_values(rng, 20):  # one S per tensor: one tensor per amax
            amax = float(np.float32(min(amax * top, 3.0e38)))
            row = boundary_row(sf, amax, 256, rng)
            assert_same(row.reshape(2, 128), sf, mode)
        return
    rows = []
    for amax in amax_values(rng, 40):
        with np.errstate(over="ignore"):
            amax = float(np.float32(min(amax * top, 3.0e38)))
        if not np.isfinite(amax) or amax == 0:
            continue
        rows.append(boundary_row(sf, amax, width, rng))
    x = np.stack(rows)
    if isinstance(sf.block, tuple):  # tiles: rows in groups of the tile's height
        height = sf.block[0]
        x = np.repeat(x[:4], height, axis=0)
    assert_same(x, sf, mode)
