"""fmtlab: a number-format precision laboratory.

Bit-exact emulation of the floating-point formats used to train neural networks
(FP32, TF32, FP16, BF16, Tesla CFloat8/CFloat16, OCP FP8 and MX elements, IEEE P3109,
integers, custom formats, and block-scaled formats: MX, NVFP4, block FP8) and of NVIDIA tensor-core multiply-accumulate, with a C core.
"""
from .formats import (Format, preset_names, E8M0, SATURATIONS, FP32, TF32, FP16, BF16, CFLOAT8_1_4_3,  # noqa: F401
                      CFLOAT8_1_5_2, SHP, UHP, E4M3FN, E5M2, E4M3FNUZ, E5M2FNUZ, E4M3B11FNUZ, E4M3,
                      E3M4, E2M3FN, E3M2FN, E2M1FN, ROUNDINGS)
from .integers import IntFormat, INT8, INT4, INT2, UINT8, UINT4, UINT2  # noqa: F401
from .codec import encode, decode, quantize, to_ml_dtypes, Stats, set_threads, get_threads  # noqa: F401
from .scaled import ScaledFormat, ScaledCodes, ScaledStats, scaled_format  # noqa: F401
from .scaled import any_format as format  # noqa: F401  (fl.format: element and scaled formats by name)
from .mma import MMAModel, mma_model, mma_models, mma_block_scaled_models, matmul  # noqa: F401
# Imported last and by name: the package attribute `sweep` must be the function, not the
# submodule fmtlab.sweep (the import system binds the submodule first, this rebinds it).
from .sweep import sweep  # noqa: F401,E402
from .sweep_mma import sweep_mma  # noqa: E402

__version__ = "0.1.0"

__all__ = ["Format", "format", "preset_names", "ROUNDINGS", "FP32", "TF32", "FP16", "BF16", "CFLOAT8_1_4_3",
           "CFLOAT8_1_5_2", "SHP", "UHP", "E4M3FN", "E5M2", "E4M3FNUZ", "E5M2FNUZ", "E4M3B11FNUZ", "E4M3", "E3M4",
           "E2M3FN", "E3M2FN", "E2M1FN", "E8M0", "IntFormat", "INT8", "INT4", "INT2", "UINT8", "UINT4", "UINT2",
           "SATURATIONS", "encode", "decode", "quantize", "to_ml_dtypes", "Stats", "set_threads",
           "get_threads", "ScaledFormat", "ScaledCodes", "ScaledStats", "scaled_format", "MMAModel", "mma_model",
           "mma_models", "mma_block_scaled_models", "matmul", "sweep", "sweep_mma", "__version__"]

