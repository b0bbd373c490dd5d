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


# ---- every kernel copy on adversarial blocks: the AVX2 and AVX-512 intrinsics, the portable C ----
#
# The intrinsics kernels take a 16-lane (AVX-512) or 8-lane (AVX2) step's all-normal shortcut or the
# full semantics per step, and run a block's last partial step on a padded copy: so the inputs
# below mix normal steps with steps holding many outliers (far more than 16 per 512-block, which
# sends C blocks to the full kernel), saturation, NaN/Inf, subnormal and tiny results, exact ties
# and their float32 neighbours, and random bit patterns, at every length 0..40 (every tail of
# both step widths) and over several blocks.  Checked in a subprocess per FMTLAB_SIMD value:
# float32 path = float64 path (encode_one alone), codes and Stats; quantize = decode of the codes;
# the deterministic modes' codes = tests/reference.py's exact rational reference (a sample), the
# stochastic ones = the rational reference on the generator's words where both neighbours are
# finite; and the same sha256 of everything on every level.

ADVERSARIAL_FORMATS = ("e4m3fn", "e5m2", "bf16", "fp16", "cfloat8_1_4_3", "p3109_8p3",
                       fl.Format(4, 3, 9, specials="finite"), fl.Format(3, 2, 2, signed=False),
                       fl.Format(8, 20, 127), fl.Format(10, 22, 511, signed=False, specials="finite"),
                       fl.Format(5, 6, 40, subnormals="tesla"))
ADVERSARIAL_SR_BITS = (None, 1, 3, 8, 20, 23, 24, 31, 32)
MODES = ("nearest_even", "nearest_away", "toward_zero", "up", "down", "odd", "stochastic")
BLOCK = 512


def adversarial_inputs(rng, fmt, blocks=5, tail=13):
    """float32 inputs in 512-blocks: normal data over the format's range; a block with 120
    outliers past max; a block mostly below min_normal; exact ties between neighbouring codes and
    the float32 values next to them, max, just past max, min_normal and its neighbours; random bit
    patterns (NaN, Inf, float32 subnormals included); and a partial block."""
    fmt = fl.formats.as_format(fmt)
    count = blocks * BLOCK + tail
    top = min(fmt.max, float(np.finfo(np.float32).max))
    bottom = max(fmt.min_normal, float(np.finfo(np.float32).tiny)) if fmt.min_normal > 0 else 2.0 ** -126
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        x = np.exp(rng.uniform(np.log(bottom), np.log(top), count)).astype(np.float32)
        outliers = rng.choice(BLOCK, 120, replace=False) + BLOCK
        x[outliers] = (top * rng.uniform(1.0, 4.0, 120)).astype(np.float32)
        small = slice(2 * BLOCK, 3 * BLOCK)
        x[small] = (bottom * np.exp2(-rng.uniform(0, 12, BLOCK))).astype(np.float32)
        codes = rng.integers(0, (1 << (fmt.bits - (1 if fmt.signed else 0))) - 1, BLOCK // 4)
        values = fl.decode(codes.astype(np.uint32), fmt).astype(np.float64)
        following = fl.decode((codes + 1).astype(np.uint32), fmt).astype(np.float64)
        ties = ((values + following) / 2).astype(np.float32)
        edges = np.array([fmt.max, fmt.min_normal, np.inf, np.nan, 0.0], dtype=np.float32)
        special = np.concatenate([ties, np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(0)),
                                  np.nextafter(edges, np.float32(np.inf)), np.nextafter(edges, np.float32(0)), edges])
        x[3 * BLOCK:3 * BLOCK + special.size] = special[:BLOCK]
        x[4 * BLOCK:5 * BLOCK] = rng.integers(0, 1 << 32, BLOCK, dtype=np.uint64).astype(np.uint32).view(np.float32)
    sprinkle = rng.integers(0, count, 40)
    x[sprinkle[:10]] = np.float32(np.nan)
    x[sprinkle[10:20]] = np.float32(np.inf)
    x[sprinkle[20:30]] = np.float32(0.0)
    if fmt.signed:
        x = np.where(rng.integers(0, 2, count).astype(bool), -x, x).astype(np.float32)
    else:  # mostly valid inputs, a few negative ones (invalid)
        x = np.abs(x)
        x[sprinkle[30:]] = -x[sprinkle[30:]]
    return x


def adversarial_roundings(fmt):
    for mode in MODES[:-1]:
        for saturate in (False, True):
            yield mode, dict(saturate=saturate)
    for sr_bits in ADVERSARIAL_SR_BITS:
        for rule in (("truncate",) if sr_bits is None else RULES):
            yield "stochastic", dict(sr_bits=sr_bits, sr_rule=rule, saturate=sr_bits in (8, 32))


def _stochastic_reference(fmt, value, index, seed, sr_bits, rule, saturate):
    """The code of a stochastic rounding of ``value`` between finite neighbours (tests/reference.py's
    codes toward zero and away from zero), decided on the element's words; None where a
    neighbour is no finite value or the first word ties."""
    from reference import reference_round, reference_value
    negative = math.copysign(1.0, float(value)) < 0
    low = reference_round(value, fmt, "toward_zero", saturate)
    high = reference_round(value, fmt, "down" if negative else "up", saturate)
    if low == high:
        return low
    low_value, high_value = reference_value(fmt, low), reference_value(fmt, high)
    if not all(isinstance(v, Fraction) for v in (low_value, high_value)) or low_value == high_value:
        return None
    nu = (Fraction(float(value)) - low_value) / (high_value - low_value)
    word = int(_c.lib.fl_random_word(seed, index, 0))
    if sr_bits is None:
        threshold = nu * (1 << 64)
        if word == math.floor(threshold):
            return None
        away = word < threshold
    else:
        away = _k(nu, sr_bits, rule) + (word >> (64 - sr_bits)) >= 1 << sr_bits
    return high if away else low


def adversarial_check(reference_sample=12):
    """Assert the properties above on this process's kernel level; return the sha256 of every
    result and count (the same on every level)."""
    from reference import reference_round
    digest = hashlib.sha256()
    checked = 0
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        for number, name in enumerate(ADVERSARIAL_FORMATS):
            fmt = fl.formats.as_format(name)
            rng = np.random.default_rng([20261202, 11, number])
            x = adversarial_inputs(rng, fmt)
            seed = int(rng.integers(0, 2**64, dtype=np.uint64))
            offset = int(rng.integers(0, 2**62))
            for mode, keywords in adversarial_roundings(fmt):
                keywords = dict(keywords, seed=seed, index_offset=offset)
                label = (str(fmt), mode, keywords)
                codes, stats = fl.encode(x, fmt, mode, stats=True, **keywords)
                codes64, stats64 = fl.encode(x.astype(np.float64), fmt, mode, stats=True, **keywords)
                np.testing.assert_array_equal(codes, codes64, err_msg=str(label))
                assert stats == stats64, label
                values, quantize_stats = fl.quantize(x, fmt, mode, stats=True, **keywords)
                assert quantize_stats == stats, label
                decoded = fl.decode(codes, fmt).astype(np.float32)
                np.testing.assert_array_equal(values.view(np.uint32), decoded.view(np.uint32), err_msg=str(label))
                digest.update(codes.tobytes() + values.tobytes() + repr((stats, quantize_stats)).encode())
                sample = rng.choice(x.size, reference_sample, replace=False)
                for i in sample:
                    if np.isnan(x[i]) or (x[i] < 0 and not fmt.signed):
                        continue
                    if mode != "stochastic":
                        expected = reference_round(x[i], fmt, mode, keywords["saturate"])
                    else:
                        expected = _stochastic_reference(fmt, x[i], offset + int(i), seed, keywords["sr_bits"],
                                                         keywords["sr_rule"], keywords["saturate"])
                    if expected is not None:
                        assert int(codes[i]) == expected, (label, float(x[i]), int(i))
                        checked += 1
            # every length 0..40 (each tail of the 8- and 16-lane steps) at odd offsets
            for length in range(41):
                start = int(rng.integers(0, x.size - length))
                piece = x[start:start + length]
                mode = MODES[length % len(MODES)]
                sr_bits = ADVERSARIAL_SR_BITS[length % len(ADVERSARIAL_SR_BITS)] if mode == "stochastic" else None
                keywords = dict(seed=seed, index_offset=offset + start, sr_bits=sr_bits,
                                sr_rule=RULES[length % 4] if sr_bits else "truncate", saturate=bool(length & 1))
                codes, stats = fl.encode(piece, fmt, mode, stats=True, **keywords)
                codes64, stats64 = fl.encode(piece.astype(np.float64), fmt, mode, stats=True, **keywords)
                np.testing.assert_array_equal(codes, codes64, err_msg=str((str(fmt), length, keywords)))
                assert stats == stats64
                values = fl.quantize(piece, fmt, mode, **keywords)
                np.testing.assert_array_equal(values.view(np.uint32),
                                              fl.decode(codes, fmt).astype(np.float32).view(np.uint32))
                digest.update(codes.tobytes() + values.tobytes() + repr(stats).encode())
    assert checked > 2000, checked
    return digest.hexdigest()


def test_adversarial_blocks_on_this_level():
    """The level this process loaded (the CPU's best unless FMTLAB_SIMD lowers it)."""
    adversarial_check()


@pytest.mark.parametrize("simd", ["portable", "avx2"])
def test_every_simd_level_gives_the_same_bits_on_adversarial_blocks(simd):
    """FMTLAB_SIMD=avx2 runs codec_avx2.c's kernels on a CPU with AVX2 (the AVX-512 ones only
    where the CPU lacks AVX2), =portable the C kernels: each passes adversarial_check in its own
    process and gives the same bits as this process's level."""
    program = "import test_codec_simd as t; print(t.adversarial_check())"
    tests = os.path.dirname(os.path.abspath(__file__))
    environment = dict(os.environ, FMTLAB_SIMD=simd,
                       PYTHONPATH=os.pathsep.join([os.path.dirname(tests), tests, os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", program], cwd=tests, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == adversarial_check()


def _level_with(simd):
    """fl_codec_simd_level() in a process run with FMTLAB_SIMD=simd ("" for the CPU's best)."""
    program = "from fmtlab import _c; print(_c.lib.fl_codec_simd_level())"
    tests = os.path.dirname(os.path.abspath(__file__))
    environment = dict(os.environ, FMTLAB_SIMD=simd,
                       PYTHONPATH=os.pathsep.join([os.path.dirname(tests), os.environ.get("PYTHONPATH", "")]))
    return int(subprocess.run([sys.executable, "-c", program], cwd=tests, env=environment, capture_output=True,
                              text=True, check=True).stdout)


def test_fmtlab_simd_avx2_runs_the_avx2_kernels():
    """The level a process runs under FMTLAB_SIMD=avx2 on this CPU: 1 (codec_avx2.c) wherever the
    CPU has AVX2, so the test above exercises those kernels, not the AVX-512 or C ones."""
    assert _level_with("avx2") == min(_level_with(""), 1)
