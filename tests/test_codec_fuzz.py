"""Differential fuzz test of the codec: the float32 fast path = the float64 path = the exact reference.

Random formats of every exponent and mantissa width (1 to 32 bits, signed and unsigned, every
specials and subnormals policy), with biases across the whole allowed range, near the float32
boundaries (where the fast path's range reasoning is delicate) and beyond it (which the Python
Format and the C core must both refuse).  Inputs: random float32 bit patterns (NaN, Inf,
subnormals, every binade), values on and between the format's values, and adversarial 512-element
blocks (the fast path's block) with many outliers: zeros, tiny and huge values, NaN, Inf and
negative values for unsigned formats, and blocks at the kernel choice threshold (16 and 17).  Every
rounding mode, stochastic with and without sr_bits, every saturation mode; contiguous, strided,
0-d and empty views.  Checked:

* encode of float32 input (the fast blocks) and of the same values as float64 (encode_one alone)
  give the same codes and the same Stats; quantize gives decode of those codes (bits, NaN signs
  included) and the same Stats;
* a sample of the codes equals the exact rational reference (tests/reference.py): the code of
  each deterministic mode, and one of the two candidates for stochastic rounding (the toward one
  when the probability is 0);
* decode of random codes gives the reference's exact value, in float32 exactly when every value
  of the format is a float32.

Seeded (FMTLAB_FUZZ_SEED, default 20261201), so a failure reproduces: the message names the case.
About a minute in CI; ``FMTLAB_FUZZ_LONG=1`` runs twenty times as many cases.
"""
import math
import os
from fractions import Fraction

import numpy as np
import pytest

import fmtlab as fl
from fmtlab import _c
from fmtlab.formats import SPECIALS, SUBNORMALS, bias_range
from reference import (DETERMINISTIC_MODES, SATURATION_MODES, reference_round, reference_stochastic_probability,
                       reference_value)

SEED = int(os.environ.get("FMTLAB_FUZZ_SEED", "20261201"))
LONG = os.environ.get("FMTLAB_FUZZ_LONG") == "1"
CASES = 7200 if LONG else 360
GROUPS = 12  # the cases are split into this many test items (progress, and -x stops early)
BLOCK = 512  # codec_fast.h's FAST_BLOCK
SAMPLE = 24  # elements per (case, mode) checked against the exact reference
MODES = DETERMINISTIC_MODES + ("stochastic",)


# ---- random formats --------------------------------------------------------------------------

def _default_bias(exp_bits):
    return (1 << (exp_bits - 1)) - 1


def random_format(rng):
    """A valid Format: every width, policy and sign, and a bias from one of four regions."""
    while True:
        signed = bool(rng.integers(2))
        total = int(rng.integers(2, 33))  # bits in all
        width = total - int(signed)
        if width < 1:
            continue
        exp_bits = int(rng.integers(1, min(width, 11) + 1))
        man_bits = width - exp_bits
        specials = SPECIALS[int(rng.integers(len(SPECIALS)))]
        subnormals = SUBNORMALS[int(rng.integers(len(SUBNORMALS)))]
        try:
            base = fl.Format(exp_bits, man_bits, _default_bias(exp_bits) if exp_bits < 11 else 1023,
                             signed, specials, subnormals)
        except ValueError:
            continue
        allowed = bias_range(base)
        region = int(rng.integers(4))
        if region == 0:  # anywhere allowed
            bias = int(rng.integers(allowed.start, allowed.stop))
        elif region == 1:  # the usual neighbourhood
            bias = base.bias + int(rng.integers(-4, 5))
        elif region == 2:  # the largest value near float32's largest binade (2^127)
            bias = base.emax_field - 127 + int(rng.integers(-3, 4))
        else:  # the smallest normal near float32's (2^-126), or the smallest step near 2^-149
            target = -126 if rng.integers(2) else -149 + man_bits
            bias = 1 - target + int(rng.integers(-3, 4))
        # Left out: formats whose only finite value is zero, such as e1m0 fn (the reference
        # compares a clamped -0 with +0 as Fractions there and cannot tell them apart); formats
        # without subnormals whose lowest binade's step is below 2^-1074 (not exact in float64:
        # fmtlab.Format and the C core refuse them, see test_codec_regressions.py);
        # formats of 16 bits or fewer whose next value above max is 2^1024 or more (the
        # reference lists those values as floats)
        if bias not in allowed or base.max == 0:
            continue
        try:
            fmt = base.replace(bias=bias)
        except ValueError:  # its lowest step is below 2^-1074
            continue
        if fmt.bits <= 16 and fmt.emax >= 1023:
            continue
        return fmt


def invalid_biases(fmt):
    allowed = bias_range(fmt)
    return (allowed.start - 1, allowed.stop, allowed.start - 1000, allowed.stop + 1000, 2**31 - 1, -2**31)


# ---- random inputs ---------------------------------------------------------------------------

def _format_values(rng, fmt, count):
    """float64 values of random codes of fmt (NaN codes give NaN)."""
    codes = rng.integers(0, 1 << fmt.bits, size=count, dtype=np.uint64).astype(fmt.code_dtype)
    return fl.decode(codes, fmt).astype(np.float64)


def _near_values(rng, fmt, count):
    """Values of the format moved by a random fraction of an ulp (ties included), as float32."""
    values = _format_values(rng, fmt, count)
    fraction = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0 - 2.0**-20, rng.random()], size=count)
    steps = np.ldexp(1.0, np.frexp(np.where(np.isfinite(values) & (values != 0), values, 1.0))[1] - 1 - fmt.man_bits)
    with np.errstate(over="ignore", invalid="ignore"):
        moved = values + fraction * steps * rng.choice([-1.0, 1.0], size=count)
        return moved.astype(np.float32)


def _outliers(rng, fmt, count):
    """Values outside the format's normal range (and specials), as float32."""
    kinds = rng.integers(0, 8, size=count)
    with np.errstate(over="ignore", under="ignore"):
        tiny = np.float32(fmt.min_normal) * np.float32(2.0) ** -rng.integers(0, 40, size=count).astype(np.float32)
        huge = np.float32(min(fmt.max, 3e38)) * np.float32(2.0) ** rng.integers(0, 30, size=count).astype(np.float32)
    values = np.select([kinds == 0, kinds == 1, kinds == 2, kinds == 3, kinds == 4, kinds == 5, kinds == 6],
                       [np.zeros(count, np.float32), tiny, huge, np.full(count, np.nan, np.float32),
                        np.full(count, np.inf, np.float32), -tiny, -huge],
                       rng.standard_normal(count).astype(np.float32) * np.float32(1e-40))
    signs = rng.choice(np.array([-1.0, 1.0], np.float32), size=count)
    return np.where(kinds >= 3, values * signs, values).astype(np.float32)


def random_inputs(rng, fmt):
    """Four adversarial 512-blocks and a ragged tail, float32."""
    blocks = []
    random_bits = rng.integers(0, 1 << 32, size=BLOCK, dtype=np.uint64).astype(np.uint32).view(np.float32)
    blocks.append(random_bits)
    for outlier_count in (int(rng.integers(17, BLOCK)), 16, 17):
        block = _near_values(rng, fmt, BLOCK)
        where = rng.choice(BLOCK, size=outlier_count, replace=False)
        block[where] = _outliers(rng, fmt, outlier_count)
        blocks.append(block)
    tail = np.concatenate([_near_values(rng, fmt, 20), _outliers(rng, fmt, 17)])
    x = np.concatenate(blocks + [tail]).astype(np.float32)
    return x


def random_rounding(rng, mode):
    saturate = SATURATION_MODES[int(rng.integers(len(SATURATION_MODES)))]
    keywords = {"saturate": saturate}
    if mode == "stochastic":
        keywords["seed"] = int(rng.integers(0, 2**63))
        if rng.integers(2):
            keywords["sr_bits"] = int(rng.integers(1, 33))
            keywords["sr_rule"] = _c.SR_RULES[int(rng.integers(len(_c.SR_RULES)))]
    return keywords


# ---- the checks -----------------------------------------------------------------------------

def value_bits(values):
    values = np.asarray(values)
    return values.view(np.uint32 if values.dtype == np.float32 else np.uint64)


def check_case(case_seed):
    # numpy's casts warn on what the test means to do: float32 signalling NaNs widened (quieted:
    # a NaN stays a NaN of its sign), float64 values beyond float32 cast to Inf
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        _check_case(case_seed)


def _check_case(case_seed):
    rng = np.random.default_rng([SEED, case_seed])
    fmt = random_format(rng)
    x32 = random_inputs(rng, fmt)
    x64 = x32.astype(np.float64)
    where = f"case {case_seed} (FMTLAB_FUZZ_SEED={SEED}): {fmt!r}"
    for mode in MODES:
        keywords = random_rounding(rng, mode)
        what = f"{where} {mode} {keywords}"
        codes32, stats32 = fl.encode(x32, fmt, mode, stats=True, **keywords)
        codes64, stats64 = fl.encode(x64, fmt, mode, stats=True, **keywords)
        bad = np.flatnonzero(codes32 != codes64)
        assert bad.size == 0, (what, "float32 path != float64 path", x32[bad[:4]], codes32[bad[:4]], codes64[bad[:4]])
        assert stats32 == stats64, (what, stats32, stats64)
        # quantize is decode(encode) in x's dtype, with the same counts
        decoded = fl.decode(codes64, fmt)
        for x, stats in ((x32, stats32), (x64, stats64)):
            quantized, quantize_stats = fl.quantize(x, fmt, mode, stats=True, **keywords)
            expected = decoded.astype(x.dtype)
            bad = np.flatnonzero(value_bits(quantized) != value_bits(expected))
            assert bad.size == 0, (what, x.dtype, "quantize != decode(encode)", x[bad[:4]], quantized[bad[:4]],
                                   expected[bad[:4]])
            assert quantize_stats == stats, (what, x.dtype, quantize_stats, stats)
        # a sample against the exact reference, outliers and block edges included
        sample = np.unique(np.concatenate([rng.choice(x32.size, size=SAMPLE, replace=False),
                                           [0, BLOCK - 1, BLOCK, x32.size - 1]]))
        for index in sample:
            value, code = x32[index], int(codes32[index])
            if mode == "stochastic":
                toward, away, probability = stochastic_probability(value, fmt, keywords)
                ok = code in (toward, away) and (probability is None or (
                    (probability != 0 or code == toward) and (probability != 1 or code == away)))
                assert ok or _both_nan(fmt, code, toward), (what, index, value, code, toward, away, probability)
            else:
                want = reference_round(value, fmt, mode, keywords["saturate"])
                assert code == want or _both_nan(fmt, code, want), (what, index, float(value).hex(), hex(code),
                                                                     hex(want))
    check_views(rng, fmt, x32, where)
    check_decode(rng, fmt, where)
    check_invalid_biases(fmt, where)


def _rule_fraction(nu, bits, rule):
    """k / 2^N of enum fl_sr_rule: nu * 2^N brought to an integer by the rule (fmtlab.codec)."""
    scaled = nu * (1 << bits)
    floor = math.floor(scaled)
    half = scaled - floor
    if rule == "truncate":
        k = floor
    elif rule == "nearest_away":
        k = math.floor(scaled + Fraction(1, 2))
    elif half != Fraction(1, 2):
        k = round(scaled)
    else:
        k = floor + (1 if (floor % 2 == 1) == (rule == "nearest_even") else 0)
    return Fraction(k, 1 << bits)


def stochastic_probability(value, fmt, keywords):
    """(toward, away, P(away)) from the reference; its exact nu (sr_bits=None) brought to sr_bits
    bits by the rule (the reference itself does the truncate rule), except in the Tesla gap, whose
    nu the reference gives to 32 bits only (then the truncate rule alone is checked exactly)."""
    bits, rule = keywords.get("sr_bits"), keywords.get("sr_rule", "truncate")
    if (keywords["saturate"] == "sat_none" and not fmt.signed and not fmt.has_zero and np.isfinite(value)
            and value < 0 and -Fraction(float(value)) < Fraction(fmt.exact_value(0))):
        # below the smallest value of an unsigned format without zero: the reference's stochastic
        # shortcut rounds these toward zero, but SatNone's rule depends on the mode, and Stochastic
        # is neither TowardZero nor TowardPositive: the nearest modes' answer (NaN), as in P3109 4.7.5
        code = reference_round(value, fmt, "nearest_even", "sat_none")
        return code, code, Fraction(0)
    if bits is None or rule == "truncate" or fmt.subnormals == "tesla":
        toward, away, probability = reference_stochastic_probability(value, fmt, bits, keywords["saturate"])
        if bits is not None and rule != "truncate":  # Tesla: a rule rounds nu up by at most one step
            probability = None
        return toward, away, probability
    toward, away, nu = reference_stochastic_probability(value, fmt, None, keywords["saturate"])
    return toward, away, _rule_fraction(nu, bits, rule) if toward != away else Fraction(0)


def _both_nan(fmt, a, b):
    value_a, value_b = reference_value(fmt, a), reference_value(fmt, b)
    return isinstance(value_a, str) and isinstance(value_b, str) and "nan" in value_a and "nan" in value_b


def check_views(rng, fmt, x32, where):
    """Strided, reversed, 2-D, 0-d and empty views give the contiguous results."""
    mode = MODES[int(rng.integers(len(MODES)))]
    keywords = random_rounding(rng, mode)
    keywords.pop("seed", None)
    keywords["seed"] = 7  # stochastic results are keyed by the C-order index of the view
    for view in (x32[::3], x32[::-2], x32[: 40 * 25].reshape(40, 25).T, x32[5:6].reshape(()), x32[:0],
                 x32[:0].reshape(0, 3)):
        contiguous = np.array(view, order="C")  # (ascontiguousarray would make a 0-d view 1-d)
        for function in (fl.encode, fl.quantize):
            got = function(view, fmt, mode, **keywords)
            want = function(contiguous, fmt, mode, **keywords)
            assert got.shape == view.shape and got.dtype == want.dtype, (where, function.__name__, view.shape)
            assert np.array_equal(value_bits(got) if got.dtype.kind == "f" else got,
                                  value_bits(want) if want.dtype.kind == "f" else want), \
                (where, function.__name__, mode, keywords, view.shape, view.strides)
    codes = fl.encode(x32[:64], fmt)
    np.testing.assert_array_equal(fl.decode(codes[::2], fmt).view(np.uint8),
                                  fl.decode(np.ascontiguousarray(codes[::2]), fmt).view(np.uint8))
    assert fl.decode(codes[:0], fmt).shape == (0,)


def check_decode(rng, fmt, where):
    """decode of random codes: the reference's exact value, in float32 iff every value is a float32."""
    codes = rng.integers(0, 1 << fmt.bits, size=64, dtype=np.uint64).astype(fmt.code_dtype)
    codes[:2] = (0, (1 << fmt.bits) - 1)
    values = fl.decode(codes, fmt)
    step = min(fmt.min_subnormal_exponent, fmt.emin - fmt.man_bits)
    exact32 = fmt.man_bits <= 23 and fmt.emax <= 127 and step >= -149
    assert values.dtype == (np.float32 if exact32 else np.float64), (where, values.dtype)
    sign_bit = 1 << (fmt.bits - 1) if fmt.signed else 0
    two_signed_nans = fmt.signed and fmt.specials in ("ieee", "fn")
    for code, value in zip(codes.tolist(), values.tolist()):
        want = reference_value(fmt, code)
        if isinstance(want, str):  # "nan", "inf", "-inf"
            if "nan" in want:
                assert math.isnan(value), (where, hex(code), value)
                negative = two_signed_nans and bool(code & sign_bit)
                assert (math.copysign(1.0, value) < 0) == negative, (where, hex(code), "NaN sign")
            else:
                assert value == (-math.inf if want.startswith("-") else math.inf), (where, hex(code), value)
        else:
            assert Fraction(value) == want, (where, hex(code), value, want)
            if want == 0:
                negative = bool(code & sign_bit) and fmt.has_negative_zero
                assert (math.copysign(1.0, value) < 0) == negative, (where, hex(code), "zero sign")


def check_invalid_biases(fmt, where):
    """Biases beyond the allowed range: a ValueError in Python and FL_ERROR_FORMAT from every C entry."""
    x32, x64 = np.ones(3, np.float32), np.ones(3, np.float64)
    codes = np.zeros(3, np.uint32)
    rounding = _c.c_rounding(_c.rounding_request("nearest_even"))
    for bias in invalid_biases(fmt):
        if -2**31 <= bias < 2**31 - 1 and abs(bias) < 10**6:
            with pytest.raises(ValueError):
                fmt.replace(bias=bias)
        struct = _c.ffi.new("fl_format *")
        _c._fill_format(struct, fmt)
        struct.bias = bias
        assert _c.lib.fl_encode_f32(_c.pointer(x32, "float"), 3, struct, rounding, _c.pointer(codes, "void"), 4, 0,
                                    _c.ffi.NULL) == _c.lib.FL_ERROR_FORMAT, (where, bias)
        assert _c.lib.fl_quantize_f64(_c.pointer(x64, "double"), 3, struct, rounding, _c.pointer(x64.copy(), "double"),
                                      0, _c.ffi.NULL) == _c.lib.FL_ERROR_FORMAT, (where, bias)
        assert _c.lib.fl_decode_f64(_c.pointer(codes, "void"), 4, 3, struct, _c.pointer(x64.copy(), "double")) == \
            _c.lib.FL_ERROR_FORMAT, (where, bias)


@pytest.mark.parametrize("group", range(GROUPS))
def test_fast_path_equals_float64_path_equals_reference(group):
    for case in range(group, CASES, GROUPS):
        check_case(case)


def test_the_fuzzer_reaches_every_kind_of_format():
    """The generator is not blind to a region: every width, policy and bias region appears."""
    rng = np.random.default_rng([SEED, 10**9])
    formats = [random_format(rng) for _ in range(600)]
    assert {f.specials for f in formats} == set(SPECIALS)
    assert {f.subnormals for f in formats} == set(SUBNORMALS)
    assert {f.signed for f in formats} == {True, False}
    assert {f.bits for f in formats} >= set(range(3, 33))
    assert any(f.emax > 127 for f in formats) and any(f.emax < -126 for f in formats)
    assert any(f.emin > 22 for f in formats) and any(-150 < f.emin - f.man_bits < -148 for f in formats)


# ---- the SIMD copies (csrc/codec_fast.c): the same bits on every path ----------------------------

SIMD_CASES = 40


def simd_digest(cases=SIMD_CASES):
    """sha256 of encode and quantize (with stats) of the first fuzz cases, every mode."""
    import hashlib
    digest = hashlib.sha256()
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        for case in range(cases):
            rng = np.random.default_rng([SEED, case, 7])
            fmt = random_format(rng)
            x = random_inputs(rng, fmt)
            for mode in MODES:
                keywords = random_rounding(rng, mode)
                codes, stats = fl.encode(x, fmt, mode, stats=True, **keywords)
                values, quantize_stats = fl.quantize(x, fmt, mode, stats=True, **keywords)
                digest.update(codes.tobytes() + values.tobytes() + repr((stats, quantize_stats)).encode())
    return digest.hexdigest()


def _in_subprocess(code, simd):
    import subprocess
    import sys
    tests = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(tests)
    environment = dict(os.environ, FMTLAB_SIMD=simd,
                       PYTHONPATH=os.pathsep.join([root, tests, os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", code], cwd=tests, env=environment, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_fmtlab_simd_lowers_the_kernels_chosen_at_load():
    """0 portable, 1 AVX2, 2 AVX-512: FMTLAB_SIMD=portable forces the portable C, =avx2 caps at
    AVX2, anything else (or nothing) leaves the CPU's best."""
    program = "from fmtlab import _c; print(_c.lib.fl_codec_simd_level())"
    best = int(_in_subprocess(program, ""))
    assert best in (0, 1, 2)
    assert _in_subprocess(program, "portable") == "0"
    assert _in_subprocess(program, "avx2") == str(min(best, 1))
    assert _in_subprocess(program, "best") == str(best)


@pytest.mark.parametrize("simd", ["portable", "avx2"])
def test_every_simd_path_gives_the_same_bits(simd):
    """The portable C kernels, the AVX2 copies and the AVX-512 copies (whichever this CPU runs)
    give the same codes, values and counts on the fuzz inputs."""
    program = "import test_codec_fuzz as t; print(t.simd_digest())"
    assert _in_subprocess(program, simd) == simd_digest()
