"""Pure-torch block-scaled quantize: fmtlab.scaled's rules in torch ops, for tensors on any device.

This is the path :func:`fmtlab.torch.quantize` takes for a :class:`fmtlab.scaled.ScaledFormat`
on a non-CPU device (and with ``backend="torch"``); CPU tensors go through
``fmtlab.quantize`` (numpy around the C codec).  It must give the same bits, so it follows
fmtlab/scaled.py and fmtlab/_scale_rules.py step by step; the rules themselves are stated
there, once:

1. blocks: 1-D blocks of k along the axis (the last one zero-padded), r x c tiles over the
   last two axes (zero-padded), one block per slice (``"channel"``) or the whole tensor;
   amax = max |x| per block (NaN when the block holds a NaN: torch's amax propagates it);
2. the block scale from amax by the rule: the power-of-two rules from the exponent bits
   (``torch.frexp``, exact, never a floating log2), clamped to the scale format's powers of
   two; ``"amax"`` as amax / (element.max [* T]) rounded to nearest-even into the scale
   format (through :func:`fmtlab._torch_codec.quantize`, saturating, at least its smallest
   positive value), after the tensor scale T of NVFP4's second level;
3. the element quotient x / S, one float64 division (exact for a power-of-two S; for any
   other S it rounds like the exact rational in every deterministic mode: _scale_rules'
   quotient_proxy, whose subnormal rule is mirrored here), x / Inf = x * 0 in NaN blocks and
   Inf quotients replaced by +-float64 max when the element format has an Inf;
4. the element rounding, saturating, through :func:`fmtlab._torch_codec.quantize` on the
   quotients in x's own shape: element i in C order is element i of the stochastic
   generator, as on the CPU path, so both give the same bits for the same seed;
5. the value element * S in float64, cast once to x's dtype (NaN for a NaN block).

Stochastic rounding draws from the float64 quotient's discarded fraction, exactly as the CPU
path does.  :func:`quantize_with_divisor` is step 3-5 with one given per-tensor scale (delayed
scaling: the scale comes from an amax history, not from the tensor); :func:`divisors`
gives each element's S (the emulated layers' observer sees x / S).
"""
from __future__ import annotations

import functools
import math

import torch

from . import _scale_rules as rules
from . import _torch_codec
from .formats import E8M0, FP32, Format, amax_bias

__all__ = ["quantize", "quantize_with_divisor", "divisors", "scale_from_amax"]

_SMALLEST_NORMAL = rules.SMALLEST_NORMAL        # 2^-1022
_TINY = 5e-324                                   # 2^-1074, quotient_proxy's stand-in for a lost quotient
_FLOAT64_MAX = 1.7976931348623157e308


# ---- the scale format's arithmetic (mirrors fmtlab.scaled's private helpers) -------------------
def _is_e8m0(fmt: Format) -> bool:
    return fmt == E8M0


@functools.lru_cache(maxsize=256)
def _max(fmt: Format) -> float:
    """fmt.max, computed once (the property evaluates the exact value each time)."""
    return float(fmt.max)


@functools.lru_cache(maxsize=256)
def _power_of_two_range(fmt: Format) -> tuple[int, int]:
    """(lowest, highest) e with 2^e a value of ``fmt`` (E8M0: -127..127)."""
    if _is_e8m0(fmt):
        return -127, 127
    return fmt.min_subnormal_exponent, math.frexp(_max(fmt))[1] - 1


def _largest(fmt: Format) -> float:
    return math.ldexp(1.0, 127) if _is_e8m0(fmt) else _max(fmt)


def _power_of_two(exponent: torch.Tensor) -> torch.Tensor:
    """2^e as float64 for int64 e in -1022..1023, built from the bits (exact)."""
    return ((exponent.to(torch.int64) + 1023) << 52).view(torch.float64)


def _quotient_proxy(numerator: torch.Tensor, denominator, denominator_is_power_of_two: bool) -> torch.Tensor:
    """_scale_rules.quotient_proxy: RN64(n / d), with +-2^-1074 for a nonzero n whose quotient is
    below 2^-1022 (or, for a d that is not a power of two, whose n is)."""
    quotient = numerator / denominator
    tiny = quotient.abs() < _SMALLEST_NORMAL
    if not denominator_is_power_of_two:
        tiny = tiny | (numerator.abs() < _SMALLEST_NORMAL)
    tiny = tiny & (numerator != 0)
    return torch.where(tiny, torch.copysign(torch.full_like(quotient, _TINY), numerator), quotient)


def _round_scale(fmt: Format, proxies: torch.Tensor) -> torch.Tensor:
    """Values of positive quotient proxies (or +Inf) rounded to nearest-even into ``fmt``,
    saturating; a result of zero becomes the smallest positive value (scaled._round_scale)."""
    lowest, highest = _power_of_two_range(fmt)
    if _is_e8m0(fmt):
        # rules.e8m0_nearest_even_exponent: the midpoint 1.5 * 2^k ties to the even code k + 127
        positive = (proxies > 0) & torch.isfinite(proxies)
        mantissa, exponent = torch.frexp(torch.where(positive, proxies, torch.ones_like(proxies)))
        k = exponent.to(torch.int64) - 1
        significand = 2.0 * mantissa
        up = (significand > 1.5) | ((significand == 1.5) & ((k + 127) % 2 == 1))
        result = torch.where(positive, k + up.to(torch.int64), torch.full_like(k, lowest))
        result = torch.where(torch.isposinf(proxies), torch.full_like(k, highest), result)
        return _power_of_two(result.clamp(lowest, highest))
    if fmt == FP32:
        # float64 -> float32 conversion is IEEE round-to-nearest-even, subnormals included;
        # an overflow to Inf (Inf included) saturates to float32's max, as the codec does
        values = proxies.to(torch.float32).to(torch.float64)
        values = torch.where(torch.isinf(values), torch.full_like(values, _max(fmt)), values)
    else:
        proxies = torch.where(torch.isposinf(proxies), torch.full_like(proxies, _FLOAT64_MAX), proxies)
        values = _torch_codec.quantize(proxies, fmt, "nearest_even", saturate=True)
    return torch.where(values == 0, torch.full_like(values, math.ldexp(1.0, lowest)), values)


def _rule_exponent(rule: str, amax: torch.Tensor, element: Format) -> torch.Tensor:
    """_scale_rules.rule_exponent for positive finite float64 amax (int64)."""
    mantissa, exponent = torch.frexp(amax)
    exponent = exponent.to(torch.int64)
    floor = exponent - 1
    if rule == "floor":
        return floor - element.emax
    if rule == "ceil":
        return floor + (mantissa != 0.5).to(torch.int64) - element.emax
    if rule == "even":
        carry = mantissa >= 1.0 - 2.0 ** -(element.man_bits + 2)
        return floor + carry.to(torch.int64) - element.emax
    if rule == "rceil":
        max_mantissa, max_exponent = math.frexp(_max(element))
        return exponent - max_exponent + (mantissa > max_mantissa).to(torch.int64)
    raise ValueError(f"rule={rule!r} has no exponent formula; allowed: {', '.join(rules.POWER_OF_TWO_RULES)}")


def _tensor_scale(sf, amax_tensor: torch.Tensor) -> torch.Tensor:
    """The second-level scale T = amax / (element.max * scale.max) rounded into ``tensor_scale``
    (scaled._tensor_scale), a 0-d float64 tensor; NaN for a NaN amax."""
    divisor = _max(sf.element) * _largest(sf.scale)
    proxy = _quotient_proxy(amax_tensor.reshape(1), divisor, False)   # as scaled._tensor_scale calls it
    proxy = torch.where(torch.isnan(proxy), torch.zeros_like(proxy), proxy)
    value = _round_scale(sf.tensor_scale, proxy)
    return torch.where(torch.isnan(amax_tensor.reshape(1)), torch.full_like(value, math.nan), value)[0]


def scale_from_amax(sf, amax: torch.Tensor, amax_tensor: torch.Tensor | None = None) -> torch.Tensor:
    """Every block's effective scale (float64, amax's shape; NaN for a NaN block) from its amax,
    by ``sf``'s rule (scaled._compute_scales).  ``amax_tensor``: the tensor's amax, for the
    tensor scale of a two-level format (default: the max of ``amax``)."""
    amax = amax.to(torch.float64)
    nan = torch.isnan(amax)
    inf = torch.isinf(amax)
    normal = ~(nan | inf | (amax == 0))
    safe = torch.where(normal, amax, torch.ones_like(amax))
    fmt, element = sf.scale, sf.element
    if sf.rule in rules.POWER_OF_TWO_RULES:
        lowest, highest = _power_of_two_range(fmt)
        exponents = torch.where(normal, _rule_exponent(sf.rule, safe, element), torch.full_like(safe, lowest,
                                                                                              dtype=torch.int64))
        exponents = torch.where(inf, torch.full_like(exponents, highest), exponents).clamp(lowest, highest)
        values = _power_of_two(exponents)
        tensor_value = None
    else:
        tensor_value = None
        divisor = _max(element)
        if sf.tensor_scale is not None:
            if amax_tensor is None:
                amax_tensor = amax.max() if amax.numel() else torch.zeros((), dtype=torch.float64, device=amax.device)
            tensor_value = _tensor_scale(sf, amax_tensor.to(torch.float64))
            # a NaN T makes every block NaN; the quotients below are then never used
            divisor = torch.where(torch.isnan(tensor_value), torch.ones_like(tensor_value), tensor_value) * _max(element)
        proxies = torch.where(normal, _quotient_proxy(safe, divisor, False), torch.zeros_like(safe))
        proxies = torch.where(inf, torch.full_like(proxies, math.inf), proxies)
        values = _round_scale(fmt, proxies)
        if tensor_value is not None:
            nan = nan | torch.isnan(tensor_value)
            values = values * torch.where(torch.isnan(tensor_value), torch.ones_like(tensor_value), tensor_value)
    return torch.where(nan, torch.full_like(values, math.nan), values)


# ---- blocks (mirrors fmtlab.scaled._Grid) ---------------------------------------------------------
class _Blocks:
    """How a tensor of ``shape`` is cut into blocks; ``sf.scales_shape`` checks the shape first."""

    def __init__(self, shape, sf):
        sf.scales_shape(tuple(shape))  # the same errors as fmtlab.quantize (0-d, too few axes, axis)
        self.shape = tuple(shape)
        block = sf.block
        if block == "tensor":
            self.kind = "tensor"
        elif isinstance(block, tuple):
            self.kind = "tile"
            self.r, self.c = block
            self.rows, self.columns = shape[-2], shape[-1]
            self.row_blocks, self.column_blocks = -(-self.rows // self.r), -(-self.columns // self.c)
        else:
            self.kind = "axis"
            self.axis = sf.axis % len(shape)
            self.n = shape[self.axis]
            self.k = max(self.n, 1) if block == "channel" else block
            self.blocks = -(-self.n // self.k)

    def view(self, t: torch.Tensor) -> torch.Tensor:
        """The blocked view: (-1,) for a tensor, (..., R/r, r, C/c, c) for tiles, (..., nb, k) along an axis."""
        if self.kind == "tensor":
            return t.reshape(-1)
        if self.kind == "tile":
            pad_r, pad_c = self.row_blocks * self.r - self.rows, self.column_blocks * self.c - self.columns
            if pad_r or pad_c:
                t = torch.nn.functional.pad(t, (0, pad_c, 0, pad_r))
            return t.reshape(self.shape[:-2] + (self.row_blocks, self.r, self.column_blocks, self.c))
        moved = t.movedim(self.axis, -1)
        pad = self.blocks * self.k - self.n
        if pad:
            moved = torch.nn.functional.pad(moved, (0, pad))
        return moved.reshape(moved.shape[:-1] + (self.blocks, self.k))

    def unview(self, view: torch.Tensor) -> torch.Tensor:
        if self.kind == "tensor":
            return view.reshape(self.shape)
        if self.kind == "tile":
            full = view.reshape(self.shape[:-2] + (self.row_blocks * self.r, self.column_blocks * self.c))
            return full[..., :self.rows, :self.columns].contiguous()
        full = view.reshape(view.shape[:-2] + (self.blocks * self.k,))[..., :self.n]
        return full.movedim(-1, self.axis).contiguous()

    def amax(self, view: torch.Tensor) -> torch.Tensor:
        if self.kind == "tensor":
            return view.abs().amax() if view.numel() else torch.zeros((), dtype=view.dtype, device=view.device)
        if self.kind == "tile":
            return view.abs().amax(dim=(-3, -1))
        return view.abs().amax(dim=-1)

    def per_block(self, grid: torch.Tensor) -> torch.Tensor:
        if self.kind == "tensor":
            return grid
        if self.kind == "tile":
            return grid[..., :, None, :, None]
        return grid[..., None]


# ---- quantize -----------------------------------------------------------------------------------
def _as_float64(x: torch.Tensor) -> torch.Tensor:
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"x has dtype {x.dtype}: the scaled torch path takes float32 or float64")
    return x.detach().contiguous().to(torch.float64)


def _elements(quotients, sf, rounding, seed, sr_bits, sr_rule, element_quantize):
    """Step 4: the saturating element rounding of the quotients (x's shape, float64)."""
    if element_quantize is None:
        return _torch_codec.quantize(quotients, sf.element, rounding, saturate=True, seed=seed, sr_bits=sr_bits,
                                     sr_rule=sr_rule)
    return element_quantize(quotients)


def _saturate_infinities(quotients, sf, has_inf):
    """scaled._saturate_infinities: an Inf quotient becomes +-max (float64's, then the element's)."""
    if not (has_inf and sf.element.has_inf):
        return quotients
    return torch.where(torch.isinf(quotients), torch.copysign(torch.full_like(quotients, _FLOAT64_MAX), quotients),
                       quotients)


def _block_scales(x64: torch.Tensor, sf):
    blocks = _Blocks(x64.shape, sf)
    view = blocks.view(x64)
    amax = blocks.amax(view)
    return blocks, view, amax, scale_from_amax(sf, amax)


def quantize(x: torch.Tensor, sf, rounding: str = "nearest_even", *, seed: int = 0, sr_bits: int = 0,
             sr_rule: str = "truncate", element_quantize=None) -> torch.Tensor:
    """Fake-quantize the float32/float64 tensor ``x`` to the ScaledFormat ``sf`` (steps 1-5 of the
    module docstring): the bits of ``fmtlab.quantize(x.numpy(), sf, rounding, seed=seed)``.

    Arguments are taken as checked (``rounding`` a mode name, ``seed`` an int, ``sr_bits`` 0
    for the exact probability, ``sr_rule`` one of ``fmtlab._c.SR_RULES``).  ``element_quantize``, if given, rounds the float64 quotient
    tensor instead of the torch codec (the layers' CPU delayed-scaling path passes the C one).
    """
    output_dtype = x.dtype
    x64 = _as_float64(x)
    if sf.rule == "bias":
        return _quantize_bias_rule(x64, sf, rounding, seed, sr_bits, sr_rule).to(output_dtype)
    if x64.numel() == 0:
        _Blocks(x64.shape, sf)
        return x64.to(output_dtype)
    blocks, view, amax, scales = _block_scales(x64, sf)
    nan = torch.isnan(scales)
    effective = torch.where(nan, torch.ones_like(scales), scales)
    quotients = _quotient_proxy(view, blocks.per_block(effective), sf.is_power_of_two)
    quotients = torch.where(blocks.per_block(nan), view * 0.0, quotients)  # x / Inf in a NaN block
    quotients = _saturate_infinities(quotients, sf, bool(torch.isinf(amax).any()))
    elements = _elements(blocks.unview(quotients), sf, rounding, seed, sr_bits, sr_rule, element_quantize)
    values = blocks.view(elements) * blocks.per_block(scales)
    return blocks.unview(values).to(output_dtype)


def _quantize_bias_rule(x64, sf, rounding, seed, sr_bits, sr_rule):
    """Rule "bias" (fmtlab.scaled.tensor_bias): the element at the bias fmtlab.formats.amax_bias
    picks for the largest finite magnitude (0 without one), then the element's own rounding."""
    magnitudes = x64.abs()
    finite = magnitudes[torch.isfinite(magnitudes)]
    amax = float(finite.max()) if finite.numel() else 0.0
    element = sf.element.replace(bias=amax_bias(sf.element, amax))
    return _torch_codec.quantize(x64, element, rounding, saturate=True, seed=seed, sr_bits=sr_bits, sr_rule=sr_rule)


def quantize_with_divisor(x: torch.Tensor, sf, divisor: float, rounding: str = "nearest_even", *, seed: int = 0,
                          sr_bits: int = 0, sr_rule: str = "truncate", element_quantize=None) -> torch.Tensor:
    """Steps 3-5 with one given positive finite scale ``divisor`` for the whole tensor: the
    elements round x / divisor (saturating) and the values are element * divisor.

    With ``divisor`` the scale ``sf`` (a per-tensor format) computes from x's own amax, this is
    :func:`quantize`; delayed scaling passes the scale of an amax history instead.
    """
    output_dtype = x.dtype
    x64 = _as_float64(x)
    quotients = _quotient_proxy(x64, float(divisor), bool(rules.is_power_of_two(float(divisor))))
    quotients = _saturate_infinities(quotients, sf, bool(torch.isinf(x64).any()) if x64.numel() else False)
    elements = _elements(quotients, sf, rounding, seed, sr_bits, sr_rule, element_quantize)
    return (elements * float(divisor)).to(output_dtype)


def divisors(x: torch.Tensor, sf) -> torch.Tensor:
    """Each element's effective scale S (float64, x's shape; NaN in a NaN block)."""
    x64 = _as_float64(x)
    if x64.numel() == 0:
        return x64
    blocks, view, _, scales = _block_scales(x64, sf)
    return blocks.unview(blocks.per_block(scales).expand_as(view).contiguous())
