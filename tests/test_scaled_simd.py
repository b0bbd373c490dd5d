"""Every SIMD copy of the scaled hot loop gives the exact reference's bits.

csrc/scaled.c is compiled three times (scaled.c portable, scaled_avx2.c, scaled_avx512.c with the
intrinsics lanes of scaled_lanes_avx512.h), and fl_codec_simd_level (FMTLAB_SIMD=portable, =avx2,
or the CPU's best) picks one when the library loads.  Each copy runs here in its own process on
the same cases -- every preset, every rounding mode, float32 input (the lanes' domain) and
float64, partial blocks of every tail length, zero / NaN / Inf blocks, extreme block maxima,
exact ties, inputs one ulp either side of every element boundary times the block's scale, and a
512-element block full of outliers -- and its codes, scale codes, tensor scale and quantized
values are held to the exact rational reference of tests/test_scaled.py: reference_encode and
reference_values for the deterministic modes; for exact stochastic rounding, the toward/away
candidates of the float64 quotient (tests/reference.py) and the decision the generator's first
word makes, away iff word < nu 2^64 (fl_random_word: the C core's generator, keyed by the
element's C-order index).  The counts are held to the numpy path's (scaled._encode_numpy).
"""
import functools
import math
import os
import pickle
import subprocess
import sys
import tempfile
from fractions import Fraction

import numpy as np
import pytest

import fmtlab as fl
from fmtlab import _c, scaled
from fmtlab.integers import IntFormat
from reference import (assert_codes_equal, max_value, reference_float, reference_stochastic_probability,
                       sorted_magnitudes)
from test_scaled import block_index, reference_block_scales, reference_encode, reference_values, same_bits
from test_scaled_c import awkward_array, dyadic_rows

MODES = ("nearest_even", "nearest_away", "toward_zero", "up", "down", "odd", "stochastic")
SEED = 7


def boundary_rows(sf, dtype):
    """Rows of 32 whose first element fixes the block's scale S (one amax per row, from 2^-20 to
    2^20 times the element's max, of many significand bits); the others are one ulp below, at and
    one ulp above m * S for the element's values and midpoints m, both signs, found from the
    reference's own S."""
    element = sf.element
    top = float(max_value(element))
    magnitudes = [float(v) for v in sorted_magnitudes(element) if 0 < v <= top]
    points = sorted(set(magnitudes) | {(a + b) / 2 for a, b in zip(magnitudes, magnitudes[1:])})
    rows = 12
    x = np.zeros((rows, 32), dtype)
    x[:, 0] = [dtype(top * (1 + k / 11) * 2.0 ** (4 * k - 20)) for k in range(rows)]
    blocks = {}
    for index in np.ndindex(*x.shape):
        blocks.setdefault(block_index(index, x.shape, sf), []).append(float(x[index]))
    per_block, _ = reference_block_scales(sf, blocks)
    for row in range(rows):
        effective = per_block[block_index((row, 0), x.shape, sf)][2]
        if effective is None:
            continue
        chosen = [points[(row * 5 + j) % len(points)] for j in range(10)]
        values = []
        for point in chosen:
            target = dtype(float(Fraction(point) * effective))
            values += [np.nextafter(target, dtype(0)), target, -np.nextafter(target, dtype(np.inf))]
        x[row, 1:1 + len(values)] = values[:31]
    # the values of one row stay below its first (the block's amax): the scales above still hold
    # for 1-D blocks of 32 or 16 and larger; tiles and tensors take whichever scale the reference gives
    return x


def rule_boundary_rows(sf):
    """float32 rows of 32 whose maxima lie at each scale rule's boundaries and one float32 ulp
    either side: 2^k (floor, ceil), 2^k (2 - 2^-(m + 1)) (even's carry), max 2^k (rceil), and
    the amax rule's quotients at scale values and between them."""
    element = sf.element
    m = element.man_bits
    top = float(max_value(element))
    centres = [1.0, 2.0 - 2.0 ** -(m + 1), top, top * 1.5, top * 1.0625, top * 1.75]
    maxima = []
    for k in (-126, -40, -3, 0, 5, 60, 100):
        for centre in centres:
            value = np.float32(centre * 2.0 ** k)
            maxima += [np.nextafter(value, np.float32(0)), value, np.nextafter(value, np.float32(np.inf))]
    with np.errstate(over="ignore"):
        return (np.outer(np.array(maxima, np.float64), np.linspace(1.0, -0.5, 32))).astype(np.float32)


def outlier_block(dtype):
    """One 512-element row: 200 outliers near float32's largest values among small normals and
    float32 subnormals."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(512) * 1e-3
    x[rng.choice(512, 200, replace=False)] = rng.choice([3.0e38, -2.9e38, 1.7e38, 6.0e37], 200)
    x[rng.choice(512, 20, replace=False)] = rng.choice([1e-45, -3e-42, 1.1e-38], 20)
    return x.astype(dtype).reshape(1, 512)


def cases():
    """(name, array) pairs of the scaled formats the copies are compared on."""
    result = []
    for name in scaled.preset_names():
        sf = fl.format(name)
        result.append((name, awkward_array((3, 160), np.float32, seed=5)))  # partial 128s, specials
        result.append((name, awkward_array((2, 96), np.float64, seed=5)))   # the C kernels of each copy
        result.append((name, dyadic_rows(8, 96).astype(np.float32)))         # exact ties
        result.append((name, boundary_rows(sf, np.float32)))
        result.append((name, rule_boundary_rows(sf)))
        result.append((name, outlier_block(np.float32)))
        # every tail length of the 16-lane steps and of blocks of 16 and 32
        rng = np.random.default_rng(11)
        for n in range(1, 48, 3):
            result.append((name, rng.standard_normal((2, n)).astype(np.float32) * 3.0))
    # a block width that is no multiple of 16 (the C kernels in every copy)
    result.append(("mxfp8_e4m3:block=20", awkward_array((3, 70), np.float32, seed=6)))
    return result


def run_cases():
    """What this process's copy computes on every case and mode: (level, [results])."""
    out = []
    for name, x in cases():
        sf = fl.format(name)
        for mode in MODES:
            codes, stats = fl.encode(x, sf, mode, seed=SEED, stats=True)
            values, quantize_stats = fl.quantize(x, sf, mode, seed=SEED, stats=True)
            out.append((name, mode, codes.codes, codes.scales, codes.tensor_scale, stats, values, quantize_stats))
    return int(_c.lib.fl_codec_simd_level()), out


@functools.lru_cache(maxsize=None)
def run_in_subprocess(simd):
    tests = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(tests)
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([root, tests, os.environ.get("PYTHONPATH", "")]))
    environment.pop("FMTLAB_SIMD", None)
    if simd != "best":
        environment["FMTLAB_SIMD"] = simd
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "results.pickle")
        program = ("import pickle, sys, test_scaled_simd as t\n"
                   "pickle.dump(t.run_cases(), open(sys.argv[1], 'wb'))\n")
        subprocess.run([sys.executable, "-c", program, path], cwd=tests, env=environment, check=True,
                       capture_output=True, text=True)
        with open(path, "rb") as handle:
            return pickle.load(handle)


def stochastic_reference(x, sf):
    """Exact stochastic codes (sr_bits None) of x, or -1 where the first word ties nu 2^64."""
    _, scales, tensor_code, per_block = reference_encode(x, sf, "nearest_even")
    nearest, _, _, _ = reference_encode(x, sf, "nearest_even")
    codes = nearest.copy()
    element = sf.element
    for flat, index in enumerate(np.ndindex(*x.shape)):
        value = float(x[index])
        effective = per_block[block_index(index, x.shape, sf)][2]
        if effective is None or not math.isfinite(value) or value == 0:
            continue  # NaN blocks, +-Inf and +-0: the same code in every mode (x * 0, saturation, +-0)
        y = float(Fraction(value) / effective)  # RN64(x / S): exact for S = 2^e
        if value != 0 and (abs(y) < 2.0 ** -1022 or (abs(value) < 2.0 ** -1022 and not sf.is_power_of_two)):
            y = math.copysign(5e-324, value)
        toward, away, nu = reference_stochastic_probability(y, element, saturate=True)
        if toward == away:
            codes[index] = toward
            continue
        word = int(_c.lib.fl_random_word(SEED, flat, 0))
        threshold = nu * 2 ** 64
        codes[index] = -1 if word == math.floor(threshold) else (away if word < threshold else toward)
    return codes, scales, tensor_code, per_block


@functools.lru_cache(maxsize=None)
def references():
    """The exact reference and the numpy path's counts for every (case, mode), computed once."""
    out = []
    for name, x in cases():
        sf = fl.format(name)
        for mode in MODES:
            request = _c.rounding_request(mode, True, SEED, None, "truncate")
            numpy_result, numpy_stats = scaled._encode_numpy(x, sf, request, True)
            if isinstance(sf.element, IntFormat):
                # the rational reference rounds sign-magnitude float codes; integer elements are
                # held to the numpy path (two's complement codes, tests/test_integers.py's domain)
                numpy_values, _ = scaled._quantize_numpy(x, sf, request, True)
                out.append((name, mode, x, numpy_result.codes, numpy_result.scales.astype(np.int64),
                            numpy_result.tensor_scale, numpy_values, numpy_stats))
                continue
            if mode == "stochastic":
                codes, scales, tensor_code, per_block = stochastic_reference(x, sf)
            else:
                codes, scales, tensor_code, per_block = reference_encode(x, sf, mode)
            out.append((name, mode, x, codes, scales, tensor_code, per_block, numpy_stats))
    return out


def assert_values_of_codes(values, codes, per_block, sf, decided, where):
    """values (x's dtype) are the reference's exact values of codes rounded once to that dtype."""
    exact = reference_values(codes, per_block, sf)
    for index, expected in exact.items():
        if not decided[index]:
            continue
        got = values[index]
        if expected is None:
            assert np.isnan(got), (where, index, got)
            continue
        with np.errstate(over="ignore"):
            want = values.dtype.type(float(expected))  # exact in float64: <= 53 significant bits
        if expected == 0:  # the zero's sign is the element code's (Fraction has none)
            want = values.dtype.type(math.copysign(0.0, reference_float(sf.element, int(codes[index]))))
        assert same_bits(np.array([got]), np.array([want])), (where, index, got, want, expected)


def check_against_reference(level_results):
    for (name, mode, codes, scale_codes, tensor_scale, stats, values, quantize_stats), \
            (name_r, mode_r, x, want, want_scales, want_tensor, per_block, numpy_stats) in \
            zip(level_results, references()):
        assert (name, mode) == (name_r, mode_r)
        sf = fl.format(name)
        where = f"{name} {mode} {x.dtype} {x.shape}"
        assert np.array_equal(scale_codes.astype(np.int64), want_scales), where
        assert tensor_scale == want_tensor, where
        if isinstance(sf.element, IntFormat):   # per_block holds the numpy path's values here
            assert np.array_equal(codes, want), where
            assert same_bits(values, per_block), where
        else:
            decided = want >= 0
            assert decided.mean() > 0.99, where
            assert_codes_equal(sf.element, x[decided], codes[decided], want[decided], where)
            assert_values_of_codes(values, codes.astype(np.int64), per_block, sf, decided, where)
        assert stats == numpy_stats == quantize_stats, (where, stats, numpy_stats, quantize_stats)


@pytest.mark.parametrize("simd", ["portable", "avx2", "best"])
def test_every_simd_copy_gives_the_exact_references_bits(simd):
    level, results = run_in_subprocess(simd)
    best = int(_c.lib.fl_codec_simd_level()) if "FMTLAB_SIMD" not in os.environ else None
    assert level == {"portable": 0, "avx2": min(level, 1)}.get(simd, level)
    if simd == "portable":
        assert level == 0
    if simd == "best" and best is not None:
        assert level == best
    check_against_reference(results)


def test_the_copies_give_the_same_bits_as_each_other():
    """Stochastic values included (the reference above checks their codes): every copy's
    quantized values equal the portable copy's, bit for bit."""
    _, portable = run_in_subprocess("portable")
    _, best = run_in_subprocess("best")
    for left, right in zip(portable, best):
        assert left[:2] == right[:2]
        for a, b in zip(left[2:], right[2:]):
            if isinstance(a, np.ndarray):
                assert same_bits(a, b) if a.dtype.kind == "f" else np.array_equal(a, b), left[:2]
            else:
                assert a == b, left[:2]
