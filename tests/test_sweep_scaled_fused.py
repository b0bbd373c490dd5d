"""The fused evaluation of scaled formats (csrc/sweep_scaled.c, fmtlab._sweep_scaled.fused_scaled_statistics)
against quantize-then-exact-Fraction sums.

The reference: q = fl.decode(fl.encode(whole tensor)) (float64, exact), the element magnitudes
|decode(codes, element)|, and every statistic from its definition (docs/sweep.md) with Python
Fractions: S = sum_V x^2 (V: x and q finite), E = sum_V (q - x)^2, D = sum_V (q - x), the counts, the
float64 maxima, overflow = #{|element| = element.max and |x| > |q|} and subnormal element codes.
The fused statistics of pieces of whole blocks (each at its offset, with the tensor's amax) merged
must equal it exactly, for every scaled preset, nearest-even and stochastic, on tensors with
partial blocks, NaN and Inf blocks, zero blocks, outliers and values at the subnormal edge.
"""
import fractions
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fmtlab as fl
from fmtlab import _c
from fmtlab._c import ffi, lib
from fmtlab._inputs import tensor_sources
from fmtlab._sweep_scaled import fused_scaled_statistics, row_quantum, tensor_amax
from fmtlab.metrics import EXACT_EXPONENT, exact_signal, merge_statistics
from fmtlab.scaled import piece_arguments, preset_names
from fmtlab.sweep import evaluate_piece

SCALED = list(preset_names()) + ["cfloat8_1_4_3:bias=auto", "e4m3fn:block=24,scale=e8m0,axis=0",
                                 "e2m1fn:block=7,scale=e4m3"]
ROUNDINGS = ["nearest_even", "stochastic"]
SEED = 13
UNIT = fractions.Fraction(2) ** EXACT_EXPONENT


def _tensors():
    rng = np.random.default_rng(21)
    matrix = (rng.standard_normal((70, 45)) * np.exp(rng.uniform(-4, 4, (70, 45)))).astype(np.float32)
    matrix[0:2] = 0                                       # zero blocks
    matrix[5, :] = rng.standard_normal(45).astype(np.float32) * 1e-3
    matrix[5, ::3] = 3e4                                  # many outliers in one block row
    matrix[9, 4] = np.nan                                 # a NaN block
    matrix[20, 40], matrix[33, 2] = np.inf, -np.inf      # Inf blocks (the partial last column block too)
    matrix[40, :20] = 2.0 ** -130                         # subnormal float32 inputs: element underflow
    matrix[41, :] = 2.0 ** -120
    finite = rng.standard_normal((37, 50)).astype(np.float32)  # no NaN/Inf: the tensor scales are finite
    finite[36, 49] = 1e30
    vector = rng.laplace(0, 0.05, 1001).astype(np.float32)     # 1-D, partial last block
    vector[500:530] = 0
    double = rng.standard_normal((19, 40)) * np.exp(rng.uniform(-40, 40, (19, 40)))  # float64: its own C path
    cube = rng.standard_normal((3, 17, 33)).astype(np.float32)
    return {"matrix": matrix, "finite": finite, "vector": vector, "double": double, "cube": cube}


TENSORS = _tensors()


def _blockable(fmt, shape):
    try:
        fmt.scales_shape(shape)
    except ValueError:
        return False
    return True


def _finite_amax(x):
    finite = np.abs(x[np.isfinite(x)])
    return float(finite.max()) if finite.size else math.nan


def reference(x, fmt, rounding, seed=SEED):
    """The statistics of the whole tensor x in fmt from their definitions, with Fractions."""
    codes = fl.encode(x, fmt, rounding, seed=seed)
    q = fl.decode(codes).astype(np.float64).reshape(-1)
    element = fmt.element
    if fmt.rule == "bias":
        element_values = fl.decode(codes.codes, element.replace(bias=int(codes.scales))).astype(np.float64)
        magnitudes = np.abs(element_values).reshape(-1)
        element = element.replace(bias=int(codes.scales))
    else:
        magnitudes = np.abs(fl.decode(codes.codes, element).astype(np.float64)).reshape(-1)
    x64 = np.asarray(x, dtype=np.float64).reshape(-1)
    result = dict(n=x64.size, valid=0, zeros_in=0, nan_in=0, inf_in=0, overflow=0, zeros_out=0, below_normal=0,
                  nan_out=0, inf_out=0, max_abs=0.0, max_rel=0.0)
    signal = energy = total = fractions.Fraction(0)
    for xv, qv, magnitude in zip(x64.tolist(), q.tolist(), magnitudes.tolist()):
        x_finite, q_finite = math.isfinite(xv), math.isfinite(qv)
        result["zeros_in"] += xv == 0
        result["nan_in"] += math.isnan(xv)
        result["inf_in"] += math.isinf(xv)
        result["zeros_out"] += qv == 0
        result["nan_out"] += math.isnan(qv)
        result["inf_out"] += math.isinf(qv)
        result["overflow"] += magnitude == element.max and abs(xv) > abs(qv)
        result["below_normal"] += qv == 0 or (0 < magnitude < element.min_normal and q_finite)
        if x_finite and q_finite:  # S is summed over V too (docs/sweep.md: a NaN block leaves out its x)
            signal += fractions.Fraction(xv) ** 2
            result["valid"] += 1
            error = fractions.Fraction(qv) - fractions.Fraction(xv)
            energy += error * error
            total += error
            rounded = abs(qv - xv)
            result["max_abs"] = max(result["max_abs"], rounded)
            if xv != 0:
                result["max_rel"] = max(result["max_rel"], rounded / abs(xv))
    result.update(signal=signal / UNIT, error_energy=energy / UNIT, error_sum=total / UNIT)
    return result


def fused_in_pieces(x, fmt, rounding, rows, seed=SEED):
    """evaluate_piece of x cut into ranges of ``rows`` rows (whole blocks), merged."""
    source = tensor_sources({"t": x})[0]
    amaxes = (tensor_amax(x), _finite_amax(x))
    merged = None
    for start in range(0, source.rows, rows):
        piece = source.piece(start, min(source.rows, start + rows))
        (statistics,) = evaluate_piece(piece, [(fmt, rounding, fmt.element.bias)], seed, amaxes=amaxes)
        merged = statistics if merged is None else merge_statistics(merged, statistics)
    return merged


CASES = [(spec, name) for spec in SCALED for name, x in TENSORS.items() if _blockable(fl.format(spec), x.shape)]


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("spec, name", CASES)
def test_fused_statistics_of_pieces_equal_the_exact_reference(spec, name, rounding):
    fmt, x = fl.format(spec), TENSORS[name]
    expected = reference(x, fmt, rounding)
    quantum = row_quantum(fmt, x.shape)
    rows = x.shape[0] if x.ndim else 1
    for cut in sorted({quantum, 3 * quantum, rows}):
        got = fused_in_pieces(x, fmt, rounding, cut)
        got = {key: (value if key not in ("signal", "error_energy", "error_sum") else fractions.Fraction(value))
               for key, value in got.items()}
        assert got == expected, (spec, name, rounding, cut)


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 40), columns=st.integers(1, 70), spec=st.sampled_from(SCALED),
       rounding=st.sampled_from(ROUNDINGS), seed=st.integers(0, 2 ** 32),
       specials=st.lists(st.tuples(st.integers(0, 10 ** 6), st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 6e4,
                                                                             2.0 ** -133, -2.0 ** -126])),
                         max_size=6),
       scale=st.sampled_from([1.0, 2.0 ** -100, 2.0 ** 60]))
def test_random_matrices_equal_the_exact_reference(rows, columns, spec, rounding, seed, specials, scale):
    fmt = fl.format(spec)
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, columns)) * np.exp(rng.uniform(-3, 3, (rows, columns))) * scale).astype(np.float32)
    for position, value in specials:
        x.flat[position % x.size] = value
    if not _blockable(fmt, x.shape):
        fmt = fl.format("mxfp8_e4m3")
    expected = reference(x, fmt, rounding, seed)
    got = fused_in_pieces(x, fmt, rounding, row_quantum(fmt, x.shape), seed)
    got = {key: (value if key not in ("signal", "error_energy", "error_sum") else fractions.Fraction(value))
           for key, value in got.items()}
    assert got == expected


def test_the_fused_path_keeps_no_array_of_q():
    """An NVFP4 evaluation of 2^22 float32 values allocates far less than one float64 array of them
    (the quantize-then-statistics path holds q, the codes and the element values: over 50 MB)."""
    import tracemalloc

    x = np.random.default_rng(2).standard_normal((1024, 4096)).astype(np.float32)
    fmt = fl.format("nvfp4")
    amax = tensor_amax(x)
    tracemalloc.start()
    fused_scaled_statistics(x.reshape(-1), x.shape, fmt, "nearest_even", 0, 0, amax, 0)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1 << 20  # bytes of numpy and Python memory: no array the size of x (16 MB as float32)


def test_the_c_entry_refuses_bad_arguments():
    x = np.ones((4, 32), np.float32)
    fmt = fl.format("mxfp8_e4m3")
    layout, c_format, piece = piece_arguments(x, fmt, 0, 1.0)
    request = _c.c_rounding(_c.rounding_request("nearest_even", True, 0, None, "truncate"))
    stats = ffi.new("fl_sweep_stats *")
    pointer = _c.pointer(x, "float")
    assert lib.fl_sweep_scaled_evaluate_f32(pointer, layout, c_format, request, ffi.NULL, 448.0, 2.0 ** -6,
                                            stats) == lib.FL_ERROR_ARGUMENT
    assert lib.fl_sweep_scaled_evaluate_f32(pointer, layout, c_format, request, piece, 448.0, 2.0 ** -6,
                                            ffi.NULL) == lib.FL_ERROR_ARGUMENT
    bad = ffi.new("fl_block_layout *", {"outer": 1, "rows": 4, "columns": 32, "block_rows": 0, "block_columns": 32})
    assert lib.fl_sweep_scaled_evaluate_f32(pointer, bad, c_format, request, piece, 448.0, 2.0 ** -6,
                                            stats) == lib.FL_ERROR_SCALED_FORMAT
    negative = ffi.new("fl_scaled_piece *", {"index_offset": -1})
    assert lib.fl_sweep_scaled_evaluate_f32(pointer, layout, c_format, request, negative, 448.0, 2.0 ** -6,
                                            stats) == lib.FL_ERROR_ARGUMENT
    assert lib.fl_sweep_scaled_evaluate_f32(pointer, layout, c_format, request, piece, 448.0, 2.0 ** -6,
                                            stats) == lib.FL_OK
    assert stats.n == 128 and stats.valid == 128 and _c.exact_int(stats.error_energy) == 0


@pytest.mark.parametrize("threads", [2, 3])
def test_the_statistics_do_not_depend_on_the_thread_count(threads):
    """Above 32768 elements the C core encodes on several threads, each with its own sums."""
    big = np.tile(TENSORS["matrix"], (20, 1))  # 1,400 x 45, with NaN and Inf blocks
    fmt = fl.format("mxfp8_e4m3")

    def fused(count):
        previous = fl.get_threads()
        fl.set_threads(count)
        try:
            return fused_scaled_statistics(big.reshape(-1), big.shape, fmt, "stochastic", SEED, 0, tensor_amax(big),
                                           exact_signal(big.reshape(-1)))
        finally:
            fl.set_threads(previous)

    assert fused(threads) == fused(1) == fused_in_pieces(big, fmt, "stochastic", 70)
