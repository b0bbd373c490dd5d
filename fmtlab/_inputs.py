"""Tensors for precision sweeps: synthetic distributions and tensor files.

Every loader returns a dict ``name -> numpy array`` of float32 (or float64, kept as is)
values.  Narrower floats (float16, bfloat16, FP8, ...) are widened to float32, which is
exact.  Tensors that are not floating point (int64 step counters, bool masks) and empty
tensors are skipped; the loaders record them in ``skipped`` when a list is given.

Files:

==============  ======================================================================
``.npy``        one array, named after the file's stem
``.npz``        every array of the archive, under its key
``.pt/.pth``    a PyTorch state dict (or any nesting of dicts, lists and tuples holding
                tensors, names joined with ".") read with ``torch.load(weights_only=True)``;
                torch is imported only then
``.safetensors`` every tensor of the file; the ``safetensors`` package is imported only then
==============  ======================================================================

Synthetic distributions (``synthetic``), each scaled by ``scale`` and drawn in float64
from ``numpy.random.default_rng`` keyed by (seed, distribution name), then rounded to
float32 (in chunks of ``SYNTHETIC_CHUNK`` values, which gives the same values as one draw:
a tensor needs its 4 bytes per value and one chunk of float64 on top):

==============  ======================================================================
``normal``      scale * Z, Z ~ N(0, 1)
``lognormal``   scale * exp(Z), Z ~ N(0, 1) (positive: a spread of about 11.5 binades at
                +-4 sigma)
``uniform``     U(-scale, scale)
``laplace``     Laplace(0, scale): density exp(-abs(x) / scale) / (2 scale)
``student_t``   scale * T, T ~ Student's t with 3 degrees of freedom (heavy tails)
==============  ======================================================================
"""
from __future__ import annotations

import numbers
import os
import pathlib
import zipfile
import zlib

import numpy as np

from ._choices import not_allowed
from ._dtypes import native_byte_order, widen_narrow_float
from .formats import format

__all__ = ["DISTRIBUTIONS", "FILE_SUFFIXES", "SYNTHETIC_CHUNK", "check_distribution", "synthetic",
           "as_float_array", "tensor_dict", "load_file"]

DISTRIBUTIONS = ("normal", "lognormal", "uniform", "laplace", "student_t")
FILE_SUFFIXES = (".npy", ".npz", ".pt", ".pth", ".safetensors")
STUDENT_T_DEGREES_OF_FREEDOM = 3
SYNTHETIC_CHUNK = 1 << 20  # values drawn in float64 at a time by synthetic()


# ---- synthetic data ------------------------------------------------------------------------
def check_distribution(name, argument: str = "distribution") -> str:
    """``name`` if it is one of ``DISTRIBUTIONS``, else a ValueError naming ``argument`` (a
    Python name or a command-line flag such as ``--dist``), with "did you mean"."""
    if not isinstance(name, str) or name not in DISTRIBUTIONS:
        raise ValueError(not_allowed(argument, name, ", ".join(DISTRIBUTIONS), DISTRIBUTIONS))
    return name


def synthetic(distribution: str, size: int, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    """``size`` float32 samples of ``distribution`` (see the module docstring), reproducible by seed."""
    check_distribution(distribution)
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise ValueError(f"size={size!r} is not allowed: a positive int (number of elements)")
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not (0 < float(scale) < np.inf):
        raise ValueError(f"scale={scale!r} is not allowed: a positive finite number")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed={seed!r} is not allowed: a non-negative int")
    # One independent stream per (seed, distribution), so adding a distribution changes no other.
    generator = np.random.default_rng([int(seed), zlib.crc32(distribution.encode())])
    size, scale = int(size), float(scale)
    # Drawn in chunks straight into the float32 result, so the float64 draws never take more
    # than one chunk of memory.  Each distribution reads the generator's stream value after
    # value, so a chunk continues exactly where the previous one stopped: the values are bit
    # for bit those of one float64 draw of ``size`` values rounded to float32 at the end.
    values = np.empty(size, dtype=np.float32)
    for start in range(0, size, SYNTHETIC_CHUNK):
        count = min(SYNTHETIC_CHUNK, size - start)
        if distribution == "normal":
            chunk = generator.standard_normal(count) * scale
        elif distribution == "lognormal":
            chunk = np.exp(generator.standard_normal(count)) * scale
        elif distribution == "uniform":
            chunk = generator.uniform(-scale, scale, count)
        elif distribution == "laplace":
            chunk = generator.laplace(0.0, scale, count)
        else:
            chunk = generator.standard_t(STUDENT_T_DEGREES_OF_FREEDOM, count) * scale
        values[start:start + count] = chunk  # float64 -> float32, rounded to nearest-even as astype does
    return values


# ---- arrays ----------------------------------------------------------------------------------
def as_float_array(value, name: str) -> np.ndarray:
    """``value`` as a float32/float64 numpy array (torch tensors and narrow floats widened exactly).

    Raises TypeError for non-float data and ValueError for an empty array, naming the tensor.
    """
    if _is_torch_tensor(value):
        value = _torch_to_numpy(value, name)
    array = np.asarray(value)
    if array.dtype.kind == "f":
        array = native_byte_order(array)  # a big-endian .npy: float64 must stay float64
    array = widen_narrow_float(array)  # float16, bfloat16, FP8, FP6, FP4: widening is exact
    if array.dtype.kind != "f" or array.dtype.itemsize > 8:
        raise TypeError(f"tensor {name!r} has dtype {array.dtype}: a sweep takes floating-point tensors "
                        "(float64, float32, float16, bfloat16, FP8); convert integers explicitly")
    if array.size == 0:
        raise ValueError(f"tensor {name!r} is empty (shape {array.shape})")
    return array


def _is_torch_tensor(value) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _torch_to_numpy(tensor, name):
    import torch  # only reached with a torch tensor in hand

    tensor = tensor.detach().cpu()
    if not tensor.is_floating_point():
        raise TypeError(f"tensor {name!r} has dtype {tensor.dtype}: a sweep takes floating-point tensors")
    if tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.to(torch.float32)  # bfloat16, float16, float8: exact
    return tensor.numpy()


def _usable(value, name, skipped):
    """Converted array, or None (recorded in skipped) for non-float or empty tensors."""
    try:
        return as_float_array(value, name)
    except (TypeError, ValueError) as error:
        if skipped is not None:
            skipped.append((name, str(error)))
        return None


def tensor_dict(tensors, skipped=None) -> dict:
    """Normalise what ``fl.sweep`` accepts into an ordered dict name -> float array.

    ``tensors``: an array (named "tensor"), a torch tensor, a dict name -> array, or a path
    (str or os.PathLike) to a .npy, .npz, .pt/.pth or .safetensors file.
    """
    if isinstance(tensors, (str, os.PathLike)):
        return load_file(tensors, skipped)
    if isinstance(tensors, dict):
        if not tensors:
            raise ValueError("tensors={} is empty: give at least one name -> array")
        result = {}
        for name, value in tensors.items():
            if not isinstance(name, str):
                raise TypeError(f"tensor names must be str, got {name!r} ({type(name).__name__})")
            result[name] = as_float_array(value, name)
        return result
    if isinstance(tensors, np.ndarray) or _is_torch_tensor(tensors) or isinstance(tensors, (list, tuple)):
        return {"tensor": as_float_array(tensors, "tensor")}
    raise TypeError(f"tensors={type(tensors).__name__} is not allowed: give an array, a dict name -> array, "
                    f"or a path to a {', '.join(FILE_SUFFIXES)} file")


# ---- files -------------------------------------------------------------------------------------
def load_file(path, skipped=None) -> dict:
    """Every floating-point tensor of a .npy, .npz, .pt/.pth or .safetensors file.

    Missing files raise FileNotFoundError and unreadable ones ValueError, both with one-line
    messages that name the file.
    """
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise ValueError(f"input file {str(path)!r} has the suffix {suffix or '(none)'!r}; "
                         f"allowed: {', '.join(FILE_SUFFIXES)}")
    if not path.exists():
        raise FileNotFoundError(f"input file {str(path)!r} does not exist")
    if not path.is_file():
        raise ValueError(f"input file {str(path)!r} is not a regular file")
    loader = {".npy": _load_npy, ".npz": _load_npz, ".pt": _load_torch, ".pth": _load_torch,
              ".safetensors": _load_safetensors}[suffix]
    tensors = loader(path, skipped)
    if not tensors:
        raise ValueError(f"input file {str(path)!r} holds no non-empty floating-point tensor")
    return tensors


def _load_npy(path, skipped):
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"input file {str(path)!r} is not a readable .npy array: {_one_line(error)}") from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"input file {str(path)!r} is not a .npy array")
    converted = _usable(array, path.stem, skipped)
    return {} if converted is None else {path.stem: converted}


def _load_npz(path, skipped):
    tensors = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single array, not an archive (rename it to .npy)")
            for key in archive.files:
                converted = _usable(archive[key], key, skipped)
                if converted is not None:
                    tensors[key] = converted
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise ValueError(f"input file {str(path)!r} is not a readable .npz archive: {_one_line(error)}") from None
    return tensors


def _load_torch(path, skipped):
    try:
        import torch
    except ImportError:
        raise ValueError(f"reading {str(path)!r} needs PyTorch, which is not installed "
                         "(pip install torch), or save the tensors as .npz / .safetensors") from None
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types (UnpicklingError, RuntimeError, EOFError, ...)
        raise ValueError(f"input file {str(path)!r} is not a readable PyTorch tensor file "
                         f"(weights_only=True): {_one_line(error)}") from None
    tensors = {}
    _collect_torch(content, "", tensors, skipped, torch)
    return tensors


def _collect_torch(value, prefix, tensors, skipped, torch):
    if isinstance(value, torch.Tensor):
        converted = _usable(value, prefix or "tensor", skipped)
        if converted is not None:
            tensors[prefix or "tensor"] = converted
    elif isinstance(value, dict):
        for key, item in value.items():
            _collect_torch(item, f"{prefix}.{key}" if prefix else str(key), tensors, skipped, torch)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _collect_torch(item, f"{prefix}.{index}" if prefix else str(index), tensors, skipped, torch)
    elif skipped is not None and prefix:
        skipped.append((prefix, f"not a tensor ({type(value).__name__})"))


# safetensors dtype codes of floating-point data -> fmtlab preset (F8_E4M3 is OCP's e4m3fn)
_SAFETENSORS_FORMATS = {"F32": "fp32", "F16": "fp16", "BF16": "bf16", "F8_E4M3": "e4m3fn", "F8_E5M2": "e5m2"}


def _safetensors_dtype(code):
    """numpy dtype of a safetensors floating-point dtype code (little-endian data), or None.

    The dtypes are the formats' own (``Format.ml_dtype``, the one table of them)."""
    if code == "F64":
        return np.dtype("<f8")
    preset = _SAFETENSORS_FORMATS.get(code)
    return None if preset is None else format(preset).ml_dtype


def _load_safetensors(path, skipped):
    try:
        import safetensors
    except ImportError:
        raise ValueError(f"reading {str(path)!r} needs the safetensors package, which is not installed "
                         "(pip install safetensors)") from None
    try:
        # deserialize gives raw bytes for every dtype (numpy has no bfloat16 / FP8 of its own).
        entries = safetensors.deserialize(path.read_bytes())
    except Exception as error:  # SafetensorError derives from Exception only
        raise ValueError(f"input file {str(path)!r} is not a readable .safetensors file: "
                         f"{_one_line(error)}") from None
    tensors = {}
    for name, info in entries:
        dtype = _safetensors_dtype(info["dtype"])
        if dtype is None:
            if skipped is not None:
                skipped.append((name, f"dtype {info['dtype']} is not floating point"))
            continue
        array = np.frombuffer(bytes(info["data"]), dtype=dtype).reshape(info["shape"])
        converted = _usable(array, name, skipped)
        if converted is not None:
            tensors[name] = converted
    return tensors


def _one_line(error) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."
