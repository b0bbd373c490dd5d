"""The AVX-512 kernels that round in float32 on the binade (csrc/codec_avx512.c's binade_magic
steps): |x| + 2^(e + shift), with e = max(the exponent of |x|, emin), rounds |x| to the format ties
to even for normal and subnormal results alike (nearest-even); rounded toward zero it is the lower
neighbour, and the remainder gives nu 2^32 for exact stochastic rounding and sr_rule="truncate"
with sr_bits <= 23 - m.  The value and code come from the sum.

fl_fast_f32_block runs that kernel on a 512-block after a block with at least MAGIC_SWITCH (3)
subnormal or zero results (codec_fast.c), so the arrays here alternate a block of tiny values
(which switches it on) with a block under test: ties between every pair of neighbouring codes and
their float32 neighbours, the smallest steps, min_normal, max and past it, the float32 values
around magic_hi (2^(128 - shift), above which the magic would pass float32's range), float32
subnormals, random bit patterns and standard-normal data.  Each must give the float64 path's codes
and Stats (encode_one alone), quantize = decode with the same Stats, and a sample the exact
reference (tests/reference.py).  On other SIMD levels the same checks run on their kernels.
"""
import numpy as np
import pytest

import fmtlab as fl

BLOCK = 512
# formats with ieee subnormals that the float32 kernels take in the lanes (emin <= m, emin >= -126)
PRESETS = ("e4m3fn", "e5m2", "bf16", "fp16", "cfloat8_1_4_3", "p3109_8p3", "p3109_8p1")


def random_formats(rng, count):
    """Custom formats of every sign and specials policy with ieee subnormals and emin in
    [-126, m], biases across that range (the kernel's only condition besides nearest-even)."""
    formats = []
    while len(formats) < count:
        signed = bool(rng.integers(2))
        exp_bits = int(rng.integers(2, 9))
        man_bits = int(rng.integers(1, 11))
        specials = ("ieee", "fn", "fnuz", "finite", "p3109")[int(rng.integers(5))]
        low, high = 1 - man_bits, 127  # emin = 1 - bias in [-126, m]
        bias = int(rng.integers(low, high + 1))
        try:
            fmt = fl.Format(exp_bits, man_bits, bias, signed, specials, "ieee")
        except ValueError:
            continue
        if fmt.max > 0 and fmt.emin >= -126 and fmt.emin <= man_bits:
            formats.append(fmt)
    return formats


def blocks_under_test(rng, fmt):
    """Four 512-blocks of hard inputs for fmt (float32)."""
    fmt = fl.formats.as_format(fmt)
    top = min(fmt.max, float(np.finfo(np.float32).max))
    width = fmt.bits - (1 if fmt.signed else 0)
    codes = rng.integers(0, (1 << width) - 1, 2 * BLOCK).astype(np.uint32)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        values = fl.decode(codes, fmt).astype(np.float64)
        following = fl.decode(codes + 1, fmt).astype(np.float64)
        ties = ((values + following) / 2).astype(np.float32)
        ties = ties[np.isfinite(ties)][:BLOCK // 3]
        shift = 23 - fmt.man_bits
        magic_edge = np.float32(2.0 ** (128 - shift)) if 128 - shift <= 127 else np.float32(np.inf)
        edges = np.array([fmt.max, top, fmt.min_normal, 2.0 ** (fmt.emin - fmt.man_bits),
                          2.0 ** (fmt.emin - fmt.man_bits - 1), 0.0, magic_edge,
                          np.finfo(np.float32).tiny, 2.0 ** -149, np.finfo(np.float32).max], dtype=np.float32)
        special = np.concatenate([ties, np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(0)),
                                  edges, np.nextafter(edges, np.float32(np.inf)), np.nextafter(edges, np.float32(0))])
        first = np.resize(special, BLOCK)
        # around magic_hi and max: a few binades either side, random significands
        around = np.concatenate([
            (np.float32(magic_edge) * np.exp2(rng.integers(-3, 2, BLOCK // 2)) *
             (1 + rng.random(BLOCK // 2))).astype(np.float32),
            (np.float32(top) * rng.uniform(0.25, 2.0, BLOCK // 2)).astype(np.float32)])
        random_bits = rng.integers(0, 1 << 32, BLOCK, dtype=np.uint64).astype(np.uint32).view(np.float32)
        normal = (rng.standard_normal(BLOCK) * np.float32(min(1.0, top))).astype(np.float32)
        tested = [first, around, random_bits, normal]
    out = []
    for block in tested:
        block = block.astype(np.float32)
        if fmt.signed:
            block = np.where(rng.integers(0, 2, BLOCK).astype(bool), -block, block).astype(np.float32)
        else:
            block = np.abs(block)
        out.append(block)
    return out


def tiny_block(rng, fmt):
    """A block whose results are mostly subnormal or zero (switches the magic kernel on)."""
    fmt = fl.formats.as_format(fmt)
    x = (fmt.min_normal * rng.random(BLOCK)).astype(np.float32)
    return np.where(rng.integers(0, 2, BLOCK).astype(bool), -x, x).astype(np.float32) if fmt.signed else x


def roundings(fmt):
    """Nearest-even and the stochastic roundings with a magic kernel (sr_bits=None, truncate with
    sr_bits <= 23 - m), with and without saturation; one general sr_bits rule as a control."""
    shift = 23 - fmt.man_bits
    yield "nearest_even", dict(saturate=False)
    yield "nearest_even", dict(saturate=True)
    yield "stochastic", dict(saturate=False)
    yield "stochastic", dict(saturate=True)
    for sr_bits in sorted({1, 3, min(8, shift), shift}):
        yield "stochastic", dict(sr_bits=sr_bits, saturate=bool(sr_bits & 1))
    yield "stochastic", dict(sr_bits=min(8, shift), sr_rule="nearest_even", saturate=False)


def check(fmt, rng, reference_sample=40):
    from reference import reference_round
    from test_codec_simd import _stochastic_reference
    fmt = fl.formats.as_format(fmt)
    pieces = []
    for block in blocks_under_test(rng, fmt):
        pieces += [tiny_block(rng, fmt), block]
    x = np.concatenate(pieces + [tiny_block(rng, fmt)[:37]])
    seed = int(rng.integers(0, 2**64, dtype=np.uint64))
    offset = int(rng.integers(0, 2**62))
    for mode, keywords in roundings(fmt):
        keywords = dict(keywords, seed=seed, index_offset=offset)
        saturate = keywords["saturate"]
        label = (str(fmt), mode, keywords)
        with np.errstate(invalid="ignore", over="ignore", under="ignore"):
            codes, stats = fl.encode(x, fmt, mode, stats=True, **keywords)
            codes64, stats64 = fl.encode(x.astype(np.float64), fmt, mode, stats=True, **keywords)
            np.testing.assert_array_equal(codes, codes64, err_msg=str(label))
            assert stats == stats64, label
            values, quantize_stats = fl.quantize(x, fmt, mode, stats=True, **keywords)
            assert quantize_stats == stats, label
            decoded = fl.decode(codes, fmt).astype(np.float32)
            np.testing.assert_array_equal(values.view(np.uint32), decoded.view(np.uint32), err_msg=str(label))
            # the blocks under test, element by element against the exact reference
            for number in range(4):
                start = (2 * number + 1) * BLOCK
                for i in start + rng.choice(BLOCK, reference_sample, replace=False):
                    if np.isnan(x[i]) or (x[i] < 0 and not fmt.signed):
                        continue
                    if mode == "nearest_even":
                        expected = reference_round(x[i], fmt, mode, saturate)
                    else:
                        expected = _stochastic_reference(fmt, x[i], offset + int(i), seed, keywords.get("sr_bits"),
                                                         keywords.get("sr_rule", "truncate"), saturate)
                    if expected is not None:
                        assert int(codes[i]) == expected, (label, float(x[i]), int(i))


@pytest.mark.parametrize("fmt", PRESETS, ids=str)
def test_presets_after_subnormal_blocks(fmt):
    check(fmt, np.random.default_rng([20261202, 21, PRESETS.index(fmt)]))


def test_random_formats_after_subnormal_blocks():
    rng = np.random.default_rng([20261202, 21, 99])
    for fmt in random_formats(rng, 40):
        check(fmt, rng, reference_sample=8)


