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

import dataclasses
import fnmatch
import json
import math
import numbers
import os
import pathlib
import struct
import zipfile
import zlib

import numpy as np

from ._choices import not_allowed
from ._dtypes import native_byte_order, widen_narrow_float
from .formats import format

__all__ = ["DISTRIBUTIONS", "FILE_SUFFIXES", "SYNTHETIC_CHUNK", "INDEX_SUFFIX", "check_distribution", "synthetic",
           "as_float_array", "tensor_dict", "load_file", "TensorSource", "TensorPiece", "tensor_sources",
           "file_digest"]

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


def _torch_file(path, mapped):
    """(torch, the content of the .pt/.pth file ``path``): read whole, or memory-mapped where it
    can be (``mapped``, :func:`_torch_load`); a ValueError naming the file when torch is missing
    or the file is not readable with ``weights_only=True``."""
    try:
        import torch
    except ImportError:
        raise ValueError(f"reading {str(path)!r} needs PyTorch, which is not installed "
                         "(pip install torch), or save the tensors as .npz / .safetensors") from None
    try:
        return torch, (_torch_load(path, torch) if mapped else torch.load(path, map_location="cpu", weights_only=True))
    except Exception as error:  # torch raises many types (UnpicklingError, RuntimeError, EOFError, ...)
        raise ValueError(f"input file {str(path)!r} is not a readable PyTorch tensor file "
                         f"(weights_only=True): {_one_line(error)}") from None


def _load_torch(path, skipped):
    torch, content = _torch_file(path, mapped=False)
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


# ---- lazy tensor sources: what a checkpoint-scale sweep reads ----------------------------------------
# A sweep of a checkpoint never holds a whole file: each tensor is a TensorSource (where it is, its
# dtype and shape), and each task reads only its own rows of it (a TensorPiece), memory-mapped where
# the file allows it (.npy, .safetensors, stored .npz members, .pt/.pth zip checkpoints).
INDEX_SUFFIX = ".index.json"  # a sharded checkpoint's index: model.safetensors.index.json
_SAFETENSORS_HEADER_LIMIT = 100 << 20  # bytes: the format's own limit on the JSON header
_NPZ_READ_BLOCK = 1 << 22  # bytes read at a time from a compressed .npz member


@dataclasses.dataclass(frozen=True, eq=False)
class TensorSource:
    """One floating-point tensor of an input: its record ``name``, where it lies, its dtype and shape.

    ``kind`` is "array" (an in-memory array, ``array``), "npy", "npz", "safetensors" or "torch"
    (a file at ``path``, the tensor ``key`` in it).  ``offset`` is the byte offset of the data in
    the file (.npy, .safetensors, a stored .npz member), ``fortran`` whether a .npy is in
    Fortran order, ``member`` the .npz member's name.  ``rows`` is the first dimension (1 for a
    0-d tensor), ``row_size`` the elements per row; rows are the unit a sweep cuts tensors by.
    """
    name: str
    kind: str
    shape: tuple
    dtype: str
    path: str | None = None
    key: str | None = None
    offset: int = 0
    fortran: bool = False
    member: str | None = None
    compressed: bool = False
    array: object = dataclasses.field(default=None, repr=False)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def row_size(self) -> int:
        return math.prod(self.shape[1:]) if self.shape else 1

    @property
    def nbytes(self) -> int:
        """Bytes of the tensor as stored."""
        return self.size * (2 if self.dtype == _BFLOAT16 else np.dtype(_numpy_dtype(self.dtype)).itemsize)

    def piece(self, start: int, stop: int) -> "TensorPiece":
        """Rows ``start:stop`` as a picklable piece: an in-memory array's rows travel with it
        (a view inline, a copy of those rows only when pickled), a file's are read where the
        piece is read."""
        shape = (stop - start,) + tuple(self.shape[1:]) if self.shape else ()
        if self.kind == "array":
            rows = self.array[start:stop] if self.shape else self.array
            return TensorPiece(self.name, start * self.row_size, shape, self.size, data=rows)
        return TensorPiece(self.name, start * self.row_size, shape, self.size,
                           source=dataclasses.replace(self, array=None), start=start, stop=stop)


@dataclasses.dataclass(frozen=True, eq=False)
class TensorPiece:
    """Rows of a tensor for one task: ``data`` (rows in memory) or ``source`` rows ``start:stop``.
    ``offset`` is the global index (C order) of the piece's first element, ``shape`` its shape,
    ``total`` the whole tensor's element count."""
    name: str
    offset: int
    shape: tuple
    total: int
    data: object = None
    source: TensorSource | None = None
    start: int = 0
    stop: int = 0

    def read(self) -> np.ndarray:
        """The piece's values, flat in C order, as float32 (narrow floats widened exactly) or float64."""
        if self.data is not None:
            array = np.asarray(self.data)
        else:
            array = _read_rows(self.source, self.start, self.stop)
        array = widen_narrow_float(native_byte_order(array) if array.dtype.kind == "f" else array)
        return np.ascontiguousarray(array).reshape(-1)


def _numpy_dtype(text):
    """The numpy dtype named by a TensorSource's ``dtype`` (numpy's str, or an ml_dtypes name)."""
    try:
        return np.dtype(text)
    except TypeError:
        import ml_dtypes  # noqa: F401  (registers bfloat16, float8_* with numpy)
        return np.dtype(getattr(ml_dtypes, text))


_BFLOAT16 = "bfloat16"  # a TensorSource's dtype name for bfloat16 (ml_dtypes' name for it)


def _read_rows(source: TensorSource, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of a file tensor, read without reading the rest of the file.  A
    bfloat16 tensor is read as its 16-bit words and widened to float32 by a shift (exact: a
    bfloat16 is the upper half of the float32 of the same value, NaN payloads included), without
    ml_dtypes."""
    if source.dtype == _BFLOAT16 and source.kind != "torch":  # (torch's reader widens rows itself)
        words = _read_stored_rows(source, start, stop, np.dtype("<u2" if source.kind == "safetensors" else "=u2"))
        return (words.astype(np.uint32) << 16).view(np.float32)
    return _read_stored_rows(source, start, stop, _numpy_dtype(source.dtype))


def _read_stored_rows(source: TensorSource, start: int, stop: int, dtype: np.dtype) -> np.ndarray:
    """Rows ``start:stop`` of a file tensor as stored, read as ``dtype``."""
    shape = source.shape if source.shape else (1,)
    count = (stop - start) * source.row_size
    if source.kind in ("npy", "safetensors") or (source.kind == "npz" and not source.compressed):
        if source.fortran:  # a Fortran-order .npy: rows are not contiguous; map all, copy the rows
            mapped = np.memmap(source.path, dtype=dtype, mode="r", offset=source.offset, shape=shape, order="F")
            return np.array(mapped[start:stop], order="C")
        mapped = np.memmap(source.path, dtype=dtype, mode="r", offset=source.offset + start * source.row_size
                           * dtype.itemsize, shape=(count,))
        return np.array(mapped)  # a copy of these rows only; the map is closed with it
    if source.kind == "npz":  # a compressed member: decompress up to the rows, keep only them
        with zipfile.ZipFile(source.path) as archive, archive.open(source.member) as member:
            member.seek(source.offset + start * source.row_size * dtype.itemsize)  # decompresses up to there
            data = member.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            raise ValueError(f"input file {source.path!r}: member {source.member!r} ends before its declared size")
        array = np.frombuffer(data, dtype=dtype)
        if source.fortran:
            raise ValueError(f"input file {source.path!r}: Fortran-order compressed member {source.member!r}")
        return array
    if source.kind == "torch":
        import torch

        found = {}
        _collect_torch_meta(_torch_load(source.path, torch), "", found, None, torch)
        tensor = found[source.key][2]
        rows = tensor.reshape(source.rows, source.row_size)[start:stop].detach()
        if rows.dtype not in (torch.float32, torch.float64):
            rows = rows.to(torch.float32)  # exact for bfloat16, float16, FP8
        return rows.numpy().copy()
    raise ValueError(f"tensor {source.name!r} has an unknown kind {source.kind!r}")


def _torch_load(path, torch):
    """A .pt/.pth file's content, memory-mapped when it is a zip checkpoint (torch >= 2.1)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, ValueError, TypeError):  # a legacy (non-zip) file cannot be mapped
        return torch.load(path, map_location="cpu", weights_only=True)


def _glob_list(patterns, argument):
    if patterns is None:
        return ()
    if isinstance(patterns, str):
        patterns = [patterns]
    result = []
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"{argument}={pattern!r} is not allowed: glob patterns on tensor names (str)")
        result.extend(part.strip() for part in pattern.split(",") if part.strip())
    return tuple(result)


def tensor_sources(inputs, *, include=None, exclude=None, skipped=None, include_argument="include",
                   exclude_argument="exclude", input_argument="input file") -> list:
    """The tensors a sweep reads, as :class:`TensorSource` objects, without reading their data.

    ``inputs``: an array, a torch tensor, a dict name -> array (held in memory), or a path or a
    list of paths, each a tensor file (.npy, .npz, .pt/.pth, .safetensors), a directory (its
    tensor files, sorted by name, not recursive) or a sharded checkpoint's index
    (``*.index.json``: the shards its ``weight_map`` names), or a list of TensorSource objects
    (as this function returns them).  Tensor names are the files' own;
    a tensor name found in two files gets the file's stem as a prefix (``stem/name``) in both.
    ``include`` / ``exclude``: glob patterns (``fnmatch``, e.g. ``"*.attn.*"``; a list or a
    comma-separated string) on those names: a tensor is kept when it matches some include
    pattern (all, without ``include``) and no exclude pattern.  Non-float and empty tensors are
    recorded in ``skipped``; nothing left is a ValueError.
    """
    includes = _glob_list(include, include_argument)
    excludes = _glob_list(exclude, exclude_argument)
    found = []  # (file stem or None, source)
    if isinstance(inputs, (list, tuple)) and inputs and all(isinstance(item, TensorSource) for item in inputs):
        found = [(None, source) for source in inputs]  # already resolved (names final)
    elif isinstance(inputs, (str, os.PathLike)) or (isinstance(inputs, (list, tuple)) and inputs
                                                   and all(isinstance(item, (str, os.PathLike)) for item in inputs)):
        paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
        files = []
        for path in paths:
            files.extend(_expand_input(pathlib.Path(path), input_argument))
        for file in dict.fromkeys(files):
            for source in _file_sources(file, skipped):
                found.append((file.stem, source))
    else:
        for name, array in tensor_dict(inputs, skipped).items():
            found.append((None, TensorSource(name, "array", tuple(array.shape), array.dtype.str, array=array)))
    counts = {}
    for _stem, source in found:
        counts[source.name] = counts.get(source.name, 0) + 1
    sources = []
    for stem, source in found:
        name = f"{stem}/{source.name}" if counts[source.name] > 1 and stem is not None else source.name
        if includes and not any(fnmatch.fnmatchcase(name, pattern) for pattern in includes):
            continue
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in excludes):
            continue
        sources.append(dataclasses.replace(source, name=name) if name != source.name else source)
    if not sources:
        patterns = (f" matching {include_argument} {','.join(includes)}" if includes else "") + \
                   (f" and not {exclude_argument} {','.join(excludes)}" if excludes else "")
        raise ValueError(f"{input_argument}: no non-empty floating-point tensor{patterns} in the input")
    names = [source.name for source in sources]
    if len(set(names)) != len(names):
        duplicate = next(name for name in names if names.count(name) > 1)
        raise ValueError(f"{input_argument}: the tensor name {duplicate!r} is given twice (the same file twice?)")
    return sources


def _expand_input(path: pathlib.Path, argument: str) -> list:
    """The tensor files an input path names: itself, a directory's tensor files, an index's shards."""
    if not path.exists():
        raise FileNotFoundError(f"{argument} {str(path)!r} does not exist")
    if path.is_dir():
        files = sorted(child for child in path.iterdir()
                       if child.is_file() and child.suffix.lower() in FILE_SUFFIXES)
        if not files:
            raise ValueError(f"{argument} {str(path)!r} is a directory with no tensor file "
                             f"({', '.join(FILE_SUFFIXES)})")
        return files
    if path.name.lower().endswith(INDEX_SUFFIX):
        try:
            index = json.loads(path.read_text())
            weight_map = index["weight_map"]
            shards = list(dict.fromkeys(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{argument} {str(path)!r} is not a readable checkpoint index (a JSON object "
                             f"with a weight_map of tensor name -> shard file): {_one_line(error)}") from None
        files = []
        for shard in shards:
            file = path.parent / shard
            if not file.is_file():
                raise FileNotFoundError(f"{argument} {str(path)!r} names the shard {shard!r}, which does not "
                                        f"exist in {str(path.parent)!r}")
            files.append(file)
        return files
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise ValueError(f"input file {str(path)!r} has the suffix {path.suffix.lower() or '(none)'!r}; "
                         f"allowed: {', '.join(FILE_SUFFIXES)}, a directory, or a *{INDEX_SUFFIX} index")
    if not path.is_file():
        raise ValueError(f"input file {str(path)!r} is not a regular file")
    return [path]


def _file_sources(path: pathlib.Path, skipped) -> list:
    suffix = path.suffix.lower()
    reader = {".npy": _npy_sources, ".npz": _npz_sources, ".safetensors": _safetensors_sources,
              ".pt": _torch_sources, ".pth": _torch_sources}[suffix]
    sources = reader(path, skipped)
    if not sources:
        raise ValueError(f"input file {str(path)!r} holds no non-empty floating-point tensor")
    return sources


def _kept(name, dtype, shape, skipped) -> bool:
    """Whether a tensor of ``dtype`` and ``shape`` is swept (a float, not empty); else noted in skipped."""
    if dtype == _BFLOAT16:
        floating = True
    else:
        dtype = np.dtype(dtype)
        floating = (dtype.kind == "f" and dtype.itemsize <= 8) or _is_narrow(dtype)
    if not floating:
        if skipped is not None:
            skipped.append((name, f"dtype {dtype} is not floating point"))
        return False
    if math.prod(shape) == 0:
        if skipped is not None:
            skipped.append((name, f"empty (shape {tuple(shape)})"))
        return False
    return True


def _is_narrow(dtype) -> bool:
    from ._dtypes import is_narrow_float
    return is_narrow_float(dtype)


def _dtype_text(dtype) -> str:
    """A picklable name of ``dtype`` that :func:`_numpy_dtype` reads back (ml_dtypes by name)."""
    dtype = np.dtype(dtype)
    return dtype.name if _is_narrow(dtype) and dtype != np.float16 else dtype.str


def _npy_header(handle, path, what):
    try:
        version = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(handle)
    except (ValueError, OSError, EOFError, SyntaxError) as error:
        raise ValueError(f"input file {str(path)!r} is not a readable {what}: {_one_line(error)}") from None
    return tuple(int(size) for size in shape), bool(fortran), dtype


def _npy_sources(path, skipped):
    with open(path, "rb") as handle:
        shape, fortran, dtype = _npy_header(handle, path, ".npy array")
        offset = handle.tell()
    if dtype.hasobject:
        raise ValueError(f"input file {str(path)!r} is not a readable .npy array: it holds Python objects")
    needed = offset + math.prod(shape) * dtype.itemsize
    if path.stat().st_size < needed:
        raise ValueError(f"input file {str(path)!r} is not a readable .npy array: it is shorter "
                         f"({path.stat().st_size} bytes) than its header declares ({needed})")
    if not _kept(path.stem, dtype, shape, skipped):
        return []
    return [TensorSource(path.stem, "npy", shape, _dtype_text(dtype), path=str(path), offset=offset, fortran=fortran)]


def _npz_sources(path, skipped):
    """The members of an .npz, from their headers only: nothing is unpacked.  A member whose
    header declares more data than the zip entry holds (uncompressed size) is an error."""
    sources = []
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                key = info.filename[:-4]
                with archive.open(info) as member:
                    shape, fortran, dtype = _npy_header(member, path, ".npz archive")
                    header = member.tell()
                declared = math.prod(shape) * dtype.itemsize
                if header + declared != info.file_size:
                    raise ValueError(f"member {key!r} declares {declared} bytes of data but its zip entry holds "
                                     f"{info.file_size - header}")
                if not _kept(key, dtype, shape, skipped):
                    continue
                stored = info.compress_type == zipfile.ZIP_STORED
                offset = header + (_member_data_offset(path, info) if stored else 0)
                sources.append(TensorSource(key, "npz", shape, _dtype_text(dtype), path=str(path), key=key,
                                            offset=offset, fortran=fortran, member=info.filename,
                                            compressed=not stored))
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise ValueError(f"input file {str(path)!r} is not a readable .npz archive: {_one_line(error)}") from None
    return sources


def _member_data_offset(path, info) -> int:
    """Where a stored zip member's bytes start in the file (after its local header)."""
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(30)
        if local[:4] != b"PK\x03\x04":
            raise ValueError(f"member {info.filename!r} has no local header")
        name_length, extra_length = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + name_length + extra_length


def _safetensors_sources(path, skipped):
    """The tensors of a .safetensors file from its header (checked with safetensors' own
    ``safe_open``); the data are memory-mapped rows when read (safe_open's numpy slices have no
    bfloat16 or FP8)."""
    try:
        import safetensors
    except ImportError:
        raise ValueError(f"reading {str(path)!r} needs the safetensors package, which is not installed "
                         "(pip install safetensors)") from None
    try:
        with safetensors.safe_open(str(path), framework="numpy") as handle:
            names = list(handle.keys())
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > _SAFETENSORS_HEADER_LIMIT:
                raise ValueError(f"header of {length} bytes")
            header = json.loads(handle.read(length))
    except Exception as error:  # SafetensorError derives from Exception only
        raise ValueError(f"input file {str(path)!r} is not a readable .safetensors file: "
                         f"{_one_line(error)}") from None
    sources = []
    for name in names:
        info = header[name]
        # BF16 (a checkpoint's usual dtype) is named without its ml_dtypes dtype: its rows are read
        # as 16-bit words and widened by a shift (_read_rows), so that sweeping a BF16 checkpoint
        # does not import ml_dtypes (0.4-0.8 s in every process that reads one).
        dtype = _BFLOAT16 if info["dtype"] == "BF16" else _safetensors_dtype(info["dtype"])
        if dtype is None:
            if skipped is not None:
                skipped.append((name, f"dtype {info['dtype']} is not floating point"))
            continue
        shape = tuple(int(size) for size in info["shape"])
        if not _kept(name, dtype, shape, skipped):
            continue
        begin, _end = info["data_offsets"]
        sources.append(TensorSource(name, "safetensors", shape, dtype if dtype == _BFLOAT16 else _dtype_text(dtype),
                                    path=str(path), key=name, offset=8 + length + int(begin)))
    return sources


def _torch_sources(path, skipped):
    torch, content = _torch_file(path, mapped=True)
    found = {}
    _collect_torch_meta(content, "", found, skipped, torch)
    return [TensorSource(name, "torch", shape, dtype, path=str(path), key=name) for name, (shape, dtype, _tensor) in found.items()]


def _collect_torch_meta(value, prefix, found, skipped, torch):
    if isinstance(value, torch.Tensor):
        name = prefix or "tensor"
        if not value.is_floating_point():
            if skipped is not None:
                skipped.append((name, f"dtype {value.dtype} is not floating point"))
        elif value.numel() == 0:
            if skipped is not None:
                skipped.append((name, f"empty (shape {tuple(value.shape)})"))
        else:
            dtype = "<f8" if value.dtype == torch.float64 else "<f4" if value.dtype == torch.float32 else "bfloat16" \
                if value.dtype == torch.bfloat16 else "<f2" if value.dtype == torch.float16 else "<f4"
            found[name] = (tuple(value.shape), dtype, value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _collect_torch_meta(item, f"{prefix}.{key}" if prefix else str(key), found, skipped, torch)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _collect_torch_meta(item, f"{prefix}.{index}" if prefix else str(index), found, skipped, torch)
    elif skipped is not None and prefix:
        skipped.append((prefix, f"not a tensor ({type(value).__name__})"))


def file_digest(path, limit: int | None = None) -> str:
    """SHA-256 of a file's bytes (hex), read in blocks (for a run's provenance)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            block = handle.read(1 << 22)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()
