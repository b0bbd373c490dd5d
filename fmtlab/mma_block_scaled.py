"""Blackwell block-scaled MMA (tcgen05 ``kind::mxf8f6f4``, ``kind::mxf4``, ``kind::mxf4nvf4``).

The C kernel csrc/mma_block_scaled.c, and a numpy implementation in exact int64 arithmetic that
it is tested against (docs/tensor-cores.md §9).
Operands are the :class:`fmtlab.scaled.ScaledCodes` of ``fl.encode``: A (m x K) with blocks along
its last axis, B (K x n) with blocks along its first axis.  Each element is s * 2^e as in the
plain model (e >= e_min of the element format); a block scale S is 2^(code - 127) for E8M0 and,
for UE4M3, the e4m3fn value of the code with its sign bit ignored.  E(S) is the scale's exponent
(floor(log2 S), at least e_min of the scale format; a zero UE4M3 scale counts as -126).

The K axis is cut into instruction blocks of ``model.block`` elements (32 for kind::mxf8f6f4, 64
for kind::mxf4 / mxf4nvf4); each block's result is the c of the next.  In one block, with A's
row scale S_a and B's column scale S_b of the scale block holding element k:

* ``group_sum=None`` (kind::mxf8f6f4): the terms are the products a_k b_k S_a S_b, exact, with
  alignment exponent e_a + e_b + E(S_a) + E(S_b), and c; M = the largest exponent of the nonzero
  terms; the plain model's steps 4-6 follow (cut to F = frac_bits bits below M toward zero, exact
  sum, one rounding toward zero to float32).
* ``group_sum=G`` (kind::mxf4, mxf4nvf4; G = 16): the products of each G consecutive elements
  (the groups starting below K) are summed exactly; a group's term is that sum times S_a S_b,
  with alignment exponent E(S_a) + E(S_b) whatever the elements are; c has exponent
  max(floor(log2 |c|), -126), c = 0 counting as -126; M = the largest of them all; then the cut
  to F bits below M, exact sum, one rounding toward zero to float32.

Special values: a NaN element or scale, Inf * 0, or +Inf and -Inf give the canonical NaN;
otherwise an Inf gives Inf; overflow gives Inf; an exact zero is -0 only when every term is -0.
With a tensor scale (NVFP4's second level, which the tensor core never sees) the MMA runs with
c = 0 and an epilogue gives D = RN(RN(alpha * acc) + C), alpha = RN(t_a t_b), float32 (C = None: +0).
"""
from __future__ import annotations

import numpy as np

from . import codec
from .formats import FP32, E8M0, E4M3FN, as_format

__all__ = ["scale_values_and_exponents", "block_scaled_matmul", "check_operand"]

_ZERO_SCALE_EXPONENT = -126  # MMA-Sim's exponent of a zero (float32's e_min)
_CANONICAL_NAN = np.uint32(0x7FFFFFFF)
_IMPLEMENTATIONS = ("c", "c_reference", "numpy")


def _is_e8m0(fmt) -> bool:
    return fmt == E8M0


def scale_values_and_exponents(codes, scale_format):
    """(value float64, integer significand int64, exponent E int64, significand bits) of scale
    codes: S = significand * 2^(E - bits); E8M0: significand 1, bits 0; UE4M3 (an e4m3fn scale
    read unsigned, as the PTX ISA's ue4m3): the code's sign bit ignored."""
    codes = np.asarray(codes)
    if _is_e8m0(scale_format):
        code = codes.astype(np.int64)
        values = np.where(code == 255, np.nan, np.ldexp(1.0, (code - 127).astype(np.int32)))
        return values, np.ones_like(code), code - 127, 0
    if scale_format == E4M3FN:
        values = codec.decode(np.asarray(codes, dtype=np.uint8) & 0x7F, E4M3FN).astype(np.float64)
        significand, exponent = _significands(values, E4M3FN)
        exponent = np.where(significand == 0, _ZERO_SCALE_EXPONENT, exponent)
        return values, significand, exponent, E4M3FN.man_bits
    raise ValueError(f"scale format {scale_format} is not a tensor-core block scale (ue8m0 or ue4m3)")


def _significands(values, fmt):
    """Integer significand s and alignment exponent e of finite values: |v| = s * 2^(e - man_bits),
    e = max(floor(log2 |v|), e_min); specials and zeros give s = 0, e = e_min."""
    finite = np.isfinite(values) & (values != 0)
    magnitude = np.where(finite, np.abs(values), 1.0)
    exponent = np.maximum(np.frexp(magnitude)[1] - 1, fmt.emin).astype(np.int64)
    significand = np.where(finite, np.ldexp(magnitude, (fmt.man_bits - exponent).astype(np.int32)), 0.0)
    return significand.astype(np.int64), np.where(finite, exponent, fmt.emin)


def check_operand(q, argument, model, k_axis):
    """The ScaledCodes q checked against the block-scaled ``model`` (2-D, blocks along K)."""
    from .scaled import ScaledCodes

    if not isinstance(q, ScaledCodes):
        raise TypeError(f"{argument} must be the ScaledCodes of fl.encode(x, fl.format(...)) for the block-scaled "
                        f"model {model}, got {type(q).__name__}")
    sf = q.format
    if q.codes.ndim != 2:
        raise ValueError(f"{argument} has shape {q.codes.shape}: block-scaled matmul takes 2-D operands "
                         "(A: m x K, B: K x n)")
    axis = sf.axis % 2 if isinstance(sf.block, int) else None
    wanted = "mxfp8_e4m3-style blocks along its last axis (axis=-1)" if k_axis == 1 else \
        "blocks along its first axis (e.g. fl.format('mxfp8_e4m3:axis=0'))"
    if axis != k_axis:
        raise ValueError(f"{argument}={sf} is not allowed: its blocks must run along K, so {argument} needs "
                         f"{wanted}; got block={sf.block!r}, axis={sf.axis}")
    problems = []
    if sf.element != model.a_format:
        problems.append(f"element {sf.element} (need {model.a_format})")
    if sf.scale != model.scale_format:
        problems.append(f"scale {sf.scale} (need {model.scale_format})")
    if sf.block != model.scale_block:
        problems.append(f"block {sf.block} (need {model.scale_block})")
    if problems:
        raise ValueError(f"{argument}={sf} is not allowed for {model}: " + ", ".join(problems))
    return sf


def _tensor_scale_value(q):
    if q.format.tensor_scale is None:
        return None
    if q.tensor_scale is None:
        raise ValueError(f"{q.format} has a tensor scale, but tensor_scale is None")
    return float(codec.decode(np.array([q.tensor_scale]).astype(q.format.tensor_scale.code_dtype),
                              q.format.tensor_scale)[0])


def _round_toward_zero_f32(total, exponent):
    """float32 of total * 2^exponent (total int64, |total| < 2^53) rounded toward zero;
    +-Inf from 2^128 up."""
    exact = np.ldexp(total.astype(np.float64), exponent.astype(np.int32))  # exact: in double's range
    with np.errstate(over="ignore"):
        nearest = exact.astype(np.float32)
    too_far = np.abs(nearest.astype(np.float64)) > np.abs(exact)
    nearest = np.where(too_far, np.nextafter(nearest, np.float32(0)), nearest)
    return np.where(np.abs(exact) >= 2.0 ** 128, np.copysign(np.float32(np.inf), exact), nearest).astype(np.float32)


def _run_c(model, a_values, b_values, sa, sb, c, m, n, k, reference):
    """The C kernel (csrc/mma_block_scaled.c) on the decoded elements (float32, exact) and the
    scales (value, significand, exponent, significand bits)."""
    from . import _c

    element = model.a_format
    grouped = model.group_sum is not None
    keep = []

    def array(values, dtype, c_type):
        values = np.ascontiguousarray(values, dtype=dtype)
        keep.append(values)
        return _c.ffi.cast(c_type + " *", _c.pointer(values, "void"))

    struct = _c.ffi.new("fl_mma_block_scaled *")
    struct.m, struct.n, struct.k = m, n, k
    struct.block, struct.scale_block, struct.group_sum = model.block, model.scale_block, model.group_sum or 0
    struct.scale_blocks = sa[0].shape[1]
    struct.frac_bits = model.frac_bits
    struct.value_offset = (2 * element.emin if grouped else 0) - 2 * element.man_bits - sa[3] - sb[3]
    struct.element_emin, struct.element_emax, struct.element_man_bits = element.emin, element.emax, element.man_bits
    struct.a_values = array(a_values, np.float32, "float")
    struct.b_values = array(b_values, np.float32, "float")
    struct.sa_value, struct.sb_value = array(sa[0], np.float64, "double"), array(sb[0].T, np.float64, "double")
    struct.sa_sig, struct.sa_exp = array(sa[1], np.int32, "int32_t"), array(sa[2], np.int32, "int32_t")
    struct.sb_sig, struct.sb_exp = array(sb[1].T, np.int32, "int32_t"), array(sb[2].T, np.int32, "int32_t")
    struct.reference = 1 if reference else 0
    d = np.empty((m, n), np.float32)
    c_pointer = _c.ffi.NULL if c is None else _c.pointer(c, "float")
    status = _c.lib.fl_mma_block_scaled_f32(struct, c_pointer, _c.pointer(d, "float"))
    _c.check_status(status, f"block-scaled matmul (m={m}, n={n}, k={k}, model {model})")
    return d


def _cut(values, shift):
    """values * 2^shift cut toward zero (int64 values, int64 shifts)."""
    left = np.clip(shift, 0, 62)
    right = np.clip(-shift, 0, 63)
    magnitude = np.abs(values)
    cut = np.where(shift >= 0, magnitude << left, magnitude >> right)
    return np.where(values < 0, -cut, cut)


def block_scaled_matmul(qa, qb, C, model, *, implementation="c"):
    """D = A B + C of the block-scaled ``model`` (module docstring); float32, m x n.

    implementation: "c" (csrc/mma_block_scaled.c, threaded: its AVX-512 fast path where the
    CPU has it, the definition elsewhere), "c_reference" (the same C file's definition for every
    element: the fast path's peer in the tests) or "numpy" (this file, the vectorised definition
    the C kernel is tested against)."""
    if implementation not in _IMPLEMENTATIONS:
        raise ValueError(f"implementation={implementation!r} is not allowed; choose one of "
                         + ", ".join(repr(name) for name in _IMPLEMENTATIONS))
    check_operand(qa, "A", model, 1)
    check_operand(qb, "B", model, 0)
    m, k = qa.codes.shape
    k_b, n = qb.codes.shape
    if k != k_b:
        raise ValueError(f"A.shape={qa.codes.shape} and B.shape={qb.codes.shape} do not match: A has {k} columns "
                         f"and B has {k_b} rows (the contracted dimension K must agree)")
    element = model.a_format
    a_values = codec.decode(qa.codes, element)
    b_values = codec.decode(qb.codes, element)
    sa_value, sa_sig, sa_exp, sa_bits = scale_values_and_exponents(qa.scales, model.scale_format)
    sb_value, sb_sig, sb_exp, sb_bits = scale_values_and_exponents(qb.scales, model.scale_format)
    alpha = None
    ta, tb = _tensor_scale_value(qa), _tensor_scale_value(qb)
    if ta is not None or tb is not None:
        alpha = np.float32(np.float32(1.0 if ta is None else ta) * np.float32(1.0 if tb is None else tb))
    c_given = None
    if C is not None:
        from .codec import quantize
        try:
            c_full = np.broadcast_to(np.asarray(C, dtype=np.float64), (m, n))
        except ValueError:
            raise ValueError(f"C.shape={np.shape(C)} does not broadcast to the result's shape {(m, n)}") from None
        c_full = quantize(c_full, FP32, "nearest_even")
        c_given = np.ascontiguousarray(c_full, dtype=np.float32)
    if implementation != "numpy" and m * n:
        d = _run_c(model, a_values, b_values, (sa_value, sa_sig, sa_exp, sa_bits),
                   (sb_value, sb_sig, sb_exp, sb_bits), None if alpha is not None else c_given, m, n, k,
                   reference=implementation == "c_reference")
        return _epilogue(d, alpha, c_given, m, n)
    a_values, b_values = a_values.astype(np.float64), b_values.astype(np.float64)
    a_sig, a_exp = _significands(a_values, element)
    b_sig, b_exp = _significands(b_values, element)
    a_sig = np.where(np.signbit(a_values), -a_sig, a_sig)
    b_sig = np.where(np.signbit(b_values), -b_sig, b_sig)
    scale_of_k = np.arange(k) // model.scale_block
    # per element k: the scale of its block, for A (m x K) and B (K x n)
    sa_value, sa_sig, sa_exp = (x[:, scale_of_k] for x in (sa_value, sa_sig, sa_exp))
    sb_value, sb_sig, sb_exp = (x[scale_of_k, :] for x in (sb_value, sb_sig, sb_exp))
    c = np.zeros((m, n), np.float32)
    if c_given is not None and alpha is None:
        c = c_given.copy()
    man = element.man_bits
    F = model.frac_bits
    for start in range(0, k, model.block):
        end = min(start + model.block, k)
        a = slice(start, end)
        ap, bp = a_values[:, a][:, None, :], b_values[a, :].T[None, :, :]          # m x 1 x b, 1 x n x b
        with np.errstate(invalid="ignore", over="ignore"):
            special = ap * bp * sa_value[:, a][:, None, :] * sb_value[a, :].T[None, :, :]
        nan = np.isnan(special).any(axis=2) | np.isnan(c)
        positive = (special == np.inf).any(axis=2) | (c == np.inf)
        negative = (special == -np.inf).any(axis=2) | (c == -np.inf)
        products = a_sig[:, a][:, None, :] * b_sig[a, :].T[None, :, :]            # s_a s_b, int64
        c_sig, c_exp = _significands(c.astype(np.float64), FP32)
        c_sig = np.where(np.signbit(c), -c_sig, c_sig)
        c_exp = c_exp - FP32.man_bits                                                # c = c_sig 2^c_exp
        c_align = c_exp + FP32.man_bits
        scale_exp = sa_exp[:, a][:, None, :] + sb_exp[a, :].T[None, :, :]
        scale_sig = sa_sig[:, a][:, None, :] * sb_sig[a, :].T[None, :, :]
        if model.group_sum is None:
            align = a_exp[:, a][:, None, :] + b_exp[a, :].T[None, :, :] + scale_exp
            value_exp = align - 2 * man - sa_bits - sb_bits
            terms = products * scale_sig
            present = terms != 0
            top = np.max(np.where(present, align, np.iinfo(np.int64).min // 4), axis=2)
            top = np.maximum(top, np.where(c != 0, c_align, np.iinfo(np.int64).min // 4))
        else:
            g = model.group_sum
            width = end - start
            groups = -(-width // g)
            pad = groups * g - width
            shifted = products << (a_exp[:, a][:, None, :] + b_exp[a, :].T[None, :, :] - 2 * element.emin)
            shifted = np.pad(shifted, ((0, 0), (0, 0), (0, pad))).reshape(m, n, groups, g).sum(axis=3)
            first = slice(start, end, g)
            align = sa_exp[:, first][:, None, :] + sb_exp[first, :].T[None, :, :]
            value_exp = align + 2 * element.emin - 2 * man - sa_bits - sb_bits
            terms = shifted * (sa_sig[:, first][:, None, :] * sb_sig[first, :].T[None, :, :])
            present = np.ones(terms.shape, bool)
            top = np.maximum(np.max(align, axis=2), c_align)
        total = _cut(terms, value_exp - (top[..., None] - F)).sum(axis=2) + _cut(c_sig, c_exp - (top - F))
        all_negative_zero = (c == 0) & np.signbit(c) & np.all(
            (products == 0) & (np.signbit(ap) ^ np.signbit(bp)), axis=2)
        result = _round_toward_zero_f32(total, top - F)
        result = np.where(total == 0, np.where(all_negative_zero, np.float32(-0.0), np.float32(0.0)), result)
        result = np.where(positive, np.float32(np.inf), result)
        result = np.where(negative, np.float32(-np.inf), result)
        result = np.where(nan | (positive & negative), np.float32(np.nan), result).astype(np.float32)
        c = result
    return _epilogue(c, alpha, c_given, m, n)


def _epilogue(d, alpha, c_given, m, n):
    """NVFP4's tensor scales: RN(RN(alpha d) + C); every NaN made canonical."""
    if alpha is not None:
        with np.errstate(all="ignore"):
            d = (alpha * d).astype(np.float32)
            d = (d + (np.zeros((m, n), np.float32) if c_given is None else c_given)).astype(np.float32)
    d = np.array(d, dtype=np.float32)
    d.view(np.uint32)[np.isnan(d)] = _CANONICAL_NAN
    return d
