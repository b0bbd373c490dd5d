"""The one crossing into C: the compiled core, its enums, the structs fmtlab passes, its status codes.

Every other module reaches the C core through this one:

* ``ffi`` and ``lib`` of the compiled extension ``fmtlab._native`` (built from csrc/ by
  cffi; the cdef is csrc/fmtlab.h between its CDEF markers);
* the enum values, read from the header through cffi (``lib.FL_ROUND_NEAREST_EVEN`` ...),
  never typed out again in Python: :data:`ROUNDING_CODES`, :data:`SPECIALS_CODES`,
  :data:`SUBNORMALS_CODES`, :data:`SATURATION_CODES`, :data:`C_ADDITION_CODES`,
  :data:`GROUPING_CODES`, :data:`SUMMATION_CODES`;
* :data:`SR_RULES` -- the names of limited-precision stochastic rounding's rules, and
  :data:`SR_RULE_CODES`, their enum fl_sr_rule values;
* :class:`RoundingRequest` -- a rounding mode, saturation, seed, ``sr_bits`` and
  ``sr_rule``, checked once -- and the conversions of a Format, a rounding request, an
  MMA model, a block-scaled format and a block layout to their C structs (:func:`c_format`,
  :func:`c_rounding`, :func:`c_mma_model`, :func:`c_scaled_format`, :func:`c_block_layout`);
  :data:`SCALE_RULE_CODES`, the enum fl_scale_rule values of the scale rules;
* the sweep's exact sums (csrc/sweep_stats.c): :data:`EXACT_LOWEST_EXPONENT`, :func:`exact_int`
  (an ``fl_exact_sum`` as a Python int) and :func:`sweep_statistics` (an ``fl_sweep_stats`` as
  the dict of :func:`fmtlab.metrics.exact_statistics`);
* :func:`check_status`, which turns each documented negative return code (enum fl_status)
  into its Python error.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import numbers

import numpy as np

from ._scale_rules import RULES as SCALE_RULES
from .formats import ROUNDINGS, SATURATIONS, SPECIALS, SUBNORMALS, Format
from .integers import IntFormat

try:
    from ._native import ffi, lib
except ImportError as error:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "fmtlab's compiled extension (fmtlab._native) is missing or does not load: "
        f"{error}. Build it with `pip install .` (or `pip install -e .` in a checkout; "
        "a C compiler and cffi are needed), or for a checkout `python build_native.py`."
    ) from error

__all__ = ["ffi", "lib", "ROUNDING_CODES", "SPECIALS_CODES", "SUBNORMALS_CODES", "SATURATION_CODES",
           "C_ADDITION_CODES", "GROUPING_CODES", "SUMMATION_CODES", "SR_RULES", "SR_RULE_CODES", "DEFAULT_SR_RULE",
           "RoundingRequest", "rounding_request", "saturation_name", "c_format", "c_rounding",
           "c_mma_model", "SCALE_RULE_CODES", "c_scaled_format", "c_block_layout", "check_status", "pointer",
           "float_entry", "mix64", "EXACT_LOWEST_EXPONENT", "exact_int", "sweep_statistics"]

# The header's enum constants are named after the Python names (FL_ROUND_NEAREST_EVEN for
# "nearest_even", ...), so a mode added on one side only fails here, at import.
ROUNDING_CODES = {name: getattr(lib, f"FL_ROUND_{name.upper()}") for name in ROUNDINGS}
SPECIALS_CODES = {name: getattr(lib, f"FL_SPECIALS_{name.upper()}") for name in SPECIALS}
SUBNORMALS_CODES = {name: getattr(lib, f"FL_SUBNORMALS_{name.upper()}") for name in SUBNORMALS}
# saturate=: False (None) and True are FL_SATURATE_OFF and _ON; the P3109 modes by their names
# ("sat_finite" is FL_SATURATE_SAT_FINITE, ...).
SATURATION_CODES = {False: lib.FL_SATURATE_OFF, True: lib.FL_SATURATE_ON,
                    **{name: getattr(lib, f"FL_SATURATE_{name.upper()}") for name in SATURATIONS}}
C_ADDITION_CODES = {"fused": lib.FL_MMA_C_FUSED, "separate": lib.FL_MMA_C_SEPARATE, "late": lib.FL_MMA_C_LATE}
GROUPING_CODES = {"none": lib.FL_MMA_GROUP_NONE, "odd_even": lib.FL_MMA_GROUP_ODD_EVEN}
SUMMATION_CODES = {"block_fma": lib.FL_MMA_SUM_BLOCK_FMA, "pairwise": lib.FL_MMA_SUM_PAIRWISE}

# How stochastic rounding with sr_bits=N brings the discarded fraction nu to N bits before
# comparing it with the N random bits (enum fl_sr_rule; fmtlab.codec's docstring has the
# definitions): "truncate" is P3109's StochasticA, "nearest_away" its StochasticB,
# "nearest_even" its StochasticC; "nearest_odd" is gfloat's StochasticOdd.
SR_RULES = ("truncate", "nearest_away", "nearest_even", "nearest_odd")
SR_RULE_CODES = {name: getattr(lib, f"FL_SR_{name.upper()}") for name in SR_RULES}
# the scale rules of fmtlab.scaled ("floor" is FL_SCALE_FLOOR, ...)
SCALE_RULE_CODES = {name: getattr(lib, f"FL_SCALE_{name.upper()}") for name in SCALE_RULES}
DEFAULT_SR_RULE = "truncate"
# Names that other libraries and the P3109 report use, offered by "did you mean" only.
_SR_RULE_ALIASES = {"a": "truncate", "stochastica": "truncate", "stochastic_a": "truncate",
                    "stochasticfastest": "truncate", "fastest": "truncate", "srff": "truncate",
                    "b": "nearest_away", "stochasticb": "nearest_away", "stochastic_b": "nearest_away",
                    "stochasticfast": "nearest_away", "fast": "nearest_away", "srf": "nearest_away",
                    "c": "nearest_even", "stochasticc": "nearest_even", "stochastic_c": "nearest_even",
                    "src": "nearest_even", "rtne": "nearest_even", "rne": "nearest_even",
                    "stochasticodd": "nearest_odd", "rtno": "nearest_odd"}

_UINT64 = 1 << 64


# ---- rounding requests -----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RoundingRequest:
    """A checked rounding request: what the codec, fmtlab.torch and the C structs are given.

    ``saturate`` is False (the caller gave None or False), True, or one of P3109's modes
    ``"sat_finite"``, ``"sat_propagate"``, ``"sat_none"`` (:data:`fmtlab.formats.SATURATIONS`);
    ``seed`` is an int in 0..2^64-1 (a fresh one was drawn when the caller gave None for
    stochastic rounding); ``sr_bits`` is None (exact probability) or 1..32; ``sr_rule`` is
    one of :data:`SR_RULES` (always the default when ``sr_bits`` is None).
    """
    mode: str
    saturate: bool | str
    seed: int
    sr_bits: int | None
    sr_rule: str = DEFAULT_SR_RULE


def saturation_name(saturate) -> bool | str:
    """``saturate`` checked: None and False give False, True gives True, a P3109 mode its name.

    A TypeError names the argument, the bad value and what is allowed (with the nearest mode
    for a misspelt one).
    """
    if saturate is None:
        return False
    if isinstance(saturate, (bool, np.bool_)):
        return bool(saturate)
    if isinstance(saturate, str) and saturate in SATURATIONS:
        return saturate
    from ._choices import did_you_mean
    raise TypeError(f"saturate must be None, False, True or one of IEEE P3109's saturation modes "
                    f"{', '.join(repr(name) for name in SATURATIONS)}, got {saturate!r}"
                    f"{did_you_mean(saturate, SATURATIONS)}")


def rounding_request(rounding="nearest_even", saturate=None, seed=None, sr_bits=None, sr_rule=DEFAULT_SR_RULE, *,
                     draw_seed: bool = True) -> RoundingRequest:
    """Check the rounding arguments of the public API and return them as a :class:`RoundingRequest`.

    ``seed=None`` with stochastic rounding draws a fresh 64-bit seed (as a user of numpy's
    global generator expects; pass ``seed=`` to be reproducible) unless ``draw_seed`` is
    False (validation only, e.g. a TensorFormat that seeds each call itself); other modes
    ignore the seed and get 0.  Any other int is taken modulo 2^64.  ``sr_rule`` must be one
    of :data:`SR_RULES`; a rule other than the default needs ``sr_bits`` (with
    ``sr_bits=None`` the probability is exact and no rule applies).
    """
    if not isinstance(rounding, str) or rounding not in ROUNDING_CODES:
        from ._choices import not_allowed
        raise ValueError(not_allowed("rounding", rounding, ", ".join(ROUNDINGS), ROUNDINGS))
    saturate = saturation_name(saturate)
    if sr_bits is not None:
        if isinstance(sr_bits, bool) or not isinstance(sr_bits, numbers.Integral) or not 1 <= sr_bits <= 32:
            raise ValueError(f"sr_bits={sr_bits!r} is not allowed: an int from 1 to 32, or None for exact")
        sr_bits = int(sr_bits)
    if not isinstance(sr_rule, str) or sr_rule not in SR_RULE_CODES:
        from ._choices import not_allowed
        raise ValueError(not_allowed("sr_rule", sr_rule, ", ".join(SR_RULES), SR_RULES, _SR_RULE_ALIASES))
    if sr_bits is None and sr_rule != DEFAULT_SR_RULE:
        raise ValueError(f"sr_rule={sr_rule!r} needs sr_bits (an int from 1 to 32): it says how the "
                         "discarded fraction is brought to sr_bits bits, and sr_bits=None rounds with the "
                         "exact probability")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"seed must be an int or None, got {seed!r} ({type(seed).__name__})")
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0]) \
            if rounding == "stochastic" and draw_seed else 0
    return RoundingRequest(rounding, saturate, int(seed) % _UINT64, sr_bits, sr_rule)


# ---- structs ---------------------------------------------------------------------------------
def _fill_format(struct, fmt: Format) -> None:
    struct.exp_bits = fmt.exp_bits
    struct.man_bits = fmt.man_bits
    struct.bias = fmt.bias
    struct.is_signed = int(fmt.signed)
    struct.specials = SPECIALS_CODES[fmt.specials]
    struct.subnormals = SUBNORMALS_CODES[fmt.subnormals]


@functools.lru_cache(maxsize=512)
def c_format(fmt: Format):
    """The ``fl_format`` struct of ``fmt`` (cached per format; the C core only reads it).

    An integer format is refused: its codes are two's complement and its range may be
    asymmetric, which the C codec does not know; callers round on its ``rounding_format``
    (fmtlab._integer_codec), so that nothing takes the float reading of it by accident."""
    if isinstance(fmt, IntFormat):
        raise TypeError(f"{fmt} is an integer format: round on its rounding_format ({fmt.rounding_format}) "
                        "and clamp, as fmtlab._integer_codec does")
    struct = ffi.new("fl_format *")
    _fill_format(struct, fmt)
    return struct


def c_rounding(request: RoundingRequest):
    """The ``fl_rounding`` struct of a checked request."""
    struct = ffi.new("fl_rounding *")
    struct.mode = ROUNDING_CODES[request.mode]
    struct.saturate = SATURATION_CODES[request.saturate]
    struct.seed = request.seed
    struct.sr_bits = 0 if request.sr_bits is None else request.sr_bits
    struct.sr_rule = SR_RULE_CODES[request.sr_rule]
    return struct


def _fill_mma_format(struct, fmt: Format) -> None:
    struct.man_bits = fmt.man_bits
    struct.emin = fmt.emin
    struct.emax = fmt.emax
    struct.min_exponent = fmt.min_subnormal_exponent


def c_mma_model(model):
    """The ``fl_mma_model`` struct of a checked :class:`fmtlab.mma.MMAModel`."""
    struct = ffi.new("fl_mma_model *")
    _fill_mma_format(struct.a, model.a_format)
    _fill_mma_format(struct.b, model.b_format)
    struct.block = model.block or 0
    struct.frac_bits = -1 if model.frac_bits is None else model.frac_bits
    _fill_mma_format(struct.out, model.out_format)
    struct.out_rounding = ROUNDING_CODES[model.out_rounding]
    struct.acc_frac_bits = -1 if model.acc_frac_bits is None else model.acc_frac_bits
    struct.use_exp_floor = int(model.exp_floor is not None)
    struct.exp_floor = model.exp_floor or 0
    struct.c_emin = model.c_format.emin
    struct.c_addition = C_ADDITION_CODES[model.c_addition]
    struct.promote_every = model.promote_every or 0
    struct.summation = SUMMATION_CODES[model.summation]
    struct.grouping = GROUPING_CODES[model.product_grouping]
    struct.flush_outputs = int(model.flush_outputs)
    struct.positive_zero = int(model.zero_sign == "positive")
    return struct


def _highest_power_of_two_exponent(value: float) -> int:
    """floor(log2 value) of a positive finite float, exactly (from frexp)."""
    return math.frexp(value)[1] - 1


@functools.lru_cache(maxsize=256)
def c_scaled_format(scaled):
    """The ``fl_scaled_format`` struct of a :class:`fmtlab.scaled.ScaledFormat` (cached per format).

    The scale's powers of two run from 2^min_subnormal_exponent to 2^floor(log2 max) (E8M0,
    a Format with no zero: 2^-127 .. 2^127), its largest value is ``max``; the element gives
    ``max``, ``emax`` and ``man_bits``.  ``power_of_two`` is ``scaled.is_power_of_two``.  An
    integer element is passed as its ``rounding_format`` with the limits of its range.
    """
    struct = ffi.new("fl_scaled_format *")
    element, scale, tensor = scaled.element, scaled.scale, scaled.tensor_scale
    if isinstance(element, IntFormat):
        # the C core rounds on the integer format's float format and applies the limits by sign
        # (two's complement: one step further down); its codes are then sign-magnitude
        _fill_format(struct.element, element.rounding_format)
        struct.element_positive_max_code = element.max_integer
        struct.element_negative_max_code = -element.lowest_rounded_integer
        struct.element_integer = element.bits
    else:
        _fill_format(struct.element, element)
        struct.element_positive_max_code = struct.element_negative_max_code = element.max_magnitude_code
    struct.element_man_bits = element.man_bits
    _fill_format(struct.scale, scale)
    struct.has_tensor_scale = int(tensor is not None)
    if tensor is not None:
        _fill_format(struct.tensor_scale, tensor)
        struct.tensor_scale_lowest_exponent = tensor.min_subnormal_exponent
        struct.tensor_scale_max = tensor.max
    struct.rule = SCALE_RULE_CODES[scaled.rule]
    struct.power_of_two = int(scaled.is_power_of_two)
    struct.element_max = element.max
    struct.element_emax = element.emax
    struct.scale_lowest_exponent = scale.min_subnormal_exponent
    struct.scale_highest_exponent = _highest_power_of_two_exponent(scale.max)
    struct.scale_max = scale.max
    return struct


def c_block_layout(outer: int, rows: int, columns: int, block_rows: int, block_columns: int):
    """The ``fl_block_layout`` struct: x as outer x rows x columns, cut into block_rows x
    block_columns tiles over its last two dimensions (csrc/fmtlab.h)."""
    struct = ffi.new("fl_block_layout *")
    struct.outer, struct.rows, struct.columns = outer, rows, columns
    struct.block_rows, struct.block_columns = block_rows, block_columns
    return struct


_ARRAY_TYPES = {"float": "float[]", "double": "double[]", "int64_t": "int64_t[]", "void": "char[]"}


def pointer(array: np.ndarray, c_type: str):
    """A ``c_type *`` to the first element of the C-contiguous numpy ``array``.

    ``ffi.from_buffer`` costs a fifth of ``ffi.cast(..., array.ctypes.data)``, which matters
    for the many small tensors of an emulated training step.
    """
    return ffi.from_buffer(_ARRAY_TYPES[c_type], array)


def float_entry(operation: str, dtype):
    """The C entry point ``fl_<operation>_f32`` or ``_f64`` for float32 / float64 data, and the
    C type of one element ("float" or "double")."""
    if np.dtype(dtype) == np.float32:
        return getattr(lib, f"fl_{operation}_f32"), "float"
    return getattr(lib, f"fl_{operation}_f64"), "double"


# ---- status codes ----------------------------------------------------------------------------
_STATUS_NAMES = {getattr(lib, name): name for name in dir(lib) if name.startswith("FL_ERROR_")}


def check_status(status: int, what: str) -> None:
    """Raise the error of a C return code (enum fl_status in csrc/fmtlab.h); FL_OK returns.

    Out of memory is a MemoryError.  Every other code means the C core rejected parameters
    that Python had already checked: a bug, reported with the code's name.
    """
    if status == lib.FL_OK:
        return
    if status == lib.FL_ERROR_OUT_OF_MEMORY:
        raise MemoryError(f"fmtlab {what}: out of memory for the C core's work buffers")
    name = _STATUS_NAMES.get(status, f"unknown status {status}")
    raise RuntimeError(f"fmtlab's C core rejected {what} ({name}) although Python checked its arguments; "
                       "this is a bug, please report it")


def mix64(value: int) -> int:
    """SplitMix64's finaliser (the generator's mixing function), computed by the C core."""
    return int(lib.fl_mix64(int(value) % _UINT64))


# ---- exact sums (sweep_stats.c) --------------------------------------------------------------
#: an fl_exact_sum's value is exact_int(sum) * 2^EXACT_LOWEST_EXPONENT
EXACT_LOWEST_EXPONENT = lib.FL_EXACT_LOWEST_EXPONENT
_LIMB_BITS = 32


def exact_int(exact_sum) -> int:
    """The integer k of an ``fl_exact_sum`` (value k * 2^EXACT_LOWEST_EXPONENT), from its limbs
    as the C core leaves them: limbs 0 .. N-2 are 32-bit digits, the top one signed."""
    limbs = np.frombuffer(ffi.buffer(exact_sum.limb), dtype=np.int64)
    digits = limbs[:-1].astype("<u4").tobytes()
    return int.from_bytes(digits, "little") + (int(limbs[-1]) << (_LIMB_BITS * (limbs.size - 1)))


_COUNT_FIELDS = ("n", "valid", "zeros_in", "nan_in", "inf_in", "overflow", "zeros_out", "below_normal",
                 "nan_out", "inf_out")


def sweep_statistics(stats, signal: int) -> dict:
    """An ``fl_sweep_stats`` as a dict: its counts and maxima, and the exact sums as ints of
    2^EXACT_LOWEST_EXPONENT: ``signal`` (the finite inputs' sum of x^2, given) less the
    struct's ``signal_excluded``, ``error_energy`` and ``error_sum``."""
    result = {name: int(getattr(stats, name)) for name in _COUNT_FIELDS}
    result.update(max_abs=float(stats.max_abs), max_rel=float(stats.max_rel),
                  signal=signal - exact_int(stats.signal_excluded), error_energy=exact_int(stats.error_energy),
                  error_sum=exact_int(stats.error_sum))
    return result
