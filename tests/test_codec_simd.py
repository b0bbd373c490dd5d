"""The float32 kernels' in-lane stochastic rounding of subnormal results (csrc/codec_avx512.c), and
the 16-lane steps of the AVX-512 kernels (all-normal steps, mixed steps, the tail of a block).

The AVX-512 kernels decide stochastic rounding of ieee subnormal results in the lanes (the C
kernels send those elements to encode_one): y = |x| 2^(m - emin) is exact in float32, nu = y -
floor(y), and the decision must be the one encode_one takes on the same 64-bit draw.  Checked here
against an exact rational reference built on the generator itself (fl_random_word): with t + nu =
|x| / 2^(emin - m) (Fractions), w = draw 0 of the element, sr_bits=None rounds away iff
w < nu 2^64 (elements whose first word ties are left out), sr_bits=N iff k + (w >> (64 - N)) >= 2^N
with k = nu 2^N brought to an integer by the rule.  Also: the float32 path equals the float64 path
(encode_one alone) in codes and Stats, quantize equals decode of the codes, and every SIMD level
(FMTLAB_SIMD=portable, avx2, the CPU's best) gives the same bits.
"""
import hashlib
import math
import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fmtlab as fl
from fmtlab import _c

RULES = ("truncate", "nearest_away", "nearest_even", "nearest_odd")
SR_BITS = (None, 1, 3, 8, 20, 30, 31, 32)
# formats whose ieee subnormals the float32 kernels take in the lanes (emin <= m, emin >= -126)
FORMATS = ("e4m3fn", "e5m2", "cfloat8_1_4_3", fl.Format(3, 10, 4), fl.Format(2, 1, 1))


def subnormal_heavy_inputs(rng, fmt, count):
    """float32 inputs, most below min_normal (random significands, down to 2^-40 below it, where
    nu has more than 32 bits), mixed with normals, zeros of both signs and a few NaN."""
    fmt = fl.formats.as_format(fmt)
    emin = fmt.emin
    exponents = rng.integers(emin - 40, emin, count)
    significands = rng.random(count) + 1.0
    x = np.ldexp(significands, exponents).astype(np.float32)
    kind = rng.integers(0, 20, count)
    x[kind == 0] = np.float32(0.0)
    x[kind == 1] = np.float32(-0.0)
    x[kind == 2] = np.float32(np.nan)
    normal = kind == 3
    x[normal] = rng.standard_normal(int(normal.sum())).astype(np.float32)
    near = kind == 4  # at most a few ulps of the subnormal grid
    grid = 2.0 ** (emin - fmt.man_bits)
    x[near] = (rng.integers(0, 1 << fmt.man_bits, int(near.sum())) * grid +
               rng.integers(-3, 4, int(near.sum())) * grid / 8).astype(np.float32)
    signed = fmt.signed
    if signed:
        x = np.where(rng.integers(0, 2, count).astype(bool), -x, x).astype(np.float32)
    else:
        x = np.abs(x)
    return x


def _k(nu: Fraction, bits: int, rule: str) -> int:
    """nu 2^N brought to an integer by the rule (fmtlab.codec's table), exactly."""
    scaled = nu * (1 << bits)
    floor = math.floor(scaled)
    fraction = scaled - floor
    if rule == "truncate" or fraction < Fraction(1, 2):
        return floor
    if fraction > Fraction(1, 2) or rule == "nearest_away":
        return floor + 1
    if rule == "nearest_even":
        return floor + (floor & 1)
    return floor + 1 - (floor & 1)  # nearest_odd


def reference_subnormal_code(fmt, value, index, seed, sr_bits, rule):
    """The code of a stochastic rounding of the float32 ``value`` (|value| < min_normal), or None when
    its decision needs a second draw; the rational reference described in the module docstring."""
    fmt = fl.formats.as_format(fmt)
    magnitude = Fraction(abs(float(value)))
    scaled = magnitude / Fraction(2) ** (fmt.emin - fmt.man_bits)
    t = math.floor(scaled)
    nu = scaled - t
    word = int(_c.lib.fl_random_word(seed, index, 0))
    if sr_bits is None:
        threshold = nu * (1 << 64)
        if nu != 0 and word == math.floor(threshold):
            return None
        away = nu != 0 and word < threshold
    else:
        away = nu != 0 and _k(nu, sr_bits, rule) + (word >> (64 - sr_bits)) >= 1 << sr_bits
    code = t + int(away)
    negative = math.copysign(1.0, float(value)) < 0
    if negative and fmt.signed:
        code |= 1 << (fmt.exp_bits + fmt.man_bits)
    return code


def _roundings():
    for sr_bits in SR_BITS:
        for rule in (("truncate",) if sr_bits is None else RULES):
            yield sr_bits, rule


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_stochastic_subnormal_results_equal_the_exact_path_and_the_reference(fmt):
    rng = np.random.default_rng([20261202, FORMATS.index(fmt)])
    count = 3 * 512 + 37  # whole blocks, and a tail that is no multiple of 16
    x = subnormal_heavy_inputs(rng, fmt, count)
    seed = int(rng.integers(0, 2**63))
    offset = int(rng.integers(0, 2**40))
    below = np.flatnonzero((np.abs(x) < fl.formats.as_format(fmt).min_normal) & ~np.isnan(x))
    sample = rng.choice(below, size=min(200, below.size), replace=False)
    checked = 0
    for sr_bits, rule in _roundings():
        keywords = dict(seed=seed, sr_bits=sr_bits, sr_rule=rule, index_offset=offset)
        codes, stats = fl.encode(x, fmt, "stochastic", stats=True, **keywords)
        codes64, stats64 = fl.encode(x.astype(np.float64), fmt, "stochastic", stats=True, **keywords)
        np.testing.assert_array_equal(codes, codes64, err_msg=f"{fmt} sr_bits={sr_bits} {rule}")
        assert stats == stats64, (fmt, sr_bits, rule)
        values, quantize_stats = fl.quantize(x, fmt, "stochastic", stats=True, **keywords)
        assert quantize_stats == stats
        decoded = fl.decode(codes, fmt).astype(np.float32)
        np.testing.assert_array_equal(values.view(np.uint32), decoded.view(np.uint32))
        for i in sample:
            expected = reference_subnormal_code(fmt, x[i], offset + int(i), seed, sr_bits, rule)
            if expected is not None:
                assert int(codes[i]) == expected, (fmt, sr_bits, rule, float(x[i]), int(i))
                checked += 1
    assert checked > 1000  # the reference did decide (ties of a whole 64-bit word are rare)


def test_the_reference_can_fail():
    """A flipped decision is seen: the reference is not the code under test."""
    x = np.float32(2.0 ** -9 * 0.5)  # e4m3fn: half of the smallest subnormal, nu = 1/2
    word = int(_c.lib.fl_random_word(7, 0, 0))
    expected_away = word < (1 << 63)
    assert reference_subnormal_code("e4m3fn", x, 0, 7, None, "truncate") == int(expected_away)
    code = int(fl.encode(np.array([x]), "e4m3fn", "stochastic", seed=7)[0])
    assert code == int(expected_away)
    assert reference_subnormal_code("e4m3fn", x, 0, 7, 1, "truncate") == int((word >> 63) >= 1)


@settings(max_examples=60, deadline=None)
@given(count=st.integers(0, 80), offset=st.integers(0, 2**63 - 1), seed=st.integers(0, 2**64 - 1),
       data=st.data())
def test_any_length_and_offset_gives_the_exact_path(count, offset, seed, data):
    """Short arrays (every tail length of the 16-lane steps) at any index offset (the generator's
    counter lanes): float32 path = float64 path, codes and Stats, for every mode."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = subnormal_heavy_inputs(rng, "e4m3fn", count)
    x[rng.integers(0, 3, count) == 0] *= np.float32(2.0 ** 8)  # normals and overflows too
    mode = data.draw(st.sampled_from(["nearest_even", "nearest_away", "toward_zero", "up", "down", "odd",
                                      "stochastic"]))
    sr_bits = data.draw(st.sampled_from(SR_BITS)) if mode == "stochastic" else None
    rule = data.draw(st.sampled_from(RULES)) if sr_bits else "truncate"
    saturate = data.draw(st.booleans())
    keywords = dict(seed=seed, sr_bits=sr_bits, sr_rule=rule, saturate=saturate, index_offset=offset)
    with np.errstate(over="ignore"):
        codes, stats = fl.encode(x, "e4m3fn", mode, stats=True, **keywords)
        codes64, stats64 = fl.encode(x.astype(np.float64), "e4m3fn", mode, stats=True, **keywords)
    np.testing.assert_array_equal(codes, codes64)
    assert stats == stats64


def simd_digest():
    """sha256 of encode and quantize (with Stats) of subnormal-heavy inputs, every format, mode and
    stochastic variant above."""
    digest = hashlib.sha256()
    rng = np.random.default_rng(99)
    for fmt in FORMATS:
        x = subnormal_heavy_inputs(rng, fmt, 2 * 512 + 11)
        cases = [(mode, None, "truncate") for mode in ("nearest_even", "nearest_away", "toward_zero", "up",
                                                        "down", "odd")]
        cases += [("stochastic", sr_bits, rule) for sr_bits, rule in _roundings()]
        for mode, sr_bits, rule in cases:
            keywords = dict(seed=5, sr_bits=sr_bits, sr_rule=rule)
            codes, stats = fl.encode(x, fmt, mode, stats=True, **keywords)
            values, quantize_stats = fl.quantize(x, fmt, mode, stats=True, **keywords)
            digest.update(codes.tobytes() + values.tobytes() + repr((stats, quantize_stats)).encode())
    return digest.hexdigest()


def _digest_with(simd):
    tests = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(tests)
    environment = dict(os.environ, FMTLAB_SIMD=simd,
                       PYTHONPATH=os.pathsep.join([root, tests, os.environ.get("PYTHONPATH", "")]))
    program = "import test_codec_simd as t; print(t.simd_digest())"
    return subprocess.run([sys.executable, "-c", program], cwd=tests, env=environment, capture_output=True,
                          text=True, check=True).stdout.strip()


@pytest.mark.parametrize("simd", ["portable", "avx2"])
def test_every_simd_level_gives_the_same_bits_on_subnormal_results(simd):
    assert _digest_with(simd) == simd_digest()
