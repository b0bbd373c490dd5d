"""Tensor-core matrix multiply-accumulate: MMA models, GPU presets and a bit-accurate matmul.

A model is a plain parameter set (:class:`MMAModel`); :func:`matmul` computes
D = A B + C under it, in C, bit for bit as the modelled hardware does.  The maths
(docs/tensor-cores.md): each output element is a chain over K of *blocks*.  One block
of n products a_k b_k and an addend c is

1. every input is s * 2^e with e >= e_min of its format (a subnormal keeps e_min);
2. each product is exact, with exponent e_a + e_b and significand in [0, 4), not
   renormalised; c keeps its own exponent;
3. M = the largest exponent of the nonzero terms, at least ``exp_floor`` if given;
4. every term is cut toward zero to a multiple of 2^(M - F), F = ``frac_bits``
   (no guard or sticky bit; ``frac_bits=None`` cuts nothing);
5. the cut terms are summed exactly and rounded once to ``out_format`` with
   ``out_rounding`` (overflow gives +-Inf even toward zero); with ``acc_frac_bits``
   the result is then cut toward zero to that many fraction bits;
6. any NaN, Inf * 0 or Inf - Inf gives the canonical NaN, otherwise an Inf gives Inf;
   an exact zero is -0 only when every term is -0.

The block's result is the c of the next block (blocks of ``block`` elements of K in
increasing k; ``block=None`` takes all of K at once).  C is first rounded to
``c_format`` with nearest-even.  ``c_addition="separate"`` sums and rounds the
products of a block without c, then adds c with one more rounding to nearest-even
(B200 FP8).  ``promote_every=P`` restarts the chain from c = 0 every P elements of K
and adds each partial result to a true float32 accumulator (nearest-even) that
starts at C: the DeepSeek-V3 / CUTLASS fix for the 13-bit FP8 accumulator.
``summation="pairwise"`` is the one model that is not a block chain of step 4-5: each
product rounded to float32; for each block (all of K with ``block=None``) c = c + the
pairwise float32 sum of its products (split at half), nearest-even throughout; with
``flush_outputs`` every float32 product, partial sum and c below 2^-126 becomes a zero of its
sign (AMD CDNA1 and CDNA2 matrix cores, the latter flushing).  ``flush_inputs`` first sets
every element of A, B and C below the smallest normal of its format (zeros included) to +0.
``c_addition="late"`` (AMD CDNA3) cuts and sums the products as in steps 3-5 but without c
(``product_grouping="odd_even"``: the even- and odd-indexed products apart, each aligned to
its own largest exponent T_g, each sum then rounded down to F bits below the larger T and
added); with J = max(T, e_c) (c = 0 counting as exponent e_min of its format) the product sum
is rounded down (toward -Inf) to a multiple of 2^(J - 31) and c to one of 2^(J - 24) (odd-even:
a c below 2^(J - 25) is dropped), the two are added exactly and rounded once to
``out_format``; a product of magnitude >= 2^128 counts as an Inf.  ``zero_sign="positive"``
makes every exact zero block result +0 (MMA-Sim's convention) instead of IEEE 754's rule.
``scale_format`` makes a block-scaled model (Blackwell tcgen05 kind::mxf8f6f4 / mxf4 / mxf4nvf4),
whose operands are ScaledCodes; fmtlab/mma_block_scaled.py states its maths.
"""
from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from . import _c
from ._dtypes import is_narrow_float, native_byte_order
from .formats import Format, FP32, FP16, BF16, TF32, E4M3FN, E5M2, E4M3FNUZ, E5M2FNUZ, as_format

__all__ = ["MMAModel", "mma_model", "mma_models", "mma_block_scaled_models", "matmul", "OUT_ROUNDINGS", "C_ADDITIONS", "SUMMATIONS",
           "PRODUCT_GROUPINGS", "ZERO_SIGNS"]

OUT_ROUNDINGS = ("toward_zero", "nearest_even")
C_ADDITIONS = tuple(_c.C_ADDITION_CODES)
SUMMATIONS = tuple(_c.SUMMATION_CODES)
PRODUCT_GROUPINGS = tuple(_c.GROUPING_CODES)
ZERO_SIGNS = ("ieee", "positive")


def _as_model_format(value, argument, *, needs_inf=False):
    """A Format from a Format or a name, checked to be usable by the C kernel."""
    value = as_format(value, argument)
    if value.decode_dtype != np.float32:
        raise ValueError(f"{argument}={value} is not allowed: every value of an MMA format must be exact "
                         "in float32 (at most 23 fraction bits, exponents within float32's)")
    if needs_inf and (value.specials != "ieee" or value.subnormals != "ieee" or not value.signed):
        raise ValueError(f"{argument}={value} is not allowed: output and c formats must be signed IEEE-style "
                         "formats with Inf and gradual underflow (e.g. fp32, fp16, bf16)")
    return value


def _optional_int(value, argument, low, high):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{argument} must be an int or None, got {value!r} ({type(value).__name__})")
    if not low <= value <= high:
        raise ValueError(f"{argument}={value} is not allowed: an int from {low} to {high}, or None")
    return int(value)


def _choice(value, argument, allowed):
    if value not in allowed:
        raise ValueError(f"{argument}={value!r} is not allowed; choose one of {', '.join(allowed)}")
    return value


@dataclasses.dataclass(frozen=True)
class MMAModel:
    """Parameters of one matrix multiply-accumulate model (frozen, hashable).

    See the module docstring for the arithmetic each parameter controls.

    a_format, b_format : formats of A and B (b_format=None: the same as a_format).
    block : products per block FMA (n), or None for all of K at once.
    frac_bits : F, fraction bits kept below the block's largest exponent, or None (exact).
    out_format : format each block's result is rounded to (fp32 or fp16 for tensor cores).
    out_rounding : "toward_zero" or "nearest_even".
    acc_frac_bits : cut each block result toward zero to this many fraction bits (13 on the
        FP8 paths of Ada and Hopper), or None.
    exp_floor : lower limit L of the alignment exponent M, or None.
    c_format : format C is rounded to (nearest-even) before the first block; None: out_format.
    c_addition : "fused" (c is a term of the block), "separate" (added after, nearest-even) or
        "late" (AMD CDNA3: added after, both rounded down first; module docstring).
    promote_every : add the partial result to a float32 accumulator every this many elements
        of K (a multiple of block), or None.
    summation : "block_fma" (the chain above) or "pairwise" (float32 products, pairwise sum
        of each block, block=None: all of K).
    product_grouping : "none" or "odd_even" (with c_addition="late" only).
    flush_inputs : A, B and C elements below their format's smallest normal become +0 first.
    flush_outputs : (pairwise only) float32 products, partial sums and c below 2^-126 become
        zeros of their sign.
    zero_sign : "ieee" (an exact zero is -0 only when every term is -0) or "positive" (+0).
    scale_format : None, or the block scale of a block-scaled model (e8m0, or e4m3fn read as
        PTX's unsigned ue4m3); its operands are ScaledCodes (fmtlab/mma_block_scaled.py).
    scale_block : elements of K per scale (32 MX, 16 NVFP4), with scale_format only.
    group_sum : None, or G: products summed exactly in groups of G and aligned by the scale
        exponents (kind::mxf4 / mxf4nvf4, G = 16), with scale_format only.
    name : a label (presets: "gpu-input-out"); note : where the parameters come from.
    """

    a_format: Format
    b_format: Format | None = None
    block: int | None = None
    frac_bits: int | None = None
    out_format: Format = FP32
    out_rounding: str = "toward_zero"
    acc_frac_bits: int | None = None
    exp_floor: int | None = None
    c_format: Format | None = None
    c_addition: str = "fused"
    promote_every: int | None = None
    summation: str = "block_fma"
    product_grouping: str = "none"
    flush_inputs: bool = False
    flush_outputs: bool = False
    zero_sign: str = "ieee"
    scale_format: Format | None = None
    scale_block: int | None = None
    group_sum: int | None = None
    name: str | None = dataclasses.field(default=None, compare=False)
    note: str = dataclasses.field(default="", compare=False, repr=False)

    def __post_init__(self):
        set_field = lambda field, value: object.__setattr__(self, field, value)  # noqa: E731
        set_field("a_format", _as_model_format(self.a_format, "a_format"))
        set_field("b_format", self.a_format if self.b_format is None
                  else _as_model_format(self.b_format, "b_format"))
        set_field("block", _optional_int(self.block, "block", 1, 1 << 30))
        set_field("frac_bits", _optional_int(self.frac_bits, "frac_bits", 0, 200))
        set_field("out_format", _as_model_format(self.out_format, "out_format", needs_inf=True))
        _choice(self.out_rounding, "out_rounding", OUT_ROUNDINGS)
        set_field("acc_frac_bits", _optional_int(self.acc_frac_bits, "acc_frac_bits", 0, 23))
        set_field("exp_floor", _optional_int(self.exp_floor, "exp_floor", -400, 400))
        set_field("c_format", self.out_format if self.c_format is None
                  else _as_model_format(self.c_format, "c_format", needs_inf=True))
        _choice(self.c_addition, "c_addition", C_ADDITIONS)
        set_field("promote_every", _optional_int(self.promote_every, "promote_every", 1, 1 << 30))
        _choice(self.summation, "summation", SUMMATIONS)
        _choice(self.product_grouping, "product_grouping", PRODUCT_GROUPINGS)
        _choice(self.zero_sign, "zero_sign", ZERO_SIGNS)
        for flag in ("flush_inputs", "flush_outputs"):
            if not isinstance(getattr(self, flag), (bool, np.bool_)):
                raise TypeError(f"{flag} must be True or False, got {getattr(self, flag)!r}")
            set_field(flag, bool(getattr(self, flag)))
        if self.flush_outputs and self.summation != "pairwise":
            raise ValueError("flush_outputs=True is not allowed with summation="
                             f"{self.summation!r}: it flushes the float32 partial sums of summation='pairwise'")
        if self.product_grouping != "none" and self.c_addition != "late":
            raise ValueError(f"product_grouping={self.product_grouping!r} is not allowed with c_addition="
                             f"{self.c_addition!r}: it is part of c_addition='late' (AMD CDNA3 FP8)")
        if self.c_addition == "late":
            problems = []
            if self.frac_bits is None or self.frac_bits > 30:
                problems.append(f"frac_bits={self.frac_bits!r} (need an int from 0 to 30)")
            if self.block is None or self.block > 1 << 20:
                problems.append(f"block={self.block!r} (need an int from 1 to {1 << 20})")
            for key in ("acc_frac_bits", "promote_every"):
                if getattr(self, key) is not None:
                    problems.append(f"{key}={getattr(self, key)!r} (need None)")
            if self.summation != "block_fma":
                problems.append(f"summation={self.summation!r} (need 'block_fma')")
            if problems:
                raise ValueError("c_addition='late' is not allowed with " + ", ".join(problems))
        self._check_block_scaled()
        if self.promote_every is not None:
            if self.block is not None and self.promote_every % self.block:
                raise ValueError(f"promote_every={self.promote_every} is not allowed with block={self.block}: "
                                 "it must be a multiple of the block")
            if self.out_format != FP32:
                raise ValueError(f"promote_every={self.promote_every} needs out_format=fp32 (the promoted "
                                 f"accumulator is float32), got out_format={self.out_format}")
        if self.summation == "pairwise":
            defaults = dict(frac_bits=None, acc_frac_bits=None, exp_floor=None,
                            c_addition="fused", promote_every=None)
            changed = [f"{key}={getattr(self, key)!r}" for key, value in defaults.items()
                       if getattr(self, key) != value]
            if changed or self.out_format != FP32 or self.out_rounding != "nearest_even":
                raise ValueError("summation='pairwise' is float32 arithmetic: it needs out_format=fp32, "
                                 "out_rounding='nearest_even' and no alignment parameters (block is "
                                 "allowed), got "
                                 f"out_format={self.out_format}, out_rounding={self.out_rounding!r}"
                                 + (", " + ", ".join(changed) if changed else ""))

    def _check_block_scaled(self):
        set_field = lambda field, value: object.__setattr__(self, field, value)  # noqa: E731
        set_field("scale_block", _optional_int(self.scale_block, "scale_block", 1, 1 << 20))
        set_field("group_sum", _optional_int(self.group_sum, "group_sum", 1, 1 << 20))
        if self.scale_format is None:
            for key in ("scale_block", "group_sum"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key}={getattr(self, key)!r} is not allowed without scale_format "
                                     "(it belongs to a block-scaled model)")
            return
        from .formats import E8M0
        scale = as_format(self.scale_format, "scale_format")
        if scale not in (E8M0, E4M3FN):
            raise ValueError(f"scale_format={scale} is not allowed: tensor-core block scales are e8m0 (ue8m0) "
                             "or e4m3fn (read as ue4m3)")
        set_field("scale_format", scale)
        problems = []
        if self.scale_block is None:
            problems.append("scale_block=None (need the elements per scale)")
        if self.block is None or (self.scale_block and self.block % self.scale_block
                                  and self.scale_block % self.block):
            problems.append(f"block={self.block!r} (need an int; block and scale_block must divide one another)")
        if self.frac_bits is None or self.frac_bits > 40:
            problems.append(f"frac_bits={self.frac_bits!r} (need an int from 0 to 40)")
        if self.group_sum is None and scale != E8M0:
            problems.append("group_sum=None with a ue4m3 scale (kind::mxf8f6f4 takes ue8m0 scales only)")
        if self.group_sum is not None and (self.block is None or self.block % self.group_sum
                                           or (self.scale_block or 1) % self.group_sum):
            problems.append(f"group_sum={self.group_sum} (need a divisor of block and scale_block)")
        if self.b_format != self.a_format:
            problems.append(f"b_format={self.b_format} (need a_format)")
        if self.out_format != FP32 or self.out_rounding != "toward_zero" or self.c_format != FP32:
            problems.append("out_format/c_format/out_rounding (need fp32, fp32, 'toward_zero')")
        for key, default in (("acc_frac_bits", None), ("exp_floor", None), ("c_addition", "fused"),
                             ("promote_every", None), ("summation", "block_fma"), ("flush_inputs", False),
                             ("zero_sign", "ieee")):
            if getattr(self, key) != default:
                problems.append(f"{key}={getattr(self, key)!r} (need {default!r})")
        if problems:
            raise ValueError(f"scale_format={scale} (a block-scaled model) is not allowed with " + ", ".join(problems))

    @property
    def is_block_scaled(self) -> bool:
        """Whether the model takes block-scaled operands (ScaledCodes)."""
        return self.scale_format is not None

    def replace(self, **changes) -> "MMAModel":
        """A copy with some parameters changed (the name is dropped unless given)."""
        changes.setdefault("name", None)
        return dataclasses.replace(self, **changes)

    def __str__(self) -> str:
        return self.name or repr(self)


# ---- presets -------------------------------------------------------------------------------------

_INPUT_FORMATS = {"fp16": FP16, "bf16": BF16, "tf32": TF32, "e4m3fn": E4M3FN, "e5m2": E5M2,
                  "e4m3fnuz": E4M3FNUZ, "e5m2fnuz": E5M2FNUZ}
# NVIDIA's documents call OCP's e4m3fn "E4M3"; fl.format("e4m3") is the IEEE-like format (max 240),
# which no tensor core takes, so mma_model reads "e4m3" as e4m3fn and always prints e4m3fn.
_INPUT_ALIASES = {"e4m3": "e4m3fn"}
_FP8_INPUTS = ("e4m3fn", "e5m2")

# Per architecture (docs/tensor-cores.md §2): {input: (block, F, acc_frac_bits)}, the exponent
# floors for FP32 and FP16 output, and the inputs that may have FP16 output.
_ARCHITECTURES = {
    "volta": dict(inputs={"fp16": (4, 23, None)}, floor_fp32=None, floor_fp16=-19, fp16_out=("fp16",)),
    "turing": dict(inputs={"fp16": (8, 24, None)}, floor_fp32=None, floor_fp16=None, fp16_out=("fp16",)),
    "ampere": dict(inputs={"fp16": (8, 24, None), "bf16": (8, 24, None), "tf32": (4, 24, None)},
                   floor_fp32=-132, floor_fp16=-20, fp16_out=("fp16",)),
    "ada": dict(inputs={"fp16": (8, 24, None), "bf16": (8, 24, None), "tf32": (4, 24, None),
                        "e4m3fn": (16, 13, 13), "e5m2": (16, 13, 13)},
                floor_fp32=-132, floor_fp16=-20, fp16_out=("fp16", "e4m3fn", "e5m2")),
    "hopper": dict(inputs={"fp16": (16, 25, None), "bf16": (16, 25, None), "tf32": (8, 25, None),
                           "e4m3fn": (32, 13, 13), "e5m2": (32, 13, 13)},
                   floor_fp32=-133, floor_fp16=-21, fp16_out=("fp16", "e4m3fn", "e5m2")),
    "blackwell": dict(inputs={"fp16": (16, 25, None), "bf16": (16, 25, None), "tf32": (8, 25, None),
                              "e4m3fn": (32, 25, None), "e5m2": (32, 25, None)},
                      floor_fp32=-133, floor_fp16=-21, fp16_out=("fp16", "e4m3fn", "e5m2")),
}
_GPUS = {"v100": "volta", "t4": "turing", "a100": "ampere", "a2": "ampere", "a30": "ampere",
         "ada": "ada", "l40s": "ada", "h100": "hopper", "h200": "hopper", "b200": "blackwell"}
_REFERENCES = ("fp32_fma", "fp32_pairwise", "exact")

# AMD CDNA matrix cores (docs/tensor-cores.md §3, "AMD"): FP32 output only.  Per architecture,
# {input: MMAModel parameters} and the source followed.
_AMD_CDNA1 = dict(frac_bits=None, out_rounding="nearest_even")  # an exact block sum with c, one RNE
_AMD_CDNA2 = dict(summation="pairwise", out_rounding="nearest_even", flush_inputs=True, flush_outputs=True)
_AMD_CDNA3 = dict(frac_bits=24, out_rounding="nearest_even", c_addition="late")
_AMD_ARCHITECTURES = {
    "cdna1": dict(inputs={"fp16": dict(_AMD_CDNA1, block=4), "bf16": dict(_AMD_CDNA1, block=2)},
                  note="MATLAB-tensor-core MI100MC (exact block of 4, bf16 2); not measured here"),
    "cdna2": dict(inputs={"fp16": dict(_AMD_CDNA2, block=4), "bf16": dict(_AMD_CDNA2, block=4)},
                  note="MMA-Sim CDNA2 (pairwise, subnormals flushed; bf16 = the _1k instructions)"),
    "cdna3": dict(inputs={"fp16": dict(_AMD_CDNA3, block=8), "bf16": dict(_AMD_CDNA3, block=8),
                          "e4m3fnuz": dict(_AMD_CDNA3, block=16, product_grouping="odd_even"),
                          "e5m2fnuz": dict(_AMD_CDNA3, block=16, product_grouping="odd_even")},
                  note="MMA-Sim CDNA3 (= MATLAB-tensor-core's removed MI300MC)"),
}
_AMD_GPUS = {"mi100": "cdna1", "mi250x": "cdna2", "mi300x": "cdna3"}


def _amd_model(gpu, input_name, out):
    table = _AMD_ARCHITECTURES[_AMD_GPUS[gpu]]
    if input_name not in table["inputs"]:
        raise ValueError(f"input={input_name!r} is not available on {gpu}; it has {', '.join(table['inputs'])}")
    if out != "fp32":
        raise ValueError(f"out={out!r} is not available for {gpu}: its matrix-core models give FP32 output "
                         "only; use out='fp32'")
    return MMAModel(_INPUT_FORMATS[input_name], out_format=FP32, name=f"{gpu}-{input_name}-fp32", note=table["note"],
                    **table["inputs"][input_name])

# Where each preset's parameters come from (docs/tensor-cores.md has the full story).
_NOTES = {
    "volta": "Fasi et al.; Khattak & Mikaitis; V100 data bit-exact",
    "turing": "as A100 (Khattak & Mikaitis); not measured",
    "ampere": "Khattak & Mikaitis; A100/A2 data bit-exact",
    "ada": "Khattak & Mikaitis; Ada/L40S data bit-exact",
    "hopper": "Khattak & Mikaitis; H100/H200 data bit-exact",
    "blackwell": "Khattak & Mikaitis; B200 data bit-exact",
}
_NOTE_BLACKWELL_FP8 = "fmtlab's fit (c added after, nearest-even); B200 data bit-exact"
_NOTE_FP8_FP16_OUT = "provisional fit, about 80% of the data (open question)"


def _gpu_model(gpu, input_name, out):
    architecture = _GPUS[gpu]
    table = _ARCHITECTURES[architecture]
    if input_name not in table["inputs"]:
        raise ValueError(f"input={input_name!r} is not available on {gpu}; it has {', '.join(table['inputs'])}")
    if out == "fp16" and input_name not in table["fp16_out"]:
        raise ValueError(f"out='fp16' is not available for {gpu} with input {input_name!r}: tensor cores "
                         f"give FP16 output only for {', '.join(table['fp16_out'])} inputs; use out='fp32'")
    block, frac_bits, acc_frac_bits = table["inputs"][input_name]
    fp8 = input_name in _FP8_INPUTS
    parameters = dict(a_format=_INPUT_FORMATS[input_name], block=block, frac_bits=frac_bits,
                      name=f"{gpu}-{input_name}-{out}", note=_NOTES[architecture])
    if out == "fp32":
        parameters.update(out_format=FP32, out_rounding="toward_zero", acc_frac_bits=acc_frac_bits,
                          exp_floor=table["floor_fp32"])
        if architecture == "blackwell" and fp8:
            parameters.update(c_addition="separate", note=_NOTE_BLACKWELL_FP8)
    else:
        parameters.update(out_format=FP16, out_rounding="nearest_even", exp_floor=table["floor_fp16"])
        if fp8 and architecture in ("hopper", "blackwell"):
            parameters.update(frac_bits=25, c_addition="separate", note=_NOTE_FP8_FP16_OUT)
    return MMAModel(**parameters)


# Blackwell block-scaled MMA (tcgen05.mma kind::mxf8f6f4 / mxf4 / mxf4nvf4), FP32 output only, after
# MMA-Sim (arXiv 2511.10909; microsoft/MMA-Sim, mmasim/simulator/nv_ptx.py tcgen05mma_block_scale and
# arithmetic.py): K = 32 per instruction with 25 fraction bits (mxf8f6f4), K = 64 with 35 and exact
# sums of 16 products aligned by the scale exponents (mxf4, mxf4nvf4).  {input: (element, scale,
# scale block, instruction K, F, group sum)}; docs/tensor-cores.md §9.
_BLOCK_SCALED = {
    "mxfp8_e4m3": ("e4m3fn", "e8m0", 32, 32, 25, None),
    "mxfp8_e5m2": ("e5m2", "e8m0", 32, 32, 25, None),
    "mxfp6_e2m3": ("e2m3fn", "e8m0", 32, 32, 25, None),
    "mxfp4": ("e2m1fn", "e8m0", 32, 64, 35, 16),
    "nvfp4": ("e2m1fn", "e4m3fn", 16, 64, 35, 16),
}
_BLOCK_SCALED_KINDS = {"mxfp8_e4m3": "mxf8f6f4", "mxfp8_e5m2": "mxf8f6f4", "mxfp6_e2m3": "mxf8f6f4",
                       "mxfp4": "mxf4", "nvfp4": "mxf4nvf4"}
# The consumer Blackwell (sm_120) has the block-scaled kinds on mma.sync only; MMA-Sim's
# "RTX Blackwell" mma_block_scale class gives it the same arithmetic as tcgen05 (nv_ptx.py).
_BLOCK_SCALED_GPUS = ("b200", "rtx5090", "rtx_pro_6000")


def _block_scaled_model(gpu, input_name, out):
    if out != "fp32":
        raise ValueError(f"out={out!r} is not available for {gpu} with block-scaled input {input_name!r}: "
                         "tcgen05 block-scaled MMA accumulates in FP32; use out='fp32'")
    from .formats import format as format_by_name
    element, scale, scale_block, block, frac_bits, group_sum = _BLOCK_SCALED[input_name]
    return MMAModel(format_by_name(element), block=block, frac_bits=frac_bits, out_format=FP32,
                    out_rounding="toward_zero", scale_format=format_by_name(scale), scale_block=scale_block,
                    group_sum=group_sum, name=f"{gpu}-{input_name}-fp32",
                    note=f"MMA-Sim {'tcgen05' if gpu == 'b200' else 'RTX Blackwell mma.sync'} "
                         f"kind::{_BLOCK_SCALED_KINDS[input_name]} (not measured here)")


def mma_block_scaled_models() -> tuple[MMAModel, ...]:
    """The block-scaled presets (operands: ScaledCodes), apart from :func:`mma_models`, whose
    models take float arrays."""
    return tuple(_block_scaled_model(gpu, name, "fp32") for gpu in _BLOCK_SCALED_GPUS for name in _BLOCK_SCALED)


def _reference_model(kind, input_format, out):
    out_format = FP32 if out == "fp32" else FP16
    name = kind if input_format == FP32 and out == "fp32" else f"{kind}-{input_format}-{out}"
    if kind == "exact":
        return MMAModel(input_format, block=None, frac_bits=None, out_format=out_format,
                        out_rounding="nearest_even", name=name,
                        note="exact dot product plus c, one rounding to nearest-even")
    if out != "fp32":
        raise ValueError(f"out={out!r} is not allowed for {kind}: it is float32 arithmetic; use out='fp32'")
    if kind == "fp32_fma":
        return MMAModel(input_format, block=1, frac_bits=None, out_format=FP32, out_rounding="nearest_even",
                        name=name, note="sequential float32 fused multiply-add over k (a CUDA core)")
    return MMAModel(input_format, out_format=FP32, out_rounding="nearest_even", summation="pairwise",
                    name=name, note="float32 products, pairwise float32 sum, then + c")


def mma_model(gpu, input=None, out="fp32") -> MMAModel:  # noqa: A002 - the public keyword the design uses
    """The preset model of ``gpu`` for ``input`` with ``out`` ("fp32" or "fp16") output.

    gpu: v100, t4, a100, a2, a30, ada, l40s, h100, h200, b200, the AMD mi100 (CDNA1),
    mi250x (CDNA2), mi300x (CDNA3) (case-insensitive), or a
    reference model: "fp32_fma", "fp32_pairwise", "exact" (then ``input`` is any format
    exact in float32, default fp32).  input: fp16, bf16, tf32, e4m3fn, e5m2, and on CDNA3
    e4m3fnuz, e5m2fnuz (AMD presets give FP32 output only) (``"e4m3"``,
    NVIDIA's name for OCP's e4m3fn, is read as e4m3fn; models always print e4m3fn).
    A full preset name such as "h100-e4m3fn-fp32" (see :func:`mma_models`) also works.

    >>> mma_model("h100", "fp16")
    MMAModel(a_format=fp16, b_format=fp16, block=16, frac_bits=25, ...)
    """
    if isinstance(gpu, MMAModel):
        return gpu
    if not isinstance(gpu, str):
        raise TypeError(f"gpu must be a str, got {gpu!r} ({type(gpu).__name__})")
    key = gpu.strip().lower()
    if input is None and key.count("-") == 2:
        key, input, out = key.split("-")
    if not isinstance(out, str) or out.lower() not in ("fp32", "fp16"):
        raise ValueError(f"out={out!r} is not allowed; choose fp32 or fp16")
    out = out.lower()
    if key in _REFERENCES:
        if input is None:
            input = "fp32"
        if isinstance(input, str):
            name = _INPUT_ALIASES.get(input.strip().lower(), input.strip().lower())
            input = _INPUT_FORMATS.get(name, input)  # e4m3 means NVIDIA's e4m3fn here too
        return _reference_model(key, _as_model_format(input, "input"), out)
    if key not in _GPUS and key not in _AMD_GPUS and key not in _BLOCK_SCALED_GPUS:
        from ._choices import did_you_mean
        known = list(_GPUS) + list(_AMD_GPUS) + [g for g in _BLOCK_SCALED_GPUS if g not in _GPUS]
        raise ValueError(f"gpu={gpu!r} is unknown{did_you_mean(key, known + list(_REFERENCES))}; "
                         f"choose one of {', '.join(known)}, or a reference model: {', '.join(_REFERENCES)}")
    inputs = (_ARCHITECTURES[_GPUS[key]]["inputs"] if key in _GPUS else
              _AMD_ARCHITECTURES[_AMD_GPUS[key]]["inputs"] if key in _AMD_GPUS else {})
    if key in _BLOCK_SCALED_GPUS:
        inputs = list(inputs) + list(_BLOCK_SCALED)
        if isinstance(input, str) and input.strip().lower() in _BLOCK_SCALED:
            return _block_scaled_model(key, input.strip().lower(), out)
    if input is None:
        raise ValueError(f"input is required for gpu={gpu!r}; choose one of {', '.join(inputs)}")
    if not isinstance(input, str):
        raise TypeError(f"input must be a str, got {input!r} ({type(input).__name__})")
    input_name = _INPUT_ALIASES.get(input.strip().lower(), input.strip().lower())
    if input_name in _BLOCK_SCALED:
        raise ValueError(f"input={input!r} is not available on {gpu}: block-scaled MMA is modelled on "
                         f"{', '.join(_BLOCK_SCALED_GPUS)}; {gpu} has {', '.join(inputs)}")
    if input_name not in _INPUT_FORMATS:
        from ._choices import did_you_mean
        known = list(_INPUT_FORMATS) + list(_BLOCK_SCALED)
        raise ValueError(f"input={input!r} is unknown{did_you_mean(input_name, known)}; "
                         f"choose one of {', '.join(known)}")
    if key in _AMD_GPUS:
        return _amd_model(key, input_name, out)
    if key not in _GPUS:
        raise ValueError(f"input={input!r} is not available on {gpu}: its models are the block-scaled ones "
                         f"(mma.sync kind::mxf8f6f4 / mxf4nvf4, MMA-Sim 'RTX Blackwell'); choose one of "
                         f"{', '.join(inputs)}")
    return _gpu_model(key, input_name, out)


def mma_models() -> tuple[MMAModel, ...]:
    """Every preset: each GPU with each input it has and each output it gives, then the
    reference models (fp32 inputs).  ``[m.name for m in mma_models()]`` lists the names."""
    models = []
    for gpu, architecture in _GPUS.items():
        table = _ARCHITECTURES[architecture]
        for input_name in table["inputs"]:
            models.append(_gpu_model(gpu, input_name, "fp32"))
            if input_name in table["fp16_out"]:
                models.append(_gpu_model(gpu, input_name, "fp16"))
    for gpu, architecture in _AMD_GPUS.items():
        models += [_amd_model(gpu, input_name, "fp32") for input_name in _AMD_ARCHITECTURES[architecture]["inputs"]]
    models += [mma_model(kind) for kind in _REFERENCES] + [mma_model("exact", out="fp16")]
    return tuple(models)


# ---- matmul ----------------------------------------------------------------------------------------

def _as_float_operand(x, argument):
    """float32 or float64 array from x; float16 and ml_dtypes floats widen exactly to float32."""
    array = np.asarray(x)
    if is_narrow_float(array.dtype):
        return array.astype(np.float32)
    if array.dtype.kind != "f" or array.dtype.itemsize not in (4, 8):
        raise TypeError(f"{argument} has dtype {array.dtype}: matmul takes float32 (or float64, float16, "
                        "ml_dtypes) arrays whose values are in the model's formats; convert integers "
                        "explicitly")
    return native_byte_order(array)


def _checked_or_rounded(array, fmt, argument, round_inputs):
    """The values of ``array`` in ``fmt`` as float32: rounded (nearest-even) or checked to be exact."""
    if fmt == FP32 and array.dtype == np.float32:
        return np.ascontiguousarray(array)  # every float32 is a value of fp32
    from .codec import quantize
    rounded = quantize(array, fmt, "nearest_even")
    if not round_inputs and not np.equal(rounded, array).all():
        # one pass when every value is representable (the common case); the slow path finds the first
        differs = ~((rounded == array) | (np.isnan(rounded) & np.isnan(array)))
        if differs.any():
            index = tuple(int(i) for i in np.argwhere(differs)[0])
            raise ValueError(
                f"{argument} has values that are not representable in the model's format {fmt}: "
                f"{argument}[{', '.join(map(str, index))}] = {array[index]!r} (nearest is {rounded[index]!r}); "
                f"{int(differs.sum())} of {array.size} elements. Round them first (fl.quantize({argument}, "
                f"'{fmt}')) or pass round_inputs=True")
    return np.ascontiguousarray(rounded, dtype=np.float32)


def matmul(A, B, C=None, *, model, round_inputs=False):
    """D = A @ B + C computed as the MMA ``model`` does, bit for bit; float32 result.

    Shapes follow numpy.matmul: 2-D, 1-D (a vector, its axis removed from the result) or
    stacks of matrices whose leading dimensions broadcast; C (optional) broadcasts to the
    result.  A and B must hold values of ``model.a_format`` / ``model.b_format`` (float32,
    float64, float16 or ml_dtypes arrays), else ValueError, unless ``round_inputs=True``
    rounds them to nearest-even first.  C is rounded to ``model.c_format`` with
    nearest-even, as the hardware is given it.  ``model`` is an :class:`MMAModel` or a
    preset name ("h100-fp16-fp32").  The threads of fl.set_threads() split the output
    into tiles; the result never depends on their number.

    With a block-scaled model (``model.is_block_scaled``: fl.mma_model("b200", "mxfp8_e4m3"),
    ..., "nvfp4"), A and B are the :class:`fmtlab.ScaledCodes` of ``fl.encode``: A (m x K) with
    blocks along its last axis, B (K x n) along its first (``"mxfp8_e4m3:axis=0"``), element
    format, scale format and block size those of the model; the maths is in
    fmtlab/mma_block_scaled.py.  ``round_inputs`` does not apply to them.
    """
    if isinstance(model, str):
        model = mma_model(model)
    if not isinstance(model, MMAModel):
        raise TypeError(f"model must be an MMAModel (fl.mma_model(...)) or a preset name, got {model!r}")
    if not isinstance(round_inputs, (bool, np.bool_)):
        raise TypeError(f"round_inputs must be True or False, got {round_inputs!r}")
    from .scaled import ScaledCodes
    if model.is_block_scaled or isinstance(A, ScaledCodes) or isinstance(B, ScaledCodes):
        if not model.is_block_scaled:
            which = "A" if isinstance(A, ScaledCodes) else "B"
            raise TypeError(f"{which} is a ScaledCodes (block-scaled operand), but model {model} takes float "
                            "arrays; use a block-scaled model such as fl.mma_model('b200', 'mxfp8_e4m3')")
        from .mma_block_scaled import block_scaled_matmul
        return block_scaled_matmul(A, B, None if C is None else _as_float_operand(C, "C"), model)
    a = _as_float_operand(A, "A")
    b = _as_float_operand(B, "B")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul needs arrays of at least one dimension, got A.shape={a.shape}, B.shape={b.shape}")
    a_vector, b_vector = a.ndim == 1, b.ndim == 1
    a3 = a[None, :] if a_vector else a
    b3 = b[:, None] if b_vector else b
    m, k = a3.shape[-2:]
    k_b, n = b3.shape[-2:]
    if k != k_b:
        raise ValueError(f"A.shape={a.shape} and B.shape={b.shape} do not match: A has {k} columns "
                         f"and B has {k_b} rows (the contracted dimension K must agree)")
    try:
        batch_shape = np.broadcast_shapes(a3.shape[:-2], b3.shape[:-2])
    except ValueError:
        raise ValueError(f"the leading (batch) dimensions of A.shape={a.shape} and B.shape={b.shape} "
                         "do not broadcast") from None
    result_shape = batch_shape + (() if a_vector else (m,)) + (() if b_vector else (n,))
    a32 = _checked_or_rounded(a3, model.a_format, "A", round_inputs)
    b32 = _checked_or_rounded(b3, model.b_format, "B", round_inputs)
    full_shape = batch_shape + (m, n)
    c_full = None
    if C is not None:
        c = _as_float_operand(C, "C")
        try:
            c = np.broadcast_to(c, result_shape)
        except ValueError:
            raise ValueError(f"C.shape={c.shape} does not broadcast to the result's shape {result_shape}") from None
        c_full = _checked_or_rounded(c, model.c_format, "C", True).reshape(full_shape)
    if model.flush_inputs:
        a32, b32 = _flush_to_zero(a32, model.a_format), _flush_to_zero(b32, model.b_format)
        c_full = None if c_full is None else _flush_to_zero(c_full, model.c_format)
    d = np.empty(full_shape, dtype=np.float32)
    if d.size:
        _run_kernel(a32, b32, c_full, d, batch_shape, m, n, k, model)
    return d.reshape(result_shape)


def _flush_to_zero(x, fmt):
    """x with every element below fmt's smallest normal 2^emin in magnitude (zeros too) set to +0."""
    return np.where(np.abs(x) < np.float32(2.0 ** fmt.emin), np.float32(0.0), x).astype(np.float32)


def _batch_offsets(operand_batch_shape, batch_shape, matrix_size):
    count = math.prod(operand_batch_shape)
    index = np.arange(count, dtype=np.int64).reshape(operand_batch_shape)
    return np.ascontiguousarray(np.broadcast_to(index, batch_shape).ravel() * matrix_size, dtype=np.int64)


def _run_kernel(a, b, c, d, batch_shape, m, n, k, model):
    batch = math.prod(batch_shape)
    a_offsets = _batch_offsets(a.shape[:-2], batch_shape, m * k)
    b_offsets = _batch_offsets(b.shape[:-2], batch_shape, k * n)
    c_offsets = np.arange(batch, dtype=np.int64) * (m * n)
    status = _c.lib.fl_mma_matmul_f32(
        _c.pointer(a, "float"), _c.pointer(b, "float"), _c.ffi.NULL if c is None else _c.pointer(c, "float"),
        _c.pointer(d, "float"), batch, m, n, k, _c.pointer(a_offsets, "int64_t"), _c.pointer(b_offsets, "int64_t"),
        _c.pointer(c_offsets, "int64_t"), _c.c_mma_model(model))
    _c.check_status(status, f"matmul (m={m}, n={n}, k={k}, model {model})")
