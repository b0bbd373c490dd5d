"""The bias axis in one pass (docs/sweep.md, "The bias axis in one pass"): the statistics of all
biases of a piece from fmtlab.sweep.fused_statistics_biases equal, exactly (every count, maximum
and exact sum), one fused_statistics call per bias.  fused_statistics itself is checked against
quantize-then-exact-rational-sums in tests/test_sweep_fused.py; here the reference is that
per-bias call, never the shared binade statistics under test."""
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import fmtlab as fl
import importlib
from fmtlab._bias_axis import DETERMINISTIC_ROUNDINGS, binade_keys, interior_binades
from fmtlab.formats import Format
from fmtlab.sweep import PieceInput, fused_statistics, fused_statistics_biases

fmtlab_sweep = importlib.import_module("fmtlab.sweep")  # the module (fmtlab.sweep is also the function)

EDGE_VALUES = [0.0, -0.0, math.nan, math.inf, -math.inf, 1e-45, -1e-45, 2.0 ** -126, 3.4e38, 448.0, 480.0, 57344.0,
               2.0 ** -70, 2.0 ** 70, 1.0625, -1.0]


def values_strategy(max_size=300):
    """Log-uniform magnitudes over 2^-70 .. 2^70 (straddling the subnormal band and the overflow of
    many biases), both signs, plus NaN/Inf, zeros and edge values; also all-zero and empty lists."""
    log_uniform = st.builds(lambda sign, log2: sign * 2.0 ** log2, st.sampled_from([-1.0, 1.0]),
                            st.floats(-70, 70, allow_nan=False))
    exact_grid = st.builds(lambda m, e: math.ldexp(m, e), st.integers(-255, 255), st.integers(-80, 70))
    general = st.lists(st.one_of(log_uniform, exact_grid, st.sampled_from(EDGE_VALUES), st.floats(width=32)),
                       max_size=max_size)
    zeros = st.integers(0, 40).map(lambda n: [0.0] * n)
    return st.one_of(general, general, general, zeros)


@st.composite
def configurable_formats(draw):
    """cfloat8_1_4_3, cfloat8_1_5_2 (both subnormal readings) or a random custom format."""
    choice = draw(st.sampled_from(["cfloat8_1_4_3", "cfloat8_1_5_2", "cfloat8_1_4_3:subnormals=tesla",
                                   "cfloat8_1_5_2:subnormals=tesla", "custom"]))
    if choice != "custom":
        return fl.format(choice)
    try:
        return Format(exp_bits=draw(st.integers(1, 7)), man_bits=draw(st.integers(0, 7)), bias=7,
                      signed=draw(st.booleans()),
                      specials=draw(st.sampled_from(["ieee", "fn", "fnuz", "finite", "p3109"])),
                      subnormals=draw(st.sampled_from(["ieee", "tesla", "none", "normal"])))
    except ValueError:
        assume(False)


def _array(values, wide):
    with np.errstate(over="ignore"):
        x = np.array(values, np.float32)
    if wide:  # float64 input, not float32-exact
        x = x.astype(np.float64) * (1 + 2.0 ** -40)
    return x


@settings(max_examples=120, deadline=None)
@given(values=values_strategy(), fmt=configurable_formats(), rounding=st.sampled_from(DETERMINISTIC_ROUNDINGS),
       offset=st.integers(0, 2 ** 40), wide=st.booleans())
def test_one_pass_equals_one_call_per_bias_for_every_bias(values, fmt, rounding, offset, wide):
    x = _array(values, wide)
    base = PieceInput(x, offset, offset + x.size)
    formats = [fmt.replace(bias=bias) for bias in range(64)]
    expected = [fused_statistics(base, biased, rounding, 0) for biased in formats]
    assert fused_statistics_biases(base, formats, rounding, 0) == expected


@settings(max_examples=40, deadline=None)
@given(values=values_strategy(), fmt=configurable_formats(), rounding=st.sampled_from(DETERMINISTIC_ROUNDINGS),
       biases=st.lists(st.integers(0, 63), min_size=1, max_size=8))
def test_any_subset_and_order_of_biases(values, fmt, rounding, biases):
    """Repeated, unordered, sparse biases: the shared binades are reused across any of them."""
    base = PieceInput(_array(values, False), 0, len(values))
    formats = [fmt.replace(bias=bias) for bias in biases]
    assert fused_statistics_biases(base, formats, rounding, 0) == [fused_statistics(base, f, rounding, 0)
                                                                  for f in formats]


def test_a_long_log_uniform_piece_at_every_bias():
    """2^16 values over 2^-70 .. 2^70: many fast blocks per binade, every bias 0..63."""
    rng = np.random.default_rng(14)
    x = (np.exp2(rng.uniform(-70, 70, 1 << 16)) * rng.choice([-1.0, 1.0], 1 << 16)).astype(np.float32)
    x[::997] = np.nan
    x[::1009] = 0.0
    base = PieceInput(x, 0, x.size)
    for name in ("cfloat8_1_4_3", "cfloat8_1_5_2"):
        formats = [fl.format(name, bias=bias) for bias in range(64)]
        for rounding in DETERMINISTIC_ROUNDINGS:
            assert fused_statistics_biases(base, formats, rounding, 0) == [fused_statistics(base, f, rounding, 0)
                                                                          for f in formats], (name, rounding)


def test_binade_keys_and_interior_window():
    """Keys: floor(log2|x|) exactly (powers of two and their neighbours), zeros below every binade,
    NaN/Inf (and an unsigned format's negatives) above; the window of cfloat8_1_4_3 at bias 7:
    min_normal 2^-6, max 480 = 1.875 * 2^8, so binades -5 .. 7 are interior."""
    x = np.array([1.0, np.nextafter(1.0, 0), 2.0 ** -149, 0.0, -0.0, np.nan, np.inf, -3.0, 2.0 ** 127])
    assert binade_keys(x, True).tolist() == [0, -1, -149, -30000, -30000, 30000, 30000, 1, 127]
    assert binade_keys(x, False).tolist()[7] == 30000
    assert interior_binades(fl.format("cfloat8_1_4_3", bias=7)) == (-5, 7)


def test_stochastic_rounding_is_refused():
    base = PieceInput(np.ones(4, np.float32), 0, 4)
    with pytest.raises(ValueError, match=r"rounding='stochastic' is not allowed: one of nearest_even"):
        fused_statistics_biases(base, [fl.format("cfloat8_1_4_3")], "stochastic", 0)


def _per_bias(base, formats, rounding, seed):
    return [fused_statistics(base, fmt, rounding, seed) for fmt in formats]


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
    one_pass = fmtlab_sweep.sweep(tensors, **options)
    monkeypatch.setattr(fmtlab_sweep, "fused_statistics_biases", _per_bias)
    per_bias = fmtlab_sweep.sweep(tensors, **options)
    assert len(one_pass) == len(per_bias) == 2 * 3 * (3 + 2 * 64)
    assert [repr(record) for record in one_pass] == [repr(record) for record in per_bias]
