"""The bias axis in one pass (docs/sweep.md, "The bias axis in one pass"; csrc/bias_axis.c): the
statistics of all biases of a piece from one fl_sweep_evaluate_biases call equal, exactly (every
count, maximum and exact sum, as ints), one fused fl_sweep_evaluate call per bias, in every
rounding mode (stochastic with its seeds, index offsets, sr_bits and sr_rule variants, and
saturation modes).  The per-bias fused kernel is itself checked against quantize-then-exact-
rational-sums in tests/test_sweep_fused.py; here it is the reference (the brute-force path), never
the shared binade statistics under test, and one test also compares with the rational reference
directly."""
import importlib
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import fmtlab as fl
from fmtlab import _c
from fmtlab._bias_axis import bias_axis_statistics
from fmtlab.formats import Format
from fmtlab.metrics import exact_signal, merge_statistics
from fmtlab.sweep import PieceInput, fused_statistics, fused_statistics_biases
from test_sweep_fused import assert_matches_reference, reference_statistics

fmtlab_sweep = importlib.import_module("fmtlab.sweep")  # the module (fmtlab.sweep is also the function)

EDGE_VALUES = [0.0, -0.0, math.nan, -math.nan, math.inf, -math.inf, 1e-45, -1e-45, 2.0 ** -126, 3.4e38, 448.0,
               480.0, 57344.0, 2.0 ** -70, 2.0 ** 70, 1.0625, -1.0, 1.875, 1.9375, 0.75, -0.375]


def values_strategy(max_size=300, low=-80, high=80):
    """Log-uniform magnitudes over 2^low .. 2^high (straddling the subnormal band, the underflow and
    the overflow of many biases), both signs; exact grid values (ties, binade edges); NaN/Inf,
    zeros and edge values; also all-zero and empty lists."""
    log_uniform = st.builds(lambda sign, log2: sign * 2.0 ** log2, st.sampled_from([-1.0, 1.0]),
                            st.floats(low, high, allow_nan=False))
    exact_grid = st.builds(lambda m, e: math.ldexp(m, e), st.integers(-255, 255), st.integers(low, high))
    general = st.lists(st.one_of(log_uniform, log_uniform, exact_grid, st.sampled_from(EDGE_VALUES),
                                 st.floats(width=32)), max_size=max_size)
    zeros = st.integers(0, 40).map(lambda n: [0.0] * n)
    return st.one_of(general, general, general, zeros)


@st.composite
def configurable_formats(draw):
    """cfloat8_1_4_3, cfloat8_1_5_2 (both subnormal readings) or a random custom format."""
    choice = draw(st.sampled_from(["cfloat8_1_4_3", "cfloat8_1_5_2", "cfloat8_1_4_3:subnormals=tesla",
                                   "cfloat8_1_5_2:subnormals=tesla", "custom", "custom"]))
    if choice != "custom":
        return fl.format(choice)
    try:
        return Format(exp_bits=draw(st.integers(1, 7)), man_bits=draw(st.integers(0, 7)), bias=7,
                      signed=draw(st.booleans()),
                      specials=draw(st.sampled_from(["ieee", "fn", "fnuz", "finite", "p3109"])),
                      subnormals=draw(st.sampled_from(["ieee", "tesla", "none", "normal"])))
    except ValueError:
        assume(False)


@st.composite
def requests(draw):
    """Any rounding mode; stochastic with exact probability or sr_bits 1..32 and any sr_rule; any
    seed; saturation off or on."""
    rounding = draw(st.sampled_from(fl.ROUNDINGS + ("stochastic", "stochastic")))
    sr_bits, sr_rule = None, "truncate"
    if rounding == "stochastic":
        sr_bits = draw(st.one_of(st.none(), st.integers(1, 32), st.sampled_from([1, 2, 3, 8])))
        if sr_bits is not None:
            sr_rule = draw(st.sampled_from(_c.SR_RULES))
    saturate = draw(st.sampled_from([None, None, True]))
    return _c.rounding_request(rounding, saturate, draw(st.integers(0, 2 ** 64 - 1)), sr_bits, sr_rule)


def _array(values, wide):
    with np.errstate(over="ignore"):
        x = np.array(values, np.float32)
    if wide:  # float64 input, not float32-exact
        x = x.astype(np.float64) * (1 + 2.0 ** -40)
    return x


def _valid_biases(fmt, biases):
    """The formats of ``biases`` that exist (a custom format's range must stay exact in float64)."""
    formats = []
    for bias in biases:
        try:
            formats.append(fmt.replace(bias=bias))
        except ValueError:
            pass
    return formats


def _source(x, fmt):
    return x if fmt.decode_dtype == x.dtype else x.astype(np.float64)


def per_bias(x, formats, request, offset):
    """The brute-force path: one fused C pass per bias."""
    results = []
    for fmt in formats:
        source = _source(x, fmt)
        stats = _c.ffi.new("fl_sweep_stats *")
        function, value_type = _c.float_entry("sweep_evaluate", source.dtype)
        _c.check_status(function(_c.pointer(source, value_type), source.size, _c.c_format(fmt),
                                 _c.c_rounding(request), offset, float(fmt.max), float(fmt.min_normal), stats), "test")
        results.append(_c.sweep_statistics(stats, exact_signal(source)))
    return results


def one_pass(x, formats, request, offset):
    """The bias axis: one call per source dtype (formats whose values are float32 read float32 x)."""
    results = [None] * len(formats)
    groups = {}
    for index, fmt in enumerate(formats):
        groups.setdefault(_source(x, fmt).dtype, []).append(index)
    for indices in groups.values():
        source = _source(x, formats[indices[0]])
        shared = bias_axis_statistics(source, [formats[i] for i in indices], request, offset, exact_signal(source))
        for index, statistics in zip(indices, shared):
            results[index] = statistics
    return results


def assert_same(got, expected, formats):
    assert len(got) == len(expected)
    for fmt, a, b in zip(formats, got, expected):
        assert a == b, (fmt, {key: (a[key], b[key]) for key in a if a[key] != b[key]})


@settings(max_examples=250, deadline=None)
@given(values=values_strategy(), fmt=configurable_formats(), request=requests(), offset=st.integers(0, 2 ** 62),
       wide=st.booleans())
def test_one_pass_equals_one_fused_pass_per_bias_at_every_bias(values, fmt, request, offset, wide):
    x = _array(values, wide)
    formats = _valid_biases(fmt, range(64))
    assert_same(one_pass(x, formats, request, offset), per_bias(x, formats, request, offset), formats)


@settings(max_examples=60, deadline=None)
@given(values=values_strategy(max_size=150, low=-1000, high=1000), request=requests(),
       offset=st.integers(0, 2 ** 40), exp_bits=st.integers(8, 10), man_bits=st.integers(0, 12),
       subnormals=st.sampled_from(["ieee", "tesla", "none"]), specials=st.sampled_from(["ieee", "finite"]))
def test_float64_inputs_over_the_whole_float64_range(values, request, offset, exp_bits, man_bits, subnormals,
                                                     specials):
    """Wide custom formats (values beyond float32: the float64 path) and float64 inputs from
    2^-1000 to 2^1000, every bias that gives a valid format."""
    x = np.array([v for v in values if not (isinstance(v, float) and abs(v) > 1.7e308)], np.float64)
    try:
        fmt = Format(exp_bits=exp_bits, man_bits=man_bits, bias=7, signed=True, specials=specials,
                     subnormals=subnormals)
    except ValueError:
        assume(False)
    formats = _valid_biases(fmt, range(0, 64, 3))
    assume(formats)
    assert_same(one_pass(x, formats, request, offset), per_bias(x, formats, request, offset), formats)


@settings(max_examples=40, deadline=None)
@given(values=values_strategy(max_size=120), fmt=configurable_formats(), request=requests(),
       biases=st.lists(st.integers(0, 63), min_size=1, max_size=8), offset=st.integers(0, 2 ** 40))
def test_any_subset_and_order_of_biases(values, fmt, request, biases, offset):
    """Repeated, unordered, sparse biases: the shared binades are reused across any of them."""
    x = _array(values, False)
    formats = _valid_biases(fmt, biases)
    assert_same(one_pass(x, formats, request, offset), per_bias(x, formats, request, offset), formats)


@settings(max_examples=25, deadline=None)
@given(values=values_strategy(max_size=80), name=st.sampled_from(["cfloat8_1_4_3", "cfloat8_1_5_2"]),
       request=requests(), offset=st.integers(0, 2 ** 40))
def test_one_pass_equals_quantize_then_exact_rational_sums(values, name, request, offset):
    """The brute-force path of docs/sweep.md itself: fl.quantize at each bias, then every statistic
    from fractions.Fraction values (tests/test_sweep_fused.py's reference)."""
    x = _array(values, False)
    formats = [fl.format(name, bias=bias) for bias in range(0, 64, 5)]
    for fmt, statistics in zip(formats, one_pass(x, formats, request, offset)):
        q = fl.quantize(x, fmt, request.mode, saturate=request.saturate, seed=request.seed, sr_bits=request.sr_bits,
                        sr_rule=request.sr_rule, index_offset=offset).astype(np.float64)
        assert_matches_reference(statistics, reference_statistics(x.astype(np.float64), q, fmt))


@pytest.mark.parametrize("rounding", ["nearest_even", "odd", "nearest_away", "stochastic"])
def test_formats_without_mantissa_bits_read_the_exponent_parity(rounding):
    """man_bits = 0: 6 = 1.5 * 4 is a tie between 4 and 8 whose even code depends on the bias (the
    code's last bit is the exponent's), so in nearest_even and odd no binade is shared (Hypothesis
    found this; the mutation back to sharing fails here)."""
    fmt = Format(exp_bits=3, man_bits=0, bias=7, signed=False, specials="fn", subnormals="ieee")
    x = np.array([6.0, 3.0, 12.0, 24.0, 5.0, 7.0], np.float32)
    formats = [fmt.replace(bias=bias) for bias in (0, 1, 2, 3)]
    request = _c.rounding_request(rounding, seed=4)
    assert_same(one_pass(x, formats, request, 0), per_bias(x, formats, request, 0), formats)


@pytest.mark.parametrize("values", [[], [0.0] * 17, [-0.0, 0.0], [math.nan] * 3, [math.inf, -math.inf, math.nan]])
@pytest.mark.parametrize("rounding", ["nearest_even", "stochastic", "up", "odd"])
def test_empty_all_zero_and_all_special_pieces(values, rounding):
    x = np.array(values, np.float32)
    request = _c.rounding_request(rounding, seed=5)
    for name in ("cfloat8_1_4_3", "cfloat8_1_5_2", "e8m0", "p3109_8p3_unsigned"):
        fmt = fl.format(name)
        formats = _valid_biases(fmt, range(0, 64, 7)) if name.startswith("cfloat8") else [fmt]
        assert_same(one_pass(x, formats, request, 3), per_bias(x, formats, request, 3), formats)


def _log_uniform(count, low, high, seed):
    rng = np.random.default_rng(seed)
    x = (np.exp2(rng.uniform(low, high, count)) * rng.choice([-1.0, 1.0], count)).astype(np.float32)
    x[::997] = np.nan
    x[::1009] = 0.0
    x[::4099] = np.inf
    return x


def test_a_long_log_uniform_piece_at_every_bias_in_every_mode():
    """2^16 values over 2^-70 .. 2^70: many fast blocks per binade, every bias 0..63, every mode
    (stochastic exact and with sr_bits)."""
    x = _log_uniform(1 << 16, -70, 70, 14)
    for name in ("cfloat8_1_4_3", "cfloat8_1_5_2"):
        formats = [fl.format(name, bias=bias) for bias in range(64)]
        for rounding in fl.ROUNDINGS:
            request = _c.rounding_request(rounding, seed=99)
            assert_same(one_pass(x, formats, request, 12345), per_bias(x, formats, request, 12345), formats)
    request = _c.rounding_request("stochastic", seed=7, sr_bits=3, sr_rule="nearest_even")
    formats = [fl.format("cfloat8_1_4_3", bias=bias) for bias in range(64)]
    assert_same(one_pass(x, formats, request, 0), per_bias(x, formats, request, 0), formats)


def test_a_piece_of_more_than_one_internal_chunk():
    """2^20 + 77 elements: the C core cuts the work into chunks of 2^20 (csrc/bias_axis.c, CHUNK)."""
    x = _log_uniform((1 << 20) + 77, -40, 40, 3)
    formats = [fl.format("cfloat8_1_4_3", bias=bias) for bias in range(0, 64, 9)]
    for rounding in ("nearest_even", "stochastic"):
        request = _c.rounding_request(rounding, seed=1)
        assert_same(one_pass(x, formats, request, 2 ** 33), per_bias(x, formats, request, 2 ** 33), formats)


@pytest.mark.parametrize("rounding", ["nearest_even", "stochastic", "down"])
def test_pieces_merge_to_the_whole(rounding):
    """Cut anywhere (chunk sizes 1, 7, 4096, whole), the pieces' statistics (each at its global index
    offset) merge to those of the whole tensor, exactly."""
    x = _log_uniform(9000, -30, 30, 8)
    formats = [fl.format("cfloat8_1_5_2", bias=bias) for bias in range(0, 64, 4)]
    request = _c.rounding_request(rounding, seed=2)
    whole = one_pass(x, formats, request, 0)
    for chunk in (1, 7, 4096):
        if chunk == 1:
            starts = list(range(0, 40)) + [40]  # single elements, then the rest at once
        else:
            starts = list(range(0, x.size, chunk))
        bounds = list(zip(starts, starts[1:] + [x.size]))
        merged = None
        for start, stop in bounds:
            part = one_pass(x[start:stop], formats, request, start)
            merged = part if merged is None else [merge_statistics(a, b) for a, b in zip(merged, part)]
        assert merged == whole, chunk


def test_the_sweep_helper_groups_by_source_dtype_and_takes_sr_variants():
    """fused_statistics_biases: biases whose values leave float32 read the float64 copy, and any
    stochastic variant; equal to fused_statistics per bias."""
    x = _log_uniform(3000, -20, 20, 4)
    base = PieceInput(x, 100, 4000)
    fmt = Format(exp_bits=8, man_bits=3, bias=7, signed=True, specials="finite", subnormals="ieee")
    formats = _valid_biases(fmt, range(110, 150))  # max = 1.875 * 2^(254 - bias): float32 from bias 127
    assert {f.decode_dtype for f in formats} == {np.dtype(np.float32), np.dtype(np.float64)}
    for options in ({}, {"sr_bits": 4, "sr_rule": "nearest_odd"}):
        expected = [fused_statistics(base, f, "stochastic", 3, **options) for f in formats]
        assert fused_statistics_biases(base, formats, "stochastic", 3, **options) == expected


def test_arguments_are_checked():
    x = np.ones(4, np.float32)
    request = _c.rounding_request("nearest_even")
    with pytest.raises(ValueError, match="formats that differ in their bias only"):
        bias_axis_statistics(x, [fl.format("cfloat8_1_4_3"), fl.format("cfloat8_1_5_2")], request, 0, 0)
    with pytest.raises(TypeError, match="element formats"):
        bias_axis_statistics(x, [fl.format("int8")], request, 0, 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        bias_axis_statistics(np.ones(4, np.int32), [fl.format("cfloat8_1_4_3")], request, 0, 0)
    assert bias_axis_statistics(x, [], request, 0, 0) == []
    lib, null = _c.lib, _c.ffi.NULL
    formats = _c.ffi.new("fl_format[]", 2)
    formats[0] = _c.c_format(fl.format("cfloat8_1_4_3"))[0]
    formats[1] = _c.c_format(fl.format("cfloat8_1_5_2"))[0]
    doubles = _c.ffi.new("double[]", [1.0, 1.0])
    stats = _c.ffi.new("fl_sweep_stats[]", 2)
    rounding = _c.c_rounding(request)
    pointer = _c.pointer(x, "float")
    assert lib.fl_sweep_evaluate_biases_f32(pointer, 4, formats, 2, rounding, 0, doubles, doubles, stats) == \
        lib.FL_ERROR_ARGUMENT
    assert lib.fl_sweep_evaluate_biases_f32(pointer, -1, formats, 1, rounding, 0, doubles, doubles, stats) == \
        lib.FL_ERROR_ARGUMENT
    assert lib.fl_sweep_evaluate_biases_f32(pointer, 4, formats, 1, null, 0, doubles, doubles, stats) == \
        lib.FL_ERROR_ROUNDING_MODE
    assert lib.fl_sweep_evaluate_biases_f64(null, 4, formats, 1, rounding, 0, doubles, doubles, stats) == \
        lib.FL_ERROR_ARGUMENT
    bad = _c.ffi.new("fl_format[]", 1)
    assert lib.fl_sweep_evaluate_biases_f32(pointer, 4, bad, 1, rounding, 0, doubles, doubles, stats) == \
        lib.FL_ERROR_FORMAT
    assert lib.fl_sweep_evaluate_biases_f32(pointer, 4, formats, 1, rounding, 0, doubles, doubles, stats) == lib.FL_OK
    assert stats[0].n == 4 and stats[0].valid == 4


def _per_bias_helper(base, formats, rounding, seed, **options):
    return [fused_statistics(base, fmt, rounding, seed, **options) for fmt in formats]


@pytest.mark.parametrize("chunk", [None, 1000])
def test_sweep_records_are_those_of_the_per_bias_path(monkeypatch, chunk):
    """The default sweep's formats, every bias 0..63, nearest-even, stochastic and a directed mode:
    the records (every column) are those of one fused_statistics call per bias."""
    rng = np.random.default_rng(3)
    tensors = {"normal": rng.standard_normal(4096).astype(np.float32),
               "lognormal": np.exp(rng.standard_normal(4096)).astype(np.float32)}
    tensors["normal"][7] = np.nan
    options = dict(formats=["fp32", "fp16", "bf16", "cfloat8_1_4_3", "cfloat8_1_5_2"], biases="all",
                   roundings=("nearest_even", "stochastic", "up"), seed=0, jobs=1)
    if chunk is not None:
        options["chunk"] = chunk
    one_pass_records = fmtlab_sweep.sweep(tensors, **options)
    monkeypatch.setattr(fmtlab_sweep, "fused_statistics_biases", _per_bias_helper)
    per_bias_records = fmtlab_sweep.sweep(tensors, **options)
    assert len(one_pass_records) == len(per_bias_records) == 2 * 3 * (3 + 2 * 64)
    assert [repr(record) for record in one_pass_records] == [repr(record) for record in per_bias_records]


def simd_digest() -> str:
    """A digest of the bias-axis statistics of a log-uniform piece in several modes (run under each
    FMTLAB_SIMD level by the test below: the one-binade sums and the stochastic lanes have a copy
    per level)."""
    import hashlib

    x = _log_uniform(5000, -40, 40, 21)
    digest = hashlib.sha256()
    formats = [fl.format("cfloat8_1_4_3", bias=bias) for bias in range(0, 64, 3)]
    for rounding, sr_bits, sr_rule in (("nearest_even", None, "truncate"), ("stochastic", None, "truncate"),
                                       ("stochastic", 5, "nearest_away"), ("toward_zero", None, "truncate")):
        request = _c.rounding_request(rounding, seed=11, sr_bits=sr_bits, sr_rule=sr_rule)
        digest.update(repr(one_pass(x, formats, request, 77)).encode())
    return digest.hexdigest()


@pytest.mark.parametrize("simd", ["portable", "avx2"])
def test_every_simd_level_gives_the_same_statistics(simd):
    import os
    import subprocess
    import sys

    tests = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(tests)
    environment = dict(os.environ, FMTLAB_SIMD=simd,
                       PYTHONPATH=os.pathsep.join([root, tests, os.environ.get("PYTHONPATH", "")]))
    program = "import test_sweep_bias_axis as t; print(t.simd_digest())"
    other = subprocess.run([sys.executable, "-c", program], cwd=tests, env=environment, capture_output=True,
                           text=True, check=True).stdout.strip()
    assert other == simd_digest()
