"""fmtlab: a number-format precision laboratory.

Bit-exact emulation of the floating-point formats used to train neural networks
(FP32, TF32, FP16, BF16, Tesla CFloat8/CFloat16, OCP FP8 and MX elements, custom
formats) and of NVIDIA tensor-core multiply-accumulate, with a C core.
"""
from .formats import (Format, format, preset_names, FP32, TF32, FP16, BF16, CFLOAT8_1_4_3,  # noqa: F401
                      CFLOAT8_1_5_2, SHP, UHP, E4M3FN, E5M2, E4M3FNUZ, E5M2FNUZ, E4M3B11FNUZ, E4M3,
                      E3M4, E2M3FN, E3M2FN, E2M1FN, ROUNDINGS)
from .codec import encode, decode, quantize, to_ml_dtypes, Stats, set_threads  # noqa: F401

__version__ = "0.1.0"


def __getattr__(name):
    # The tensor-core and sweep layers are imported on first use, keeping `import fmtlab` light.
    if name in ("MMAModel", "mma_model", "mma_models", "matmul"):
        from . import mma
        return getattr(mma, name)
    if name in ("sweep", "sweep_mma"):
        from . import sweep
        return getattr(sweep, name)
    raise AttributeError(f"module 'fmtlab' has no attribute {name!r}")
