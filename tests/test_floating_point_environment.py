"""fmtlab's results do not depend on the caller's floating-point environment.

torch.set_flush_denormal(True) turns on flush-to-zero and denormals-are-zero for the calling
thread; numpy's own arithmetic then flushes subnormals (asserted below, so these tests can fail),
while fmtlab's codec and matmul must give the same bits as in the default environment.
"""
import numpy as np
import pytest

import fmtlab as fl

torch = pytest.importorskip("torch")


def _subnormal_heavy_float32():
    rng = np.random.default_rng(7)
    tiny = (rng.standard_normal(4096) * np.exp2(rng.integers(-149, -120, 4096))).astype(np.float32)
    ordinary = rng.standard_normal(4096).astype(np.float32)
    return np.concatenate([tiny, ordinary, np.float32([1e-45, -1e-45, 1.2e-38, -1.1e-38])])


class _FlushingDenormals:
    """Turns flush-to-zero / denormals-are-zero on for this thread inside a with block."""

    def __enter__(self):
        fl.set_threads(1)  # the setting is per thread: keep the work on this one
        assert torch.set_flush_denormal(True)
        return self

    def __exit__(self, *exc):
        torch.set_flush_denormal(False)
        fl.set_threads(None)


@pytest.mark.parametrize("fmt", [fl.BF16, fl.FP16, fl.E4M3FN, fl.format("cfloat8_1_4_3", bias=40),
                                 fl.format("shp", bias=60, subnormals="tesla"), fl.TF32])
@pytest.mark.parametrize("rounding", ["nearest_even", "toward_zero", "up", "stochastic"])
def test_codec_ignores_flush_to_zero(fmt, rounding):
    x = _subnormal_heavy_float32()
    x64 = x.astype(np.float64)  # numpy's own conversion would flush inside the block below
    # references first, in the default environment
    assert np.float32(1e-40) * np.float32(1.0) != 0.0
    codes = fl.encode(x, fmt, rounding, seed=3)
    codes64 = fl.encode(x64, fmt, rounding, seed=3)
    values = fl.quantize(x, fmt, rounding, seed=3)
    decoded = fl.decode(codes, fmt)
    unsigned = decoded.dtype.str.replace("f", "u")
    with _FlushingDenormals():
        # the environment really flushes: numpy's multiply now loses float32 subnormals
        assert np.float32(1e-40) * np.float32(1.0) == 0.0
        flushed = (fl.encode(x, fmt, rounding, seed=3), fl.encode(x64, fmt, rounding, seed=3),
                   fl.quantize(x, fmt, rounding, seed=3), fl.decode(codes, fmt))
    np.testing.assert_array_equal(flushed[0], codes)
    np.testing.assert_array_equal(flushed[1], codes64)
    np.testing.assert_array_equal(flushed[2].view(np.uint32), values.view(np.uint32))
    np.testing.assert_array_equal(flushed[3].view(unsigned), decoded.view(unsigned))


def test_environment_is_restored_after_a_call():
    with _FlushingDenormals():
        fl.quantize(_subnormal_heavy_float32(), fl.BF16)
        assert np.float32(1e-40) * np.float32(1.0) == 0.0  # still the caller's (flushing) setting
