"""Integer element formats: ``int8``, ``int4``, any ``intN`` / ``uintN``, MXINT8's element.

An integer format of N bits with step exponent s holds the values k * 2^s for the integers k
of its range:

* signed (two's complement): -2^(N-1) <= k <= 2^(N-1) - 1, or with ``symmetric=True``
  -(2^(N-1) - 1) <= k <= 2^(N-1) - 1 (rounding never gives the most negative code, as
  symmetric int8 quantization and microxcaling's MXINT8 do; decoding it still gives -2^(N-1)),
* unsigned: 0 <= k <= 2^N - 1.

A code is the N-bit two's complement (or unsigned) pattern of k, held in the smallest unsigned
dtype (int8's -1 is 0xFF).  s = 0 gives the plain integers (``int8`` is numpy's int8);
MXINT8's element is ``int8`` with s = -6 (OCP MX v1.0 section 5.3.3: values -2 .. 1 63/64).

Rounding.  The values of a signed symmetric or an unsigned integer format are exactly those of
a binary float format with one exponent bit and no specials, ``Format(1, N - 2, bias,
signed, "finite")`` (unsigned: ``Format(1, N - 1, ...)``), bias = 1 - man_bits - s: its
subnormals (exponent field 0) are k 2^s for k < 2^man_bits and its one normal binade continues
the same grid.  So rounding to an integer format *is* rounding to that float format (every
mode, stochastic rounding with its seed and ``sr_bits`` included), done by the C core.  The
two's complement range reaches one step further below: it is rounded on the float format one
mantissa bit wider (magnitudes up to 2^N - 1) and then clamped to [min, max]; rounding is
monotone, so clamping the rounded value is the saturating rounding of the integer range.
:attr:`IntFormat.rounding_format` is that float format.

Integer formats have no Inf and no NaN: they saturate (an overflow, +-Inf, gives min or max,
counted as overflow) and a NaN gives +max (counted as invalid), the rule of every finite
format in fmtlab (docs/formats.md section 4).  A negative input to an unsigned format gives 0.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import re
from fractions import Fraction

import numpy as np

from .formats import Format

__all__ = ["IntFormat", "int_format", "is_integer_name", "INTEGER_BITS", "INT8", "INT4", "INT2", "UINT8",
           "UINT4", "UINT2"]

#: the widths an integer format may have: every value is then exact in float32 (s = 0)
INTEGER_BITS = range(1, 25)

_NAME = re.compile(r"(u?)int(\d+)")


def _bool_option(value, argument):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    raise ValueError(f"{argument}={value!r} is not allowed: give true or false")


@dataclasses.dataclass(frozen=True, init=False, repr=False)
class IntFormat(Format):
    """An integer element format (frozen, hashable; a :class:`~fmtlab.formats.Format`).

    ``IntFormat(bits, signed=True, symmetric=False, step_exponent=0)``: values k * 2^step_exponent
    for the integers k of the two's complement (signed) or unsigned range of ``bits`` bits;
    ``symmetric=True`` leaves out the most negative one from rounding.  See the module docstring.

    Its Format fields are those of the one-exponent-bit float format with the same values as
    the symmetric range (``exp_bits=1``, ``man_bits=bits - 2`` signed or ``bits - 1``
    unsigned, ``specials="finite"``); :attr:`rounding_format` is the float format its rounding
    runs on.  Limits use numpy's ``iinfo`` names scaled by the step: :attr:`min`, :attr:`max`,
    and :attr:`step` (= :attr:`eps`, :attr:`min_subnormal`, :attr:`min_normal`: the spacing is
    the same everywhere).
    """

    symmetric: bool = False

    def __init__(self, bits: int, signed: bool = True, symmetric: bool = False, step_exponent: int = 0,
                 name: str | None = None):
        if isinstance(bits, bool) or not isinstance(bits, numbers.Integral):
            raise TypeError(f"bits must be an int, got {bits!r} ({type(bits).__name__})")
        if isinstance(step_exponent, bool) or not isinstance(step_exponent, numbers.Integral):
            raise TypeError(f"step_exponent must be an int, got {step_exponent!r} ({type(step_exponent).__name__})")
        signed = _bool_option(signed, "signed")
        symmetric = _bool_option(symmetric, "symmetric")
        lowest = 2 if signed else 1
        if not lowest <= bits <= INTEGER_BITS.stop - 1:
            raise ValueError(f"bits={bits} is not allowed for {'a signed' if signed else 'an unsigned'} integer "
                             f"format: {lowest}..{INTEGER_BITS.stop - 1}")
        if symmetric and not signed:
            raise ValueError("symmetric=True is not allowed with signed=False: an unsigned range has no "
                             "negative end to leave out")
        man_bits = int(bits) - 2 if signed else int(bits) - 1
        fields = {"exp_bits": 1, "man_bits": man_bits, "bias": 1 - man_bits - int(step_exponent), "signed": signed,
                  "specials": "finite", "subnormals": "ieee", "symmetric": symmetric}
        for field, value in fields.items():
            object.__setattr__(self, field, value)
        object.__setattr__(self, "name", name if name is not None else self._canonical_name())
        Format.__post_init__(self)  # the float64 range check of every value
        if self.step_exponent + bits > 1023 or self.step_exponent < -1074:
            raise ValueError(f"step_exponent={step_exponent} is not allowed: every value k 2^step_exponent must "
                             "be exact in float64")

    # ---- the integer view -------------------------------------------------------------------
    @property
    def step_exponent(self) -> int:
        """s: the values are k * 2^s."""
        return 1 - self.bias - self.man_bits

    @property
    def step(self) -> float:
        """2^s, the spacing of the values (everywhere)."""
        return math.ldexp(1.0, self.step_exponent)

    @property
    def clamps(self) -> bool:
        """Whether rounding runs on the wider :attr:`rounding_format` and clamps (two's complement)."""
        return self.signed and not self.symmetric

    @property
    def min_integer(self) -> int:
        """The smallest k (of a code: decoding)."""
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max_integer(self) -> int:
        """The largest k."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def lowest_rounded_integer(self) -> int:
        """The smallest k that rounding gives: min_integer, or -max_integer when symmetric."""
        return -self.max_integer if self.symmetric else self.min_integer

    @property
    def min(self) -> float:
        """The most negative value rounding gives (numpy iinfo's ``min``, times the step)."""
        return math.ldexp(float(self.lowest_rounded_integer), self.step_exponent)

    @property
    def rounding_format(self) -> Format:
        """The binary float format whose rounding (then a clamp to [min, max] when
        :attr:`clamps`) is this format's rounding; its codes are sign-magnitude."""
        if self.clamps:
            return Format(1, self.man_bits + 1, self.bias - 1, True, "finite", "ieee")
        return Format(1, self.man_bits, self.bias, self.signed, "finite", "ieee")

    def integers_of_codes(self, codes) -> np.ndarray:
        """The integers k of an array of codes (int64)."""
        k = np.asarray(codes).astype(np.int64)
        if self.signed:
            k = np.where(k >= (1 << (self.bits - 1)), k - (1 << self.bits), k)
        return k

    def codes_of_integers(self, integers) -> np.ndarray:
        """The codes (:attr:`code_dtype`) of an array of integers k in range."""
        return (np.asarray(integers, dtype=np.int64) & ((1 << self.bits) - 1)).astype(self.code_dtype)

    # ---- Format's limits, for integers -------------------------------------------------------
    @property
    def min_normal(self) -> float:
        """Every nonzero integer value is normal: the step."""
        return self.step

    @property
    def eps(self) -> float:
        """The spacing of the values: the step (the same everywhere)."""
        return self.step

    @property
    def has_negative_zero(self) -> bool:
        return False

    @property
    def num_finite(self) -> int:
        """Every code is a number."""
        return 1 << self.bits

    @property
    def decode_dtype(self) -> np.dtype:
        """float32 when every value k 2^s is exact in float32, else float64."""
        fits = self.bits <= 25 and self.step_exponent >= -149 and self.step_exponent + self.bits <= 128
        return np.dtype(np.float32 if fits else np.float64)

    def exact_value(self, code: int):
        """Value of one code as a Fraction."""
        return int(self.integers_of_codes(int(code))) * Fraction(2) ** self.step_exponent

    def values(self) -> np.ndarray:
        """Every code's value as float64, indexed by code."""
        if self.bits > 16:
            raise ValueError(f"values() lists every code; {self} has {self.bits} bits, at most 16 are allowed")
        return np.ldexp(self.integers_of_codes(np.arange(1 << self.bits)).astype(np.float64), self.step_exponent)

    @property
    def ml_dtype(self):
        """numpy's or ml_dtypes' integer type of the same codes (step_exponent 0), or None."""
        if self.step_exponent != 0:
            return None
        import ml_dtypes

        name = ("" if self.signed else "u") + f"int{self.bits}"
        module = np if self.bits in (8, 16) else ml_dtypes
        return np.dtype(getattr(module, name)) if hasattr(module, name) else None

    def _canonical_name(self) -> str:
        options = []
        if self.symmetric:
            options.append("symmetric=true")
        if self.step_exponent != 0:
            options.append(f"step_exponent={self.step_exponent}")
        base = ("" if self.signed else "u") + f"int{self.bits}"
        return base + (":" + ",".join(options) if options else "")

    def __repr__(self) -> str:
        return self.name

    __str__ = __repr__

    def replace(self, **changes) -> "IntFormat":
        fields = {"bits": self.bits, "signed": self.signed, "symmetric": self.symmetric,
                  "step_exponent": self.step_exponent}
        unknown = set(changes) - set(fields)
        if unknown:
            raise ValueError(f"IntFormat.replace: {', '.join(sorted(unknown))} cannot be changed; allowed: "
                             f"{', '.join(fields)}")
        fields.update(changes)
        return IntFormat(**fields)


def int_format(bits: int, signed: bool = True, symmetric: bool = False, step_exponent: int = 0) -> IntFormat:
    """``IntFormat(bits, signed, symmetric, step_exponent)``."""
    return IntFormat(bits, signed, symmetric, step_exponent)


def is_integer_name(text: str) -> bool:
    """Whether ``text`` (without options) names an integer format: ``intN`` or ``uintN``."""
    return _NAME.fullmatch(text.strip().lower()) is not None


def integer_format_from_name(text: str, options: dict) -> IntFormat:
    """The integer format of a name ``intN``/``uintN`` and its options (symmetric, step_exponent)."""
    match = _NAME.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not an integer format name (intN or uintN)")
    allowed = ("symmetric", "step_exponent")
    for key in options:
        if key not in allowed:
            raise ValueError(f"format option {key!r} is unknown for the integer format {text}; allowed: "
                             f"{', '.join(allowed)}")
    step = options.get("step_exponent", 0)
    if isinstance(step, str):
        raise ValueError(f"step_exponent={step!r} is not allowed: give an integer")
    return IntFormat(int(match.group(2)), signed=match.group(1) == "", symmetric=options.get("symmetric", False),
                     step_exponent=step)


INT8 = IntFormat(8)
INT4 = IntFormat(4)
INT2 = IntFormat(2)
UINT8 = IntFormat(8, signed=False)
UINT4 = IntFormat(4, signed=False)
UINT2 = IntFormat(2, signed=False)
