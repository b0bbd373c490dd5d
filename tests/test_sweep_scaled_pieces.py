"""Scaled formats in a sweep on row-range pieces: bit for bit the whole tensor's evaluation.

A scaled format's pieces hold whole blocks (fmtlab._sweep_scaled.row_quantum), take the tensor's
amax from the scan (NVFP4's tensor scale, fp8_tensor's one scale, the bias of
cfloat8_1_4_3:bias=auto) and draw stochastic rounding at global indices; their statistics merge
like element formats'.  Proven here against the whole tensor: the values of the pieces are those
of ``fl.encode`` of the whole tensor (every bit), the records are the same for every chunk size
(many cuts, a chunk smaller than one block row included), the metrics equal an exact rational
reference computed from the whole tensor's values, and a sweep's peak memory follows the chunk,
not the tensor.
"""
import fractions
import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fmtlab as fl
from fmtlab import _c
from fmtlab._c import ffi, lib
from fmtlab._sweep_scaled import row_quantum, row_ranges, tensor_amax
from fmtlab.scaled import encode_piece, preset_names
from fmtlab.sweep import sweep

SCALED = list(preset_names()) + ["cfloat8_1_4_3:bias=auto", "e4m3fn:block=24,scale=e8m0,axis=0"]
ROUNDINGS = ["nearest_even", "stochastic"]
SEED = 9


def _tensors():
    rng = np.random.default_rng(4)
    matrix = (rng.standard_normal((300, 40)) * np.exp(rng.uniform(-5, 5, (300, 40)))).astype(np.float32)
    matrix[17:19] = 0                                    # zero blocks
    special = rng.standard_normal((200, 32)).astype(np.float32)
    special[3, 5], special[150, 0], special[199, 31] = np.nan, np.inf, -np.inf
    special[60, :10] = 2.0 ** -140                       # tiny values: underflow and subnormal elements
    infinite = rng.standard_normal((64, 48)).astype(np.float32)
    infinite[40, 7] = -np.inf                            # an Inf and no NaN: the tensor scale saturates
    double = rng.standard_normal((50, 40)) * np.exp(rng.uniform(-30, 30, (50, 40)))   # float64: its own C path
    return {"matrix": matrix, "special": special, "infinite": infinite, "double": double,
            "vector": rng.laplace(0, 0.03, 5000).astype(np.float32),
            "cube": rng.standard_normal((3, 70, 50)).astype(np.float32)}


TENSORS = _tensors()


def _sweep(chunk, formats=SCALED, tensors=TENSORS, **options):
    return sweep(tensors, formats, roundings=ROUNDINGS, seed=SEED, jobs=1, chunk=chunk,
                 on_note=options.pop("on_note", lambda line: None), **options)


@pytest.fixture(scope="module")
def whole():
    return _sweep(1 << 30)


# ---- the values: pieces = the whole tensor's encode ------------------------------------------------
def _piece_values(x, fmt, rows, rounding):
    """decode(encode_piece(...)) of x cut into ranges of ``rows`` rows, concatenated."""
    request = _c.rounding_request(rounding, True, SEED, None, "truncate")
    finite = np.abs(x[np.isfinite(x)])
    amaxes = (tensor_amax(x), float(finite.max()) if finite.size else 0.0)
    row_size = x.size // x.shape[0]
    parts = [fl.decode(encode_piece(np.ascontiguousarray(x[start:start + rows]), fmt, request, start * row_size,
                                    *amaxes)).reshape(-1)
             for start in range(0, x.shape[0], rows)]
    return np.concatenate(parts)


@pytest.mark.parametrize("spec", SCALED)
@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_the_values_of_pieces_are_those_of_the_whole_tensor(spec, rounding):
    fmt = fl.format(spec)
    for name, x in TENSORS.items():
        if isinstance(fmt.block, tuple) and x.ndim < 2:
            continue
        expected = fl.decode(fl.encode(x, fmt, rounding, seed=SEED)).reshape(-1)
        quantum = row_quantum(fmt, x.shape)
        for rows in {quantum, 3 * quantum, x.shape[0]}:
            values = _piece_values(x, fmt, rows, rounding)
            assert np.array_equal(values.view(np.uint64), expected.view(np.uint64)), (name, rows)


def test_a_nan_in_the_tensor_makes_nvfp4_and_fp8_tensor_nan_in_every_piece():
    """The tensor's NaN lies in one piece only; the others still get the NaN tensor scale."""
    x = TENSORS["special"]
    for spec in ("nvfp4", "fp8_tensor"):
        values = _piece_values(x, fl.format(spec), 10, "nearest_even")
        assert np.isnan(values).all(), spec


def test_the_rows_a_piece_must_hold():
    quantum = {spec: row_quantum(fl.format(spec), (300, 40)) for spec in SCALED}
    assert quantum == {**dict.fromkeys(SCALED, 1), "nvfp4_2d": 16, "fp8_block128x128": 128,
                       "e4m3fn:block=24,scale=e8m0,axis=0": 24}
    assert row_quantum(fl.format("mxfp8_e4m3"), (5000,)) == 32           # blocks along a 1-D tensor's only axis
    assert row_quantum(fl.format("fp8_block128x128"), (3, 70, 50)) == 1  # tiles inside each first-axis index
    assert row_quantum(fl.format("mxfp8_e4m3:block=channel,axis=0"), (30, 4)) == 30
    # whole multiples of the quantum, rounded up to it, aligned where the chunk allows
    assert row_ranges(300, 40, 1, 128) == [(0, 128), (128, 256), (256, 300)]
    assert row_ranges(300, 40, 40 * 200, 16) == [(0, 192), (192, 300)]
    assert row_ranges(10, 3, 7, 1) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    assert row_ranges(5000, 1, 4096 + 100, 32, 4096) == [(0, 4096), (4096, 5000)]


def test_encode_piece_refuses_what_it_cannot_do():
    fmt = fl.format("fp8_tensor")
    layout = _c.c_block_layout(1, 4, 8, 1, 8)        # four blocks: not one tensor-wide block
    x = np.ones(32, np.float32)
    codes, scales, tensor = np.empty(32, np.uint8), np.empty(4, np.uint32), ffi.new("uint32_t *")
    request = _c.c_rounding(_c.rounding_request("nearest_even", True, 0, None, "truncate"))
    piece = ffi.new("fl_scaled_piece *", {"index_offset": 0, "has_tensor_amax": 1, "tensor_amax_is_block": 1,
                                          "tensor_amax": 1.0})
    arguments = (_c.pointer(x, "float"), layout, _c.c_scaled_format(fmt), request)
    outputs = (_c.pointer(codes, "void"), 1, _c.pointer(scales, "void"), 4, tensor, ffi.NULL)
    assert lib.fl_scaled_encode_piece_f32(*arguments, piece, *outputs) == lib.FL_ERROR_SCALED_FORMAT
    assert lib.fl_scaled_encode_piece_f32(*arguments, ffi.NULL, *outputs) == lib.FL_ERROR_ARGUMENT
    for field, value in (("index_offset", -1), ("tensor_amax", -2.0)):
        bad = ffi.new("fl_scaled_piece *", {"index_offset": 0, "has_tensor_amax": 1, "tensor_amax": 1.0})
        setattr(bad, field, value)
        assert lib.fl_scaled_encode_piece_f32(*arguments, bad, *outputs) == lib.FL_ERROR_ARGUMENT, field
    with pytest.raises(ValueError, match="non-empty"):
        encode_piece(np.zeros((0, 4), np.float32), fl.format("mxfp8_e4m3"),
                     _c.rounding_request("nearest_even", True, 0, None, "truncate"), 0, 0.0, 0.0)


# ---- the records: every cut gives the whole tensor's -------------------------------------------------
@pytest.mark.parametrize("chunk", [1, 7 * 40, 1000, 4096, 130 * 40])
def test_every_chunk_gives_the_records_of_the_whole_tensor(whole, chunk):
    chunked = _sweep(chunk)
    assert chunked.to_csv() == whole.to_csv()
    assert list(chunked) == list(whole)


def test_jobs_and_an_executor_give_the_same_records(whole):
    import concurrent.futures

    two = sweep(TENSORS, SCALED, roundings=ROUNDINGS, seed=SEED, jobs=2, chunk=999, on_note=lambda line: None)
    assert two.to_csv() == whole.to_csv()
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        threaded = sweep(TENSORS, SCALED, roundings=ROUNDINGS, seed=SEED, executor=executor, chunk=40 * 33,
                         on_note=lambda line: None)
    assert threaded.to_csv() == whole.to_csv()


def test_a_chunk_below_one_block_row_is_rounded_up_with_a_note(whole):
    notes = []
    formats = ["mxfp8_e4m3", "nvfp4_2d", "fp8_block128x128"]
    chunked = _sweep(100, formats=formats, on_note=notes.append)
    assert list(chunked) == [r for r in whole if r.format in formats]
    rounded = [note for note in notes if "rounded up" in note]
    assert rounded == [
        "nvfp4_2d: chunk=100 elements is less than one row of its blocks (16 rows) of 4 tensor(s) 'matrix', "
        "'special', 'infinite', 'double'; their pieces are rounded up to whole blocks (the results do not depend "
        "on it)",
        "fp8_block128x128: chunk=100 elements is less than one row of its blocks (128 rows) of 2 tensor(s) "
        "'matrix', 'special'; their pieces are rounded up to whole blocks (the results do not depend on it)"]
    assert list(chunked.notes) == notes
    assert _sweep(16 * 48, formats=formats, on_note=notes.append).to_csv() == chunked.to_csv()


def test_file_inputs_cut_into_pieces_give_the_in_memory_records(tmp_path, whole):
    for name, x in TENSORS.items():
        np.save(tmp_path / f"{name}.npy", x)
    from_files = sweep(tmp_path, SCALED, roundings=ROUNDINGS, seed=SEED, jobs=1, chunk=1000,
                       on_note=lambda line: None)
    assert sorted(from_files.to_csv().splitlines()) == sorted(whole.to_csv().splitlines())


# ---- the metrics: an exact rational reference from the whole tensor's values ------------------------
def _exact_reference(x, fmt, rounding):
    codes = fl.encode(x, fmt, rounding, seed=SEED)
    q = fl.decode(codes).reshape(-1)
    element = np.abs(fl.decode(codes.codes, fmt.element).astype(np.float64).reshape(-1))
    x64 = x.astype(np.float64).reshape(-1)
    n = x64.size
    valid = np.isfinite(x64) & np.isfinite(q)
    if not valid.any():
        return None
    exact_x = [fractions.Fraction(v) for v in x64[valid]]
    exact_e = [fractions.Fraction(a) - b for a, b in zip(q[valid], exact_x)]
    signal, noise = sum(v * v for v in exact_x), sum(e * e for e in exact_e)
    with np.errstate(invalid="ignore"):
        saturated = np.count_nonzero((element == fmt.element.max) & (np.abs(x64) > np.abs(q)))
    return {"snr": math.inf if noise == 0 else float(signal / noise),    # exact, rounded once
            "rmse": math.sqrt(noise / int(valid.sum())),
            "mean_err": float(sum(exact_e) / int(valid.sum())),
            "max_abs_err": float(max(abs(e) for e in exact_e)),
            "overflow_frac": saturated / n,
            "subnormal_frac": np.count_nonzero(np.isfinite(q) & (element > 0)
                                               & (element < fmt.element.min_normal)) / n,
            "underflow_frac": np.count_nonzero(np.isfinite(x64) & (x64 != 0) & (q == 0)) / n,
            "nan_frac": np.count_nonzero(np.isnan(q)) / n}


@pytest.mark.parametrize("spec", ["mxfp8_e4m3", "nvfp4", "fp8_block128x128", "fp8_tensor", "mxint8",
                                  "cfloat8_1_4_3:bias=auto"])
def test_chunked_metrics_equal_the_exact_reference_of_the_whole_tensor(whole, spec):
    fmt = fl.format(spec)
    chunked = _sweep(333, formats=[spec])
    assert list(chunked) == [r for r in whole if r.format == spec]
    checked = 0
    for record in chunked:
        expected = _exact_reference(TENSORS[record.tensor], fmt, record.rounding)
        if expected is None:
            assert math.isnan(record.sqnr_db) and record.nan_frac == 1.0
            continue
        for name in ("overflow_frac", "subnormal_frac", "underflow_frac", "nan_frac", "max_abs_err"):
            assert getattr(record, name) == expected[name], (record.tensor, name)
        # the SQNR as the ratio it is the log of (near 0 dB the log would amplify a last-bit difference)
        assert 10 ** (record.sqnr_db / 10) == pytest.approx(expected["snr"], rel=1e-12), record.tensor
        for name in ("rmse", "mean_err"):
            assert getattr(record, name) == pytest.approx(expected[name], rel=1e-12, abs=1e-300), (record.tensor, name)
        checked += 1
    assert checked >= 6


@settings(max_examples=20)
@given(rows=st.integers(1, 70), columns=st.integers(1, 40), chunk=st.integers(1, 3000),
       spec=st.sampled_from(SCALED), rounding=st.sampled_from(ROUNDINGS), seed=st.integers(0, 2 ** 20),
       nan=st.booleans())
def test_random_shapes_and_chunks_give_the_whole_tensor_records(rows, columns, chunk, spec, rounding, seed, nan):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, columns)) * np.exp(rng.uniform(-8, 8, (rows, columns)))).astype(np.float32)
    if nan:
        x[rng.integers(rows), rng.integers(columns)] = np.nan
    tensors = {"x": x, "flat": x.reshape(-1)}
    arguments = dict(formats=[spec], roundings=[rounding], seed=seed, jobs=1, on_note=lambda line: None)
    try:
        expected = sweep(tensors, chunk=1 << 30, **arguments)
    except ValueError as error:            # tiles on a 1-D tensor only: nothing to evaluate
        assert "nothing to evaluate" in str(error)
        return
    assert sweep(tensors, chunk=chunk, **arguments).to_csv() == expected.to_csv()


# ---- memory: bounded by the chunk, not the tensor ---------------------------------------------------
_MEMORY_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from fmtlab.sweep import sweep

    def status(field):
        with open("/proc/self/status") as lines:
            return next(int(line.split()[1]) * 1024 for line in lines if line.startswith(field + ":"))

    path, chunk = sys.argv[1], int(sys.argv[2])
    formats = ["nvfp4", "fp8_block128x128", "fp8_tensor"]       # tensor scales, tiles of 128 rows, one scale
    sweep({"warm": np.ones((256, 256), np.float32)}, formats, jobs=1)   # imports and first-use buffers
    before = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")                                                # the peak (VmHWM) restarts here
    sweep(path, formats, roundings=["nearest_even", "stochastic"], jobs=1, chunk=chunk)
    print(json.dumps({"growth": status("VmHWM") - before}))
""")


def _peak_growth(path, chunk):
    """Peak RSS growth (bytes) of a subprocess sweeping ``path``, over its RSS after a warm-up."""
    done = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(path), str(chunk)], capture_output=True,
                          text=True, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["growth"]


def test_peak_memory_of_scaled_formats_follows_the_chunk_not_the_tensor(tmp_path):
    """Float32 tensors of 16 and 64 MB swept in NVFP4 (tensor scale), fp8_block128x128 (128-row
    tiles) and fp8_tensor (one scale): the process's peak RSS grows by about the same for both,
    a fraction of the larger tensor (evaluated whole, it held the tensor in float64 several times
    over: about 13x its size)."""
    rng = np.random.default_rng(0)
    growth, size = {}, {}
    for rows in (4096, 16384):
        path = tmp_path / f"x{rows}.npy"
        np.save(path, rng.standard_normal((rows, 1024)).astype(np.float32))
        size[rows] = path.stat().st_size
        growth[rows] = _peak_growth(path, 1 << 18)
    assert 0 < growth[16384] < 0.5 * size[16384], (growth, size)
    assert growth[16384] < 1.5 * growth[4096] + (4 << 20), (growth, size)


def test_the_memory_check_counts_a_piece_of_whole_blocks_not_the_tensor(tmp_path):
    """fmtlab sweep's check before any work: a piece holds at least one row of blocks (128 rows of
    128x128 tiles), never the whole tensor."""
    from fmtlab._cli_sweep import check_input_memory
    from fmtlab._inputs import tensor_sources

    np.save(tmp_path / "w.npy", np.zeros((1000, 300), np.float32))
    sources = tensor_sources(tmp_path / "w.npy")
    check_input_memory(sources, 10, 2, available=1 << 20, scaled=[])            # 300 values a piece: fits
    check_input_memory(sources, 10, 2, available=1 << 20, scaled=[fl.format("nvfp4")])
    with pytest.raises(ValueError, match=r"^--chunk 10 needs about 4.1 MiB \(2 worker\(s\) evaluating pieces of "
                                         r"up to 38,400 values at about 56 bytes per value\)"):
        check_input_memory(sources, 10, 2, available=1 << 20, scaled=[fl.format("fp8_block128x128")])
    check_input_memory(sources, 10, 2, available=5 << 20, scaled=[fl.format("fp8_block128x128")])


@pytest.mark.parametrize("chunk", [1 << 30, 333])
def test_the_per_tensor_bias_repeats_the_cfloat8_row_at_its_rule_bias_bit_for_bit(chunk):
    """cfloat8_1_4_3:bias=auto is CFloat8 1-4-3 at the amax rule bias, measured by the same
    statistics: every metric the same, bit for bit (NaN and Inf inputs included); only the
    storage differs (8 + 6/n bits)."""
    from fmtlab.metrics import METRIC_NAMES

    result = sweep(TENSORS, ["cfloat8_1_4_3", "cfloat8_1_4_3:bias=auto"], "auto", ROUNDINGS, seed=SEED, jobs=1,
                   chunk=chunk)
    at_rule = {(r.tensor, r.rounding): r for r in result if r.format == "cfloat8_1_4_3" and r.is_rule_bias}
    per_tensor = {(r.tensor, r.rounding): r for r in result if r.format == "cfloat8_1_4_3:bias=auto"}
    assert at_rule.keys() == per_tensor.keys() and len(at_rule) == 2 * len(TENSORS)
    for key, record in per_tensor.items():
        assert [repr(getattr(record, name)) for name in METRIC_NAMES] == \
            [repr(getattr(at_rule[key], name)) for name in METRIC_NAMES], key
        assert record.bits_per_value == 8 + 6 / record.n


@pytest.mark.parametrize("spec", ["fp8_tensor", "nvfp4", "fp8_block128x128", "mxfp8_e4m3"])
def test_a_piece_does_not_depend_on_the_thread_count(spec):
    """The C core's threaded paths (one tensor-wide block shared by every thread, or block rows
    per thread) give a piece the whole tensor's values at 1, 2 and 4 threads."""
    x = np.random.default_rng(0).standard_normal((512, 1024)).astype(np.float32)
    x[300, 5] = 40.0                                  # the tensor's amax lies outside the piece
    fmt = fl.format(spec)
    request = _c.rounding_request("stochastic", True, 5, None, "truncate")
    whole = fl.decode(fl.encode(x, fmt, "stochastic", seed=5)).reshape(-1)[128 * 1024:384 * 1024]
    previous = fl.get_threads()
    try:
        for threads in (1, 2, 4):
            fl.set_threads(threads)
            piece = fl.decode(encode_piece(np.ascontiguousarray(x[128:384]), fmt, request, 128 * 1024, 40.0, 40.0))
            assert np.array_equal(piece.reshape(-1).view(np.uint64), whole.view(np.uint64)), threads
    finally:
        fl.set_threads(previous)
