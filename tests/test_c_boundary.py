"""The one crossing into C (fmtlab/_c.py): enums from the header, struct conversion, status codes,
the one generator, and the byte order of what is handed over."""
import re
import pathlib

import numpy as np
import pytest

import fmtlab as fl
from fmtlab import _c

HEADER = (pathlib.Path(__file__).resolve().parents[1] / "csrc" / "fmtlab.h").read_text()
MASK = (1 << 64) - 1


def header_enum(name):
    """{constant: value} of one enum of csrc/fmtlab.h, read with a regex (not through cffi)."""
    body = re.search(r"enum " + name + r"\s*\{(.*?)\};", HEADER, re.S).group(1)
    return {constant: int(value) for constant, value in re.findall(r"(FL_\w+)\s*=\s*(-?\d+)", body)}


def test_rounding_codes_are_the_headers_enum_by_name():
    enum = header_enum("fl_rounding_mode")
    assert {f"FL_ROUND_{name.upper()}": code for name, code in _c.ROUNDING_CODES.items()} == enum
    assert tuple(_c.ROUNDING_CODES) == fl.ROUNDINGS


def test_policy_codes_are_the_headers_enums_by_name():
    assert {f"FL_SPECIALS_{k.upper()}": v for k, v in _c.SPECIALS_CODES.items()} == header_enum("fl_specials_policy")
    assert {f"FL_SUBNORMALS_{k.upper()}": v for k, v in _c.SUBNORMALS_CODES.items()} == \
        header_enum("fl_subnormals_policy")


def test_every_status_code_is_documented_and_distinct():
    status = header_enum("fl_status")
    assert status["FL_OK"] == 0 and len(set(status.values())) == len(status)
    assert all(value < 0 for name, value in status.items() if name != "FL_OK")


def test_out_of_memory_is_a_memory_error_and_other_codes_name_themselves():
    _c.check_status(_c.lib.FL_OK, "encode")
    with pytest.raises(MemoryError, match="matmul"):
        _c.check_status(_c.lib.FL_ERROR_OUT_OF_MEMORY, "matmul")
    for name, value in header_enum("fl_status").items():
        if name in ("FL_OK", "FL_ERROR_OUT_OF_MEMORY"):
            continue
        with pytest.raises(RuntimeError, match=name):
            _c.check_status(value, "encode")


def test_the_c_core_returns_the_documented_codes():
    x = np.ones(4, np.float32)
    codes = np.empty(4, np.uint8)
    request = _c.c_rounding(_c.rounding_request("nearest_even"))
    bad_format = _c.ffi.new("fl_format *")
    bad_format.exp_bits = 0
    encode = _c.lib.fl_encode_f32
    args = (_c.pointer(x, "float"), 4)
    assert encode(*args, bad_format, request, _c.pointer(codes, "void"), 1, 0, _c.ffi.NULL) == \
        _c.lib.FL_ERROR_FORMAT
    fmt = _c.c_format(fl.E4M3FN)
    bad_mode = _c.ffi.new("fl_rounding *")
    bad_mode.mode = 7
    assert encode(*args, fmt, bad_mode, _c.pointer(codes, "void"), 1, 0, _c.ffi.NULL) == _c.lib.FL_ERROR_ROUNDING_MODE
    bad_bits = _c.ffi.new("fl_rounding *")
    bad_bits.sr_bits = 33
    assert encode(*args, fmt, bad_bits, _c.pointer(codes, "void"), 1, 0, _c.ffi.NULL) == _c.lib.FL_ERROR_SR_BITS
    assert encode(*args, fmt, request, _c.pointer(codes, "void"), 3, 0, _c.ffi.NULL) == _c.lib.FL_ERROR_CODE_BYTES
    model = _c.c_mma_model(fl.mma_model("h100", "fp16"))
    model.block = -1
    d = np.empty((1, 1), np.float32)
    offsets = np.zeros(1, np.int64)
    status = _c.lib.fl_mma_matmul_f32(_c.pointer(x, "float"), _c.pointer(x, "float"), _c.ffi.NULL,
                                      _c.pointer(d, "float"), 1, 1, 1, 4, _c.pointer(offsets, "int64_t"),
                                      _c.pointer(offsets, "int64_t"), _c.pointer(offsets, "int64_t"), model)
    assert status == _c.lib.FL_ERROR_MMA_MODEL


def test_format_struct_fields():
    struct = _c.c_format(fl.format("uhp"))
    assert (struct.exp_bits, struct.man_bits, struct.bias, struct.is_signed) == (6, 10, 31, 0)
    assert struct.subnormals == _c.lib.FL_SUBNORMALS_NONE and struct.specials == _c.lib.FL_SPECIALS_IEEE


def test_rounding_requests_are_checked_once_for_every_caller():
    assert _c.rounding_request("up", True, 5, 8) == _c.RoundingRequest("up", True, 5, 8)
    assert _c.rounding_request("nearest_even").seed == 0
    assert _c.rounding_request("stochastic", seed=-1).seed == MASK
    drawn = {_c.rounding_request("stochastic").seed for _ in range(4)}
    assert len(drawn) == 4  # a fresh seed per call
    assert _c.rounding_request("stochastic", draw_seed=False).seed == 0
    with pytest.raises(ValueError, match="did you mean 'stochastic'"):
        _c.rounding_request("stochastc")
    with pytest.raises(ValueError, match="sr_bits"):
        _c.rounding_request("stochastic", sr_bits=0)
    with pytest.raises(TypeError, match="seed"):
        _c.rounding_request("stochastic", seed=1.5)
    with pytest.raises(TypeError, match="saturate"):
        _c.rounding_request("up", saturate="yes")


# ---- the one generator ---------------------------------------------------------------------------
def splitmix64_finaliser(z):
    """SplitMix64's finaliser written out from its published definition (Steele, Lea & Flood 2014)."""
    z &= MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def test_exported_generator_is_splitmix64():
    rng = np.random.default_rng(1)
    for z in [0, 1, MASK, 1 << 63] + [int(v) for v in rng.integers(0, 1 << 63, 20)]:
        assert _c.mix64(z) == splitmix64_finaliser(z)
    for seed, index, draw in [(0, 0, 0), (7, 12345, 0), (MASK, MASK, 3), (2**40 + 1, 99, 1)]:
        key = splitmix64_finaliser(splitmix64_finaliser(seed) + draw * 0xD1B54A32D192ED03)
        expected = splitmix64_finaliser(key + index * 0x9E3779B97F4A7C15)
        assert int(_c.lib.fl_random_word(seed, index, draw)) == expected


def test_torch_generator_is_the_c_generator():
    torch = pytest.importorskip("torch")
    from fmtlab import _torch_codec
    index = torch.tensor([0, 1, 2, 1000, 2**40, 2**62], dtype=torch.int64)
    for seed in (0, 3, MASK):
        for draw in (0, 1, 5):
            words = [value & MASK for value in _torch_codec.random_word(seed, index, draw).tolist()]
            assert words == [int(_c.lib.fl_random_word(seed, i, draw)) for i in index.tolist()]


def test_derive_seed_is_the_documented_folding():
    pytest.importorskip("torch")
    import fmtlab.torch as flt
    golden = 0x9E3779B97F4A7C15
    for seed, keys in [(0, ()), (5, (1,)), (123, (4, 2, 9)), (MASK, (0, 0))]:
        value = splitmix64_finaliser(seed + golden)
        for position, key in enumerate(keys, start=1):
            value = splitmix64_finaliser(value ^ ((key + golden * position) & MASK))
        assert flt.derive_seed(seed, *keys) == value


# ---- what crosses: byte order ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [">f4", ">f8", ">f2"])
def test_big_endian_arrays_give_the_same_results(dtype):
    """The C core reads native floats: a big-endian array must be converted, not read as is."""
    values = np.array([1.0, -2.5, 0.3, 448.0, 1e-3], dtype=np.float64)
    native = values.astype(np.dtype(dtype).newbyteorder("="))
    swapped = values.astype(dtype)
    np.testing.assert_array_equal(fl.encode(swapped, fl.E4M3FN), fl.encode(native, fl.E4M3FN))
    quantized = fl.quantize(swapped, fl.BF16)
    assert quantized.dtype.isnative
    np.testing.assert_array_equal(quantized, fl.quantize(native, fl.BF16))


def test_big_endian_matmul_operands():
    model = fl.mma_model("exact", "fp32")
    a = np.array([[1.0, 2.5]], dtype=">f4")
    b = np.array([[2.0], [4.0]], dtype=">f4")
    assert fl.matmul(a, b, model=model)[0, 0] == 12.0


# ---- the sanitizer build switch (build_native.py, .ci/run) -------------------------------------------
@pytest.mark.parametrize("value, sanitized", [("1", True), ("", False)])
def test_the_sanitizer_switch_adds_the_flags(value, sanitized):
    """FMTLAB_SANITIZE=1 compiles and links with ASan + UBSan (no recovery, no -fwrapv), apart
    from the normal build's work folder; without it the normal flags."""
    import os
    import subprocess
    import sys
    root = pathlib.Path(__file__).resolve().parents[1]
    program = ("import build_native as b; print(b._compile_args); print(b._link_args); "
               "print(b.SANITIZE)")
    environment = dict(os.environ, FMTLAB_SANITIZE=value)
    output = subprocess.run([sys.executable, "-c", program], cwd=root, env=environment, capture_output=True,
                            text=True, check=True).stdout.splitlines()
    compile_args, link_args = eval(output[0]), eval(output[1])  # noqa: S307 - lists printed by our own script
    wanted = ["-fsanitize=address,undefined,float-cast-overflow", "-fno-sanitize-recover=all"]
    assert all(flag in compile_args for flag in wanted) == sanitized
    assert all(flag in link_args for flag in wanted) == sanitized
    assert ("-fno-wrapv" in compile_args) == sanitized
    assert output[2] == str(sanitized)
