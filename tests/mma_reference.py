"""A slow, obviously-correct reference for fmtlab's MMA models, in exact rationals.

Written straight from docs/tensor-cores.md §1 and fmtlab/mma.py's docstring, with Python's
``fractions.Fraction``; nothing here calls fmtlab's C core.  An :class:`fmtlab.mma.MMAModel`
is only read for its parameters, and a Format for (man_bits, emin, emax).

Values between blocks are Python floats (every value of the output formats is exact in a
double, and -0.0, inf and nan are needed); inside a block everything is a Fraction.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

NAN = float("nan")
INF = float("inf")


def pow2(k: int) -> Fraction:
    return Fraction(1 << k) if k >= 0 else Fraction(1, 1 << -k)


def floor_log2(x: Fraction) -> int:
    """floor(log2 x) for x > 0, exactly."""
    e = x.numerator.bit_length() - x.denominator.bit_length()
    if pow2(e) > x:
        e -= 1
    if pow2(e + 1) <= x:
        e += 1
    return e


def round_to(x: Fraction, fmt, mode: str) -> float:
    """x rounded to fmt ("toward_zero" or "nearest_even"), subnormals, overflow to +-inf.

    A zero result keeps the sign of x (x itself nonzero)."""
    if x == 0:
        return 0.0
    negative = x < 0
    magnitude = -x if negative else x
    e = max(floor_log2(magnitude), fmt.emin)
    quantum = pow2(e - fmt.man_bits)
    scaled = magnitude / quantum
    kept = math.floor(scaled)
    if mode == "nearest_even":
        rest = scaled - kept
        if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and kept % 2 == 1):
            kept += 1
    elif mode != "toward_zero":
        raise ValueError(mode)
    value = kept * quantum
    largest = (2 - pow2(-fmt.man_bits)) * pow2(fmt.emax)
    result = INF if value > largest else float(value)
    return -result if negative else result


class _CutFormat:
    """The output format with fewer fraction bits: the accumulator cut."""

    def __init__(self, fmt, man_bits):
        self.man_bits, self.emin, self.emax = man_bits, fmt.emin, fmt.emax


def alignment_exponent(x: float, emin: int) -> int:
    return max(floor_log2(abs(Fraction(x))), emin)


def block(a, b, c, include_c, model, c_emin):
    """One block FMA by the definition: sum a[k] * b[k] (+ c), as a float of the out format."""
    a = [float(x) for x in a]
    b = [float(y) for y in b]
    # Special values: any NaN or Inf * 0 -> NaN; +Inf and -Inf -> NaN; else the Inf.
    infinities = set()
    any_nan = include_c and math.isnan(c)
    if include_c and math.isinf(c):
        infinities.add(c > 0)
    for x, y in zip(a, b):
        if math.isnan(x) or math.isnan(y):
            any_nan = True
        elif math.isinf(x) or math.isinf(y):
            if x == 0 or y == 0:
                any_nan = True
            else:
                infinities.add((x > 0) == (y > 0))
    if any_nan or len(infinities) == 2:
        return NAN
    if infinities:
        return INF if infinities.pop() else -INF
    terms = []  # (exact value, alignment exponent)
    all_negative_zero = True if not include_c else (c == 0 and math.copysign(1, c) < 0)
    for x, y in zip(a, b):
        if x == 0 or y == 0:
            if math.copysign(1, x) * math.copysign(1, y) > 0:
                all_negative_zero = False
            continue
        all_negative_zero = False
        exponent = alignment_exponent(x, model.a_format.emin) + alignment_exponent(y, model.b_format.emin)
        terms.append((Fraction(x) * Fraction(y), exponent))
    if include_c and c != 0:
        terms.append((Fraction(c), alignment_exponent(c, c_emin)))
    if not terms:
        return -0.0 if all_negative_zero else 0.0
    top = max(exponent for _, exponent in terms)
    if model.exp_floor is not None:
        top = max(top, model.exp_floor)
    if model.frac_bits is None:
        total = sum(value for value, _ in terms)
    else:
        quantum = pow2(top - model.frac_bits)
        # int() of a Fraction truncates toward zero: the cut without guard or sticky bit
        total = sum(int(value / quantum) * quantum for value, _ in terms)
    if total == 0:
        return 0.0
    result = round_to(total, model.out_format, model.out_rounding)
    cut = model.acc_frac_bits is not None and model.acc_frac_bits < model.out_format.man_bits
    if cut and math.isfinite(result) and result != 0:  # a zero keeps its sign through the cut
        result = round_to(Fraction(result), _CutFormat(model.out_format, model.acc_frac_bits), "toward_zero")
    return result


def special_value(a, b, c):
    """The NaN and Inf rules of every block: any NaN or Inf * 0 -> NaN; +Inf and -Inf -> NaN;
    else the Inf; None when every input is finite."""
    infinities = set()
    any_nan = math.isnan(c)
    if math.isinf(c):
        infinities.add(c > 0)
    for x, y in zip(a, b):
        if math.isnan(x) or math.isnan(y):
            any_nan = True
        elif math.isinf(x) or math.isinf(y):
            if x == 0 or y == 0:
                any_nan = True
            else:
                infinities.add((x > 0) == (y > 0))
    if any_nan or len(infinities) == 2:
        return NAN
    if infinities:
        return INF if infinities.pop() else -INF
    return None


def block_late(a, b, c, model, c_emin):
    """One block of c_addition="late" (AMD CDNA3) by its definition (fmtlab/mma.py's docstring):
    the products cut and summed without c (two parity groups with product_grouping="odd_even"),
    then the sum rounded down to 31 and c to 24 fraction bits below J = max(T, e_c), added, and
    rounded once."""
    a = [float(x) for x in a]
    b = [float(y) for y in b]
    special = special_value(a, b, c)
    if special is not None:
        return special
    products = [Fraction(x) * Fraction(y) for x, y in zip(a, b)]
    overflow = [p > 0 for p in products if abs(p) >= pow2(128)]
    if overflow:
        return NAN if len(set(overflow)) == 2 else (INF if overflow[0] else -INF)
    all_negative_zero = c == 0 and math.copysign(1, c) < 0 and all(
        p == 0 and math.copysign(1, x) * math.copysign(1, y) < 0 for p, x, y in zip(products, a, b))
    groups = 2 if model.product_grouping == "odd_even" else 1
    F = model.frac_bits
    tops, sums = [None] * groups, [Fraction(0)] * groups
    for q, (p, x, y) in enumerate(zip(products, a, b)):
        if p != 0:
            e = alignment_exponent(x, model.a_format.emin) + alignment_exponent(y, model.b_format.emin)
            g = q % groups
            tops[g] = e if tops[g] is None else max(tops[g], e)
    for q, p in enumerate(products):
        if p != 0:
            quantum = pow2(tops[q % groups] - F)
            sums[q % groups] += int(p / quantum) * quantum  # int() truncates toward zero
    present = [t for t in tops if t is not None]
    top = max(present) if present else None
    if top is None:
        total_products = Fraction(0)
    elif groups == 2:
        quantum = pow2(top - F)
        total_products = sum(math.floor(s / quantum) * quantum for s in sums)
    else:
        total_products = sums[0]
    e_c = alignment_exponent(c, c_emin) if c != 0 else c_emin
    joint = e_c if top is None else max(top, e_c)
    products_down = math.floor(total_products / pow2(joint - 31)) * pow2(joint - 31)
    if c == 0 or (groups == 2 and e_c < joint - 25):
        c_down = Fraction(0)
    else:
        c_down = math.floor(Fraction(c) / pow2(joint - 24)) * pow2(joint - 24)
    total = products_down + c_down
    if total == 0:
        return -0.0 if all_negative_zero else 0.0
    return round_to(total, model.out_format, model.out_rounding)


def flush_input(x: float, fmt) -> float:
    """flush_inputs: below fmt's smallest normal 2^emin (zeros too) becomes +0."""
    return 0.0 if abs(x) < 2.0 ** fmt.emin else x


def add_nearest_even(x: float, y: float, fmt) -> float:
    """x + y rounded once to fmt with nearest-even (the separate adder, the promotion add)."""
    if math.isnan(x) or math.isnan(y) or (math.isinf(x) and math.isinf(y) and x != y):
        return NAN
    if math.isinf(x) or math.isinf(y):
        return x if math.isinf(x) else y
    total = Fraction(x) + Fraction(y)
    if total == 0:
        return -0.0 if (math.copysign(1, x) < 0 and math.copysign(1, y) < 0) else 0.0
    return round_to(total, fmt, "nearest_even")


def dot(a, b, c, model) -> float:
    """One output element: sum_k a[k] b[k] + c under ``model``."""
    from fmtlab.formats import FP32
    k = len(a)
    if model.flush_inputs:
        a = [flush_input(float(x), model.a_format) for x in a]
        b = [flush_input(float(y), model.b_format) for y in b]
    positive_zero = model.zero_sign == "positive"
    if model.summation == "pairwise":
        def out(x):  # flush_outputs: a float32 below 2^-126 becomes a zero of its sign
            x = np.float32(x)
            return np.float32(x * 0) if model.flush_outputs and abs(x) < 2.0 ** -126 else x

        with np.errstate(all="ignore"):  # overflow to inf is the intended float32 behaviour
            products = [out(np.float64(x) * np.float64(y)) for x, y in zip(a, b)]

        def pairwise(values):
            if len(values) == 1:
                return values[0]
            half = len(values) // 2
            return out(np.float32(pairwise(values[:half]) + pairwise(values[half:])))

        total = np.float32(flush_input(float(c), FP32) if model.flush_inputs else c)
        size = model.block or max(k, 1)
        with np.errstate(all="ignore"):
            for start in range(0, k, size):
                total = out(np.float32(total + pairwise(products[start:start + size])))
        total = float(total)
        return 0.0 if positive_zero and total == 0 else total
    c = round_to(Fraction(c), model.c_format, "nearest_even") if math.isfinite(c) and c != 0 else float(c)
    if model.flush_inputs:
        c = flush_input(c, model.c_format)
    block_size = model.block or model.promote_every or max(k, 1)
    chunk = model.promote_every or max(k, 1)
    promoted = c
    for chunk_start in range(0, k, chunk):
        chain = 0.0 if model.promote_every else promoted
        chunk_end = min(chunk_start + chunk, k)
        for start in range(chunk_start, chunk_end, block_size):
            end = min(start + block_size, chunk_end)
            first = start == 0 and not model.promote_every
            c_emin = model.c_format.emin if first else model.out_format.emin
            if math.isnan(chain):
                continue
            if model.c_addition == "late":
                chain = block_late(a[start:end], b[start:end], chain, model, c_emin)
            elif model.c_addition == "fused":
                chain = block(a[start:end], b[start:end], chain, True, model, c_emin)
            else:
                products = block(a[start:end], b[start:end], 0.0, False, model, c_emin)
                chain = add_nearest_even(chain, products, model.out_format)
            if positive_zero and chain == 0:
                chain = 0.0
        promoted = add_nearest_even(promoted, chain, FP32) if model.promote_every else chain
    return promoted


def matmul(A, B, C, model) -> np.ndarray:
    """D = A @ B + C for 2-D A (m x k), B (k x n), C (m x n or None), as float32."""
    A = np.asarray(A, dtype=np.float32)
    B = np.asarray(B, dtype=np.float32)
    m, n = A.shape[0], B.shape[1]
    out = np.empty((m, n), dtype=np.float32)
    for i in range(m):
        for j in range(n):
            c = 0.0 if C is None else float(C[i, j])
            out[i, j] = dot(A[i, :].tolist(), B[:, j].tolist(), c, model)
    return out


def canonical_nan_bits(fmt) -> int:
    """float32 bits of the out format's canonical NaN (all exponent and fraction bits set)."""
    if fmt.man_bits == 0:
        return 0x7FC00000
    return 0x7F800000 | (((1 << fmt.man_bits) - 1) << (23 - fmt.man_bits))


# ---- Blackwell block-scaled MMA (fmtlab/mma_block_scaled.py's docstring, docs/tensor-cores.md §9) ----

def scale_exponent(s: float, scale_emin: int) -> int:
    """E(S): floor(log2 S), at least the scale format's e_min; a zero scale counts as -126."""
    return -126 if s == 0 else max(floor_log2(Fraction(s)), scale_emin)


def block_scaled_block(a, b, sa, sb, c, model, scale_emin):
    """One instruction block: a, b element values, sa, sb the block scale of each element k
    (floats), c a float32 value; the model's rules, in Fractions."""
    from fmtlab.formats import FP32
    # specials: a NaN element or scale, Inf * 0, +Inf with -Inf
    infinities = set()
    any_nan = math.isnan(c)
    if math.isinf(c):
        infinities.add(c > 0)
    for x, y, s, t in zip(a, b, sa, sb):
        if any(math.isnan(v) for v in (x, y, s, t)):
            any_nan = True
        elif math.isinf(x) or math.isinf(y):
            if x == 0 or y == 0 or s == 0 or t == 0:
                any_nan = True
            else:
                infinities.add((x > 0) == (y > 0))
    if any_nan or len(infinities) == 2:
        return NAN
    if infinities:
        return INF if infinities.pop() else -INF
    F = model.frac_bits
    emin = model.a_format.emin
    terms = []  # (exact value, alignment exponent)
    if model.group_sum is None:
        for x, y, s, t in zip(a, b, sa, sb):
            if x != 0 and y != 0 and s != 0 and t != 0:
                exponent = (alignment_exponent(x, emin) + alignment_exponent(y, emin)
                            + scale_exponent(s, scale_emin) + scale_exponent(t, scale_emin))
                terms.append((Fraction(x) * Fraction(y) * Fraction(s) * Fraction(t), exponent))
        if c != 0:
            terms.append((Fraction(c), alignment_exponent(c, FP32.emin)))
    else:
        g = model.group_sum
        for start in range(0, len(a), g):
            group = sum((Fraction(x) * Fraction(y) for x, y in zip(a[start:start + g], b[start:start + g])),
                        Fraction(0))
            s, t = sa[start], sb[start]
            terms.append((group * Fraction(s) * Fraction(t),
                          scale_exponent(s, scale_emin) + scale_exponent(t, scale_emin)))
        terms.append((Fraction(c), alignment_exponent(c, FP32.emin) if c != 0 else FP32.emin))
    all_negative_zero = c == 0 and math.copysign(1, c) < 0 and all(
        (x == 0 or y == 0) and math.copysign(1, x) * math.copysign(1, y) < 0 for x, y in zip(a, b))
    if not terms:
        return -0.0 if all_negative_zero else 0.0
    top = max(exponent for _, exponent in terms)
    quantum = pow2(top - F)
    total = sum(int(value / quantum) * quantum for value, _ in terms)  # int() truncates toward zero
    if total == 0:
        return -0.0 if all_negative_zero else 0.0
    return round_to(total, FP32, "toward_zero")


def block_scaled_dot(a, b, sa, sb, c, model, tensor_scales=None):
    """One output element of a block-scaled model: a, b element values over K, sa, sb the block
    scale of each k, c the addend; tensor_scales=(t_a, t_b) runs the NVFP4 epilogue
    RN(RN(alpha acc) + c), alpha = RN(t_a t_b)."""
    from fmtlab.formats import FP32
    c = round_to(Fraction(c), FP32, "nearest_even") if math.isfinite(c) and c != 0 else float(c)
    scale_emin = model.scale_format.emin
    chain = 0.0 if tensor_scales is not None else c
    for start in range(0, len(a), model.block):
        end = start + model.block
        chain = block_scaled_block(a[start:end], b[start:end], sa[start:end], sb[start:end], chain, model,
                                   scale_emin)
    if tensor_scales is None:
        return chain
    alpha = round_to(Fraction(tensor_scales[0]) * Fraction(tensor_scales[1]), FP32, "nearest_even")
    if math.isfinite(chain):
        scaled = round_to(Fraction(alpha) * Fraction(chain), FP32, "nearest_even") if chain != 0 \
            else math.copysign(0.0, chain) * math.copysign(1.0, alpha)
    else:
        scaled = chain * alpha
    return add_nearest_even(scaled, c, FP32)
