"""Pure-torch quantize: the C codec's bit manipulation (csrc/round.h) in torch integer ops.

This is the path that tensors on a GPU (or any non-CPU device) take; it must give the
same bits as the C core, so it follows ``encode_one`` and ``decode_one`` step by step.
The rules themselves are stated once, in :mod:`fmtlab.codec`'s docstring.

Every input is widened to float64 (exact) and split as |x| = S * 2^k with S an integer
significand (< 2^53).  With 2^q the spacing of the format's values around |x| and
shift = q - k,

    units = floor(S / 2^shift),   remainder = S mod 2^shift,   nu = remainder / 2^shift,

the magnitude code of lo is ``code_base + units`` and that of hi is one more.  The mode
decides ``away`` (0 or 1); ``code = lo_code + away`` is compared with the largest
finite code for overflow, then decoded back to a value:

    normal code (E >= 1):  (2^m + M) * 2^(E - bias - m)
    subnormal code:        M * 2^(emin - m)      (Tesla reading: M * 2^(-bias - m))

Stochastic rounding draws 64-bit words from the same counter-based generator as the C
core, ``random_word(seed, index, draw)``: SplitMix64 used as a counter-based generator,
a pure function of (seed, element index, draw number).  torch has no unsigned 64-bit arithmetic on every
device, so words live in int64 (two's complement wraps like uint64 for +, *, ^, <<);
logical right shifts mask off the sign extension, and unsigned comparisons flip the
top bit first.

Only :func:`quantize` is public here; :mod:`fmtlab.torch` wraps it with validation,
autograd and the choice between this path and the C one.
"""
from __future__ import annotations

import functools
import math

import torch

from . import _c
from .formats import SATURATIONS, Format
from .integers import IntFormat

__all__ = ["quantize", "random_word"]

_UINT64_MASK = (1 << 64) - 1
_INT64_MIN = -(1 << 63)


# ---- the counter-based generator (csrc/fmtlab.h: fl_mix64_inline, fl_random_word_inline) -------------

def _as_int64(value: int) -> int:
    """The int64 whose bit pattern is the uint64 ``value``."""
    value &= _UINT64_MASK
    return value - (1 << 64) if value >> 63 else value


def _shift_right_logical(z: torch.Tensor, amount: int) -> torch.Tensor:
    """z >> amount for z read as uint64 (amount in 1..63)."""
    return (z >> amount) & ((1 << (64 - amount)) - 1)


def _unsigned_less(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a < b for a, b read as uint64."""
    return (a ^ _INT64_MIN) < (b ^ _INT64_MIN)


_MIX_1 = _as_int64(0xBF58476D1CE4E5B9)
_MIX_2 = _as_int64(0x94D049BB133111EB)
_GOLDEN = _as_int64(0x9E3779B97F4A7C15)


def _mix64(z: torch.Tensor) -> torch.Tensor:
    """SplitMix64 finaliser on int64 tensors (uint64 arithmetic modulo 2^64)."""
    z = (z ^ _shift_right_logical(z, 30)) * _MIX_1
    z = (z ^ _shift_right_logical(z, 27)) * _MIX_2
    return z ^ _shift_right_logical(z, 31)


def random_word(seed: int, index: torch.Tensor, draw: int) -> torch.Tensor:
    """The generator's 64-bit word for (seed, element index, draw number), as int64 bits.

    word = mix64(stream_key + index * 0x9E3779B97F4A7C15),
    stream_key = mix64(mix64(seed) + draw * 0xD1B54A32D192ED03)   (all modulo 2^64)
    """
    # The per-call key is one scalar: the C core's own mix64 computes it.
    stream_key = _as_int64(_c.mix64(_c.mix64(seed) + draw * 0xD1B54A32D192ED03))
    return _mix64(index * _GOLDEN + stream_key)


# ---- helpers -----------------------------------------------------------------------

def _scale_by_power_of_two(value: torch.Tensor, exponent: int) -> torch.Tensor:
    """value * 2^exponent for a Python int exponent, in exact steps of float64 powers."""
    while exponent != 0:
        step = max(-1000, min(1000, exponent))
        value = value * math.ldexp(1.0, step)
        exponent -= step
    return value


def _power_of_two(exponent: torch.Tensor) -> torch.Tensor:
    """2^exponent as float64 for int64 exponents in -1022..1023 (built from the bits)."""
    return ((exponent + 1023) << 52).view(torch.float64)


def _reduced_fraction(twice, sticky, sr_rule):
    """k, nu * 2^N brought to an integer by ``sr_rule`` (csrc/round.h: sr_reduced_fraction),
    from twice = floor(nu * 2^(N+1)) and sticky = whether nu * 2^(N+1) is not an integer."""
    floor_part, half = twice >> 1, (twice & 1) == 1
    if sr_rule == "truncate":
        return floor_part
    if sr_rule == "nearest_away":
        up = half
    elif sr_rule == "nearest_even":
        up = half & (sticky | ((floor_part & 1) == 1))
    else:  # nearest_odd
        up = half & (sticky | ((floor_part & 1) == 0))
    return floor_part + up.to(torch.int64)


def _stochastic_away(remainder, shift, sr_bits, seed, index, sr_rule="truncate"):
    """Stochastic decision on a power-of-two grid, nu = remainder / 2^shift (shift >= 1).

    sr_bits = N: away iff k + R >= 2^N, R the top N bits of draw 0 and k = nu * 2^N
    brought to an integer by ``sr_rule`` (floor for "truncate").
    sr_bits = 0: away iff U < nu, U a uniform real read 64 bits per draw; a later draw
    is used only where all earlier 64-bit words of U and nu tie.
    """
    if sr_bits > 0:
        kept = sr_bits + 1  # nu to N + 1 bits and a sticky bit
        up_amount = (kept - shift).clamp(min=0, max=63)
        down_amount = (shift - kept).clamp(min=0, max=63)
        long_drop = shift - kept >= 64
        twice = torch.where(shift <= kept, remainder << up_amount,
                            torch.where(long_drop, torch.zeros_like(remainder), remainder >> down_amount))
        dropped_bits = remainder & ((torch.ones_like(remainder) << down_amount) - 1)
        sticky = (shift > kept) & (long_drop | (dropped_bits != 0)) & (remainder != 0)
        scaled = _reduced_fraction(twice, sticky, sr_rule)
        random_bits = _shift_right_logical(random_word(seed, index, 0), 64 - sr_bits)
        return scaled + random_bits >= (1 << sr_bits)

    away = torch.zeros_like(remainder, dtype=torch.bool)
    pending = torch.arange(remainder.numel(), device=remainder.device)
    draw = 0
    while pending.numel():
        r, s = remainder[pending], shift[pending]
        random_bits = random_word(seed, index[pending], draw)
        # shift <= 64: the whole of nu fits in this word.
        threshold = torch.where(s == 64, r, r << (64 - s).clamp(min=0, max=63))
        decided_here = _unsigned_less(random_bits, threshold)
        # shift > 64: compare with the top 64 bits of nu; go on only on a tie.
        top = torch.where(s - 64 >= 64, torch.zeros_like(r), r >> (s - 64).clamp(min=0, max=63))
        long_fraction = s > 64
        decided_here = torch.where(long_fraction, _unsigned_less(random_bits, top), decided_here)
        tie = long_fraction & (random_bits == top)
        away[pending] = decided_here & ~tie
        keep_bits = (s - 64).clamp(min=0, max=63)
        remainder = remainder.clone()
        shift = shift.clone()
        remainder[pending] = torch.where(s - 64 < 64, r & ((torch.ones_like(r) << keep_bits) - 1), r)
        shift[pending] = s - 64
        pending = pending[tie]
        draw += 1
    return away


def _tesla_gap_stochastic(distance, fmt, sr_bits, seed, index, sr_rule="truncate"):
    """Stochastic decision in the Tesla gap [largest subnormal, min_normal).

    gap = min_normal - largest subnormal = (2^m + 1) * 2^(-bias - m), so with M bits
    floor(distance * 2^M / gap) = floor(floor(distance * 2^(M + bias + m)) / (2^m + 1)),
    exact in integers (distance * 2^(M + bias + m) is an integer or its floor is taken
    exactly, and dividing its floor by 2^m + 1 floors the quotient).  With M = N + 1 that
    gives twice = floor(nu * 2^(N+1)), exact when distance * 2^(N+1+bias+m) is an integer
    divisible by 2^m + 1; then k by ``sr_rule`` and away iff k + R >= 2^N.  sr_bits = 0:
    N = 32, truncated.
    """
    if sr_bits == 0:
        n_bits = 32
        whole = torch.floor(_scale_by_power_of_two(distance, n_bits + fmt.bias + fmt.man_bits))
        scaled = whole.to(torch.int64) // ((1 << fmt.man_bits) + 1)
    else:
        n_bits = sr_bits
        scaled_distance = _scale_by_power_of_two(distance, n_bits + 1 + fmt.bias + fmt.man_bits)
        whole = torch.floor(scaled_distance)
        divisor = (1 << fmt.man_bits) + 1
        twice = whole.to(torch.int64) // divisor
        sticky = (whole != scaled_distance) | (whole.to(torch.int64) % divisor != 0)
        scaled = _reduced_fraction(twice, sticky, sr_rule)
    random_bits = _shift_right_logical(random_word(seed, index, 0), 64 - n_bits)
    return scaled + random_bits >= (1 << n_bits)


# ---- quantize ----------------------------------------------------------------------

def quantize(x: torch.Tensor, fmt: Format, rounding: str = "nearest_even", *, saturate=False,
             seed: int = 0, sr_bits: int = 0, sr_rule: str = "truncate",
             index_offset: int = 0) -> torch.Tensor:
    """Round the float32 or float64 tensor ``x`` to ``fmt``; the result has x's dtype and device.

    Arguments are taken as already validated (see :func:`fmtlab.torch.quantize`):
    ``sr_bits`` is 0 for the exact probability, ``seed`` a Python int, ``saturate`` None,
    False, True or a P3109 mode (``"sat_finite"``, ``"sat_propagate"``, ``"sat_none"``),
    ``sr_rule`` one of ``fmtlab._c.SR_RULES``.
    Element i of ``x`` (in row-major order) is element ``index_offset + i`` of the generator.
    An integer format rounds on its ``rounding_format`` and clamps (fmtlab.integers).
    """
    if isinstance(fmt, IntFormat):
        rounded = quantize(x, fmt.rounding_format, rounding, saturate=saturate, seed=seed, sr_bits=sr_bits,
                           sr_rule=sr_rule, index_offset=index_offset)
        return rounded.clamp(fmt.min, fmt.max) + 0.0  # + 0.0: the float format's -0 is the integer 0
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"x has dtype {x.dtype}: the torch codec takes float32 or float64")
    if rounding not in _c.ROUNDING_CODES:  # the branches below would read an unknown mode as stochastic
        raise ValueError(f"rounding={rounding!r} is not allowed; choose one of {', '.join(_c.ROUNDING_CODES)}")
    if sr_rule not in _c.SR_RULE_CODES:  # _reduced_fraction would read an unknown rule as nearest_odd
        raise ValueError(f"sr_rule={sr_rule!r} is not allowed; choose one of {', '.join(_c.SR_RULES)}")
    saturate = _c.saturation_name(saturate)
    p3109_saturation = saturate in SATURATIONS  # these decide unsigned formats' negative inputs themselves
    output_dtype = x.dtype
    value = x.detach().contiguous().reshape(-1).to(torch.float64)
    device = value.device
    count = value.numel()
    index = torch.arange(count, dtype=torch.int64, device=device) + index_offset
    seed = int(seed) & _UINT64_MASK

    m = fmt.man_bits
    emin = fmt.emin
    max_code = fmt.max_magnitude_code
    max_value = fmt.max
    tesla = fmt.subnormals == "tesla"
    has_zero = fmt.has_zero
    has_negative_zero = fmt.has_negative_zero
    # the value of code 0: zero, or the smallest value of a format without zero (E8M0)
    code_zero_value = 0.0 if has_zero else math.ldexp(1.0, emin)

    bits = value.view(torch.int64)
    negative = bits < 0
    magnitude_bits = bits & 0x7FFFFFFFFFFFFFFF
    is_nan = magnitude_bits > 0x7FF0000000000000
    is_inf = magnitude_bits == 0x7FF0000000000000
    is_zero = magnitude_bits == 0
    absolute = value.abs()

    # |x| = significand * 2^lsb_exponent, exponent = floor(log2 |x|).
    raw_exponent = magnitude_bits >> 52
    double_subnormal = raw_exponent == 0
    significand = torch.where(double_subnormal, magnitude_bits,
                              (magnitude_bits & 0x000FFFFFFFFFFFFF) | (1 << 52))
    lsb_exponent = torch.where(double_subnormal, torch.full_like(raw_exponent, -1074), raw_exponent - 1075)
    # A float64 subnormal times 2^64 is normal: its exponent field gives floor(log2).
    rescaled_exponent = ((absolute * 18446744073709551616.0).view(torch.int64) >> 52) - 1023 - 64
    exponent = torch.where(double_subnormal, rescaled_exponent, raw_exponent - 1023)

    flushed = (exponent < emin) if fmt.subnormals == "none" else torch.zeros_like(negative)

    # Power-of-two grid: spacing 2^q around |x|.
    normal_range = exponent >= emin
    subnormal_grid_exponent = (-fmt.bias - m) if tesla else (emin - m)
    grid_exponent = torch.where(normal_range, exponent - m, torch.full_like(exponent, subnormal_grid_exponent))
    # (E - 1) * 2^m, E the field; negative for E = 0 in a format without zero (multiplied, not shifted)
    code_base = torch.where(normal_range, (exponent + fmt.bias - 1) * (1 << m), torch.zeros_like(exponent))
    shift = grid_exponent - lsb_exponent
    clamped_shift = shift.clamp(min=0, max=63)
    units = torch.where(shift <= 0, significand << (-shift).clamp(min=0, max=63),
                        torch.where(shift >= 64, torch.zeros_like(significand), significand >> clamped_shift))
    remainder = torch.where(shift <= 0, torch.zeros_like(significand),
                            torch.where(shift >= 64, significand,
                                        significand & ((torch.ones_like(shift) << clamped_shift) - 1)))
    lo_code = code_base + units
    inexact = remainder != 0
    half = torch.ones_like(shift) << (shift - 1).clamp(min=0, max=62)
    short_shift = (shift >= 1) & (shift < 64)
    above_half = short_shift & (remainder > half)
    at_half = short_shift & (remainder == half)

    finite_nonzero = ~(is_nan | is_inf | is_zero | flushed)
    if not fmt.signed and not p3109_saturation:
        finite_nonzero &= ~negative  # invalid whatever the rounding
    if rounding == "nearest_even":
        away = above_half | (at_half & ((lo_code & 1) == 1))
    elif rounding == "nearest_away":
        away = above_half | at_half
    elif rounding == "toward_zero":
        away = torch.zeros_like(negative)
    elif rounding == "up":
        away = ~negative
    elif rounding == "down":
        away = negative.clone()
    elif rounding == "odd":
        away = (lo_code & 1) == 0
    else:
        away = torch.zeros_like(negative)
        selected = (finite_nonzero & inexact).nonzero().reshape(-1)
        if selected.numel():
            away[selected] = _stochastic_away(remainder[selected], shift[selected], sr_bits, seed,
                                              index[selected], sr_rule)

    # The Tesla gap: lo = largest subnormal, hi = min_normal, spacing not a power of two.
    if tesla:
        largest_subnormal = math.ldexp((1 << m) - 1, -fmt.bias - m)
        gap = math.ldexp(1.0, emin) - largest_subnormal
        in_gap = (exponent < emin) & (absolute >= largest_subnormal) & finite_nonzero
        if bool(in_gap.any()):
            distance = absolute - largest_subnormal
            gap_lo_code = (1 << m) - 1
            gap_inexact = distance != 0
            if rounding == "nearest_even":
                gap_away = (2 * distance > gap) | ((2 * distance == gap) & bool(gap_lo_code & 1))
            elif rounding == "nearest_away":
                gap_away = 2 * distance >= gap
            elif rounding == "toward_zero":
                gap_away = torch.zeros_like(negative)
            elif rounding == "up":
                gap_away = ~negative
            elif rounding == "down":
                gap_away = negative
            elif rounding == "odd":
                gap_away = torch.full_like(negative, not (gap_lo_code & 1))
            else:
                gap_away = torch.zeros_like(negative)
                selected = (in_gap & gap_inexact).nonzero().reshape(-1)
                if selected.numel():
                    gap_away[selected] = _tesla_gap_stochastic(distance[selected], fmt, sr_bits, seed,
                                                               index[selected], sr_rule)
            lo_code = torch.where(in_gap, torch.full_like(lo_code, gap_lo_code), lo_code)
            inexact = torch.where(in_gap, gap_inexact, inexact)
            away = torch.where(in_gap, gap_away & gap_inexact, away)

    away = away & inexact
    # Below the smallest value of a format without zero: every mode gives code 0 (csrc/round.h).
    if not has_zero:
        below_smallest = exponent < emin
        lo_code = torch.where(below_smallest, torch.zeros_like(lo_code), lo_code)
        away = away & ~below_smallest
    code = lo_code + away.to(torch.int64)

    # Decode the magnitude code (csrc/round.h: decode_one).
    exponent_field = code >> m
    mantissa = code & ((1 << m) - 1)
    subnormal_scale = math.ldexp(1.0, -fmt.bias - m) if tesla else math.ldexp(1.0, emin - m)
    subnormal_value = mantissa.to(torch.float64) * (0.0 if fmt.subnormals == "none" else subnormal_scale)
    value_exponent = exponent_field - fmt.bias - m
    first_step = value_exponent.clamp(min=-1022, max=1023)
    normal_value = ((mantissa + (1 << m)).to(torch.float64) * _power_of_two(first_step)
                    * _power_of_two((value_exponent - first_step).clamp(min=-1022, max=1023)))
    magnitude = torch.where((exponent_field == 0) & has_zero, subnormal_value, normal_value)
    zero_magnitude = torch.zeros_like(magnitude)
    magnitude = torch.where(((code == 0) & has_zero) | flushed, zero_magnitude, magnitude)

    # Overflow: +-max, or Inf / NaN, by the saturation mode and the direction (overflow_to_max).
    overflow = code > max_code
    if saturate is False:
        if fmt.specials == "finite" or rounding in ("toward_zero", "odd"):
            to_max = torch.ones_like(negative)
        elif rounding == "up":
            to_max = negative
        elif rounding == "down":
            to_max = ~negative
        elif rounding == "stochastic":
            to_max = ~away
        else:
            to_max = torch.zeros_like(negative)
    elif saturate == "sat_none":
        if not fmt.has_inf or rounding == "toward_zero":
            to_max = torch.ones_like(negative)
        elif rounding == "up":
            to_max = negative
        elif rounding == "down":
            to_max = ~negative
        elif rounding == "odd" and not fmt.signed:
            to_max = ~negative
        else:
            to_max = torch.zeros_like(negative)
    else:  # True, sat_finite, sat_propagate
        to_max = torch.ones_like(negative)
    beyond = math.inf if fmt.has_inf else 0.0
    magnitude = torch.where(overflow, torch.where(to_max, torch.full_like(magnitude, max_value),
                                                  torch.full_like(magnitude, beyond)), magnitude)
    result_is_nan = finite_nonzero & overflow & ~to_max & (not fmt.has_inf)

    # Special inputs (csrc/round.h: encode_one, before rounding).
    full = functools.partial(torch.full_like, magnitude)
    if has_zero:
        magnitude = torch.where(is_zero, zero_magnitude, magnitude)
    else:  # zero has no code: NaN, or code 0 in a format without NaN
        magnitude = torch.where(is_zero, full(code_zero_value), magnitude)
        if fmt.has_nan:
            result_is_nan = result_is_nan | is_zero
    if p3109_saturation:
        if fmt.has_inf and saturate != "sat_finite":
            inf_value = math.inf
        else:
            inf_value = max_value
        magnitude = torch.where(is_inf, full(inf_value), magnitude)
    elif fmt.has_inf:
        magnitude = torch.where(is_inf, full(math.inf), magnitude)
    elif fmt.specials == "finite" or saturate is True:
        magnitude = torch.where(is_inf, full(max_value), magnitude)
    else:
        result_is_nan = result_is_nan | is_inf
    if fmt.specials == "finite":
        magnitude = torch.where(is_nan, full(max_value), magnitude)
    else:
        result_is_nan = result_is_nan | is_nan
    # the sign goes on everything but NaN (and a zero input of a format without zero: code 0)
    signed_result = torch.where(negative & fmt.signed & ~is_nan & (has_zero | ~is_zero), -magnitude, magnitude)
    if not has_negative_zero:
        signed_result = torch.where(signed_result == 0, zero_magnitude, signed_result)
    if not fmt.signed:
        # negative inputs (-Inf included, zeros not): csrc/round.h's unsigned rules
        negative_input = negative & ~is_zero & ~is_nan
        if p3109_saturation:
            rounded_to_zero = flushed | (finite_nonzero & (code == 0) & has_zero)  # zeros are not negative_input
            clamped = torch.full_like(negative, saturate != "sat_none" or rounding in ("toward_zero", "up"))
            clamped = clamped & ~is_inf if saturate == "sat_none" else clamped
            to_nan = negative_input & ~rounded_to_zero & ~clamped
            signed_result = torch.where(negative_input, full(code_zero_value), signed_result)
            signed_result = torch.where(negative_input & rounded_to_zero, zero_magnitude, signed_result)
        else:
            to_nan = negative_input
            if fmt.specials == "finite":
                signed_result = torch.where(negative_input, full(code_zero_value), signed_result)
        if fmt.has_nan:
            result_is_nan = (result_is_nan & ~negative_input) | to_nan
        else:
            signed_result = torch.where(to_nan, full(code_zero_value), signed_result)
            result_is_nan = result_is_nan & ~negative_input
    # a NaN keeps its sign where the format has NaN codes of both signs (docs/formats.md, issue 11);
    # a zero input of a format without zero gives the positive NaN
    signed_nans = fmt.signed and fmt.specials in ("ieee", "fn")
    nan = torch.where(negative & ~is_zero & signed_nans, full(-math.nan), full(math.nan))
    signed_result = torch.where(result_is_nan, nan, signed_result)
    return signed_result.to(output_dtype).reshape(x.shape)
