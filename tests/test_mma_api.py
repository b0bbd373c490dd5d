"""fl.MMAModel, fl.mma_model, fl.mma_models and fl.matmul: presets, shapes, errors, CLI."""
import subprocess
import sys

import numpy as np
import pytest

import fmtlab as fl
from fmtlab import cli


# ---- presets -------------------------------------------------------------------------------------

def test_every_gpu_and_input_of_the_issue_has_a_preset():
    names = {model.name for model in fl.mma_models()}
    for gpu in ("v100", "t4", "a100", "a2", "a30", "ada", "l40s", "h100", "h200", "b200"):
        assert f"{gpu}-fp16-fp32" in names and f"{gpu}-fp16-fp16" in names
    for gpu in ("a100", "a2", "a30", "ada", "l40s", "h100", "h200", "b200"):
        assert {f"{gpu}-bf16-fp32", f"{gpu}-tf32-fp32"} <= names
    for gpu in ("ada", "l40s", "h100", "h200", "b200"):
        # presets print the format's real name: NVIDIA's "E4M3" is OCP's e4m3fn
        assert {f"{gpu}-e4m3fn-fp32", f"{gpu}-e5m2-fp32", f"{gpu}-e4m3fn-fp16"} <= names
    assert not any("-e4m3-" in name for name in names)
    assert {"fp32_fma", "fp32_pairwise", "exact"} <= names
    assert len(names) == len(fl.mma_models())


def test_preset_parameters_follow_the_measured_table():
    h100 = fl.mma_model("H100", "fp16")
    assert (h100.block, h100.frac_bits, h100.out_rounding, h100.exp_floor) == (16, 25, "toward_zero", -133)
    assert h100.a_format == fl.FP16 and h100.out_format == fl.FP32 and h100.c_format == fl.FP32
    fp8 = fl.mma_model("h100", "e4m3")
    assert (fp8.a_format, fp8.block, fp8.frac_bits, fp8.acc_frac_bits) == (fl.E4M3FN, 32, 13, 13)
    assert fl.mma_model("v100", "fp16", out="fp16").out_rounding == "nearest_even"
    assert fl.mma_model("v100", "fp16", out="fp16").c_format == fl.FP16
    assert fl.mma_model("a100", "tf32").block == 4
    assert fl.mma_model("b200", "e5m2").c_addition == "separate"
    assert fl.mma_model("h100-e4m3fn-fp32") == fp8 and fl.mma_model("h100-e4m3-fp32") == fp8
    assert fl.mma_model("h100", "e4m3fn") == fp8 and fl.mma_model("h100", "e4m3fn").name == "h100-e4m3fn-fp32"
    assert fp8.name == "h100-e4m3fn-fp32" and str(fp8.a_format) == "e4m3fn"
    # the reference models read "e4m3" as NVIDIA does too, and print the real name
    assert fl.mma_model("exact", "e4m3").a_format == fl.E4M3FN
    assert fl.mma_model("exact", "e4m3").name == "exact-e4m3fn-fp32"
    assert fl.mma_model("exact", fl.E4M3).a_format == fl.E4M3  # a Format is taken as it is
    assert fl.mma_model("exact", "fp16").a_format == fl.FP16
    assert fl.mma_model("fp32_fma").block == 1 and fl.mma_model("fp32_fma").frac_bits is None


def test_models_are_frozen_hashable_and_replaceable():
    model = fl.mma_model("h100", "e4m3")
    promoted = model.replace(promote_every=128)
    assert promoted.promote_every == 128 and promoted.name is None and model.promote_every is None
    assert len({model, promoted, fl.mma_model("h200", "e4m3")}) == 2  # the name does not count
    with pytest.raises(Exception):
        model.block = 4


@pytest.mark.parametrize("call, words", [
    (lambda: fl.mma_model("rtx9090", "fp16"), ["gpu='rtx9090'", "h100"]),
    (lambda: fl.mma_model("v100", "bf16"), ["input='bf16'", "v100", "fp16"]),
    (lambda: fl.mma_model("a100", "tf32", out="fp16"), ["out='fp16'", "fp32"]),
    (lambda: fl.mma_model("h100", "fp16", out="fp64"), ["out='fp64'", "fp32 or fp16"]),
    (lambda: fl.mma_model("h100"), ["input is required", "e4m3"]),
    (lambda: fl.mma_model("h100", "int8"), ["input='int8'", "e5m2"]),
    (lambda: fl.MMAModel("fp16", block=0), ["block=0", "1 to"]),
    (lambda: fl.MMAModel("fp16", frac_bits=-1), ["frac_bits=-1"]),
    (lambda: fl.MMAModel("fp16", out_rounding="up"), ["out_rounding='up'", "nearest_even"]),
    (lambda: fl.MMAModel("fp16", out_format="e4m3fn"), ["out_format=e4m3fn", "Inf"]),
    (lambda: fl.MMAModel("fp16", c_addition="later"), ["c_addition='later'", "separate"]),
    (lambda: fl.MMAModel("fp16", block=16, promote_every=24), ["promote_every=24", "multiple"]),
    (lambda: fl.MMAModel("fp16", out_format="fp16", promote_every=8), ["promote_every=8", "fp32"]),
    (lambda: fl.MMAModel("fp16", summation="pairwise"), ["pairwise", "nearest_even"]),
    (lambda: fl.MMAModel(fl.Format(11, 20, 1023)), ["a_format", "float32"]),
    (lambda: fl.MMAModel("fp16", summation="kahan"), ["summation='kahan'"]),
])
def test_bad_parameters_are_clear_value_errors(call, words):
    with pytest.raises(ValueError) as error:
        call()
    for word in words:
        assert word in str(error.value)


def test_bad_parameter_types_are_type_errors():
    with pytest.raises(TypeError, match="block must be an int"):
        fl.MMAModel("fp16", block=4.0)
    with pytest.raises(TypeError, match="a_format must be a Format"):
        fl.MMAModel(16)
    with pytest.raises(TypeError, match="gpu must be a str"):
        fl.mma_model(100, "fp16")


# ---- matmul: shapes and semantics ------------------------------------------------------------------

def _fp16(shape, seed=0):
    rng = np.random.default_rng(seed)
    return fl.quantize(rng.standard_normal(shape).astype(np.float32), fl.FP16)


def test_matmul_shapes_follow_numpy():
    model = fl.mma_model("exact", "fp16")
    for a_shape, b_shape in [((3, 5), (5, 4)), ((5,), (5, 4)), ((3, 5), (5,)), ((5,), (5,)),
                             ((2, 3, 5), (5, 4)), ((3, 5), (2, 5, 4)), ((2, 1, 3, 5), (4, 5, 2)),
                             ((0, 5), (5, 4)), ((3, 0), (0, 4))]:
        a, b = _fp16(a_shape), _fp16(b_shape, 1)
        d = fl.matmul(a, b, model=model)
        expected = np.matmul(a.astype(np.float64), b.astype(np.float64))
        assert d.shape == expected.shape and d.dtype == np.float32
        # "exact" is the correctly rounded result: float64 is exact for these small fp16 sums
        assert np.array_equal(d, expected.astype(np.float32))


def test_batched_broadcasting_and_c_broadcasting():
    model = fl.mma_model("h100", "fp16")
    a, b = _fp16((2, 3, 4, 20)), _fp16((3, 20, 5), 1)
    c = _fp16((5,), 2)
    d = fl.matmul(a, b, c, model=model)
    assert d.shape == (2, 3, 4, 5)
    for i in range(2):
        for j in range(3):
            single = fl.matmul(a[i, j], b[j], np.broadcast_to(c, (4, 5)), model=model)
            assert np.array_equal(d[i, j].view(np.uint32), single.view(np.uint32))


def test_k_zero_gives_c_and_zero_without_c():
    model = fl.mma_model("h100", "fp16", out="fp16")
    c = np.array([[1.0, 1e-9, 70000.0]], dtype=np.float32)
    assert np.array_equal(fl.matmul(np.zeros((1, 0), np.float32), np.zeros((0, 3), np.float32), c, model=model),
                          fl.quantize(c, fl.FP16))  # c is rounded to the fp16 c_format
    assert not fl.matmul(np.zeros((2, 0), np.float32), np.zeros((0, 3), np.float32), model=model).any()


def test_inputs_must_be_representable_unless_round_inputs():
    model = fl.mma_model("a100", "bf16")
    a = np.array([[1.0, 1.0 + 2.0 ** -10]], dtype=np.float32)
    b = np.ones((2, 1), np.float32)
    with pytest.raises(ValueError) as error:
        fl.matmul(a, b, model=model)
    message = str(error.value)
    assert "A" in message and "bf16" in message and "A[0, 1]" in message and "round_inputs=True" in message
    rounded = fl.matmul(a, b, model=model, round_inputs=True)
    assert rounded[0, 0] == 2.0
    with pytest.raises(ValueError, match="B has values"):
        fl.matmul(np.ones((1, 2), np.float32), np.full((2, 1), 0.1, np.float32), model=model)
    with pytest.raises(ValueError, match="e4m3fn"):  # no Inf in NVIDIA's E4M3
        fl.matmul(np.array([[np.inf]], np.float32), np.ones((1, 1), np.float32), model=fl.mma_model("h100", "e4m3"))


def test_other_float_dtypes_are_accepted():
    import ml_dtypes
    model = fl.mma_model("h100", "bf16")
    a = np.ones((2, 3), dtype=ml_dtypes.bfloat16)
    b = np.ones((3, 2), dtype=np.float64)
    assert np.array_equal(fl.matmul(a, b, model=model), np.full((2, 2), 3.0, np.float32))
    assert fl.matmul(np.ones((2, 3), np.float16), np.ones((3, 2), np.float32), model="h100-fp16-fp32")[0, 0] == 3


@pytest.mark.parametrize("call, error, words", [
    (lambda m: fl.matmul(np.ones((2, 3), np.float32), np.ones((4, 2), np.float32), model=m), ValueError,
     ["A.shape=(2, 3)", "B.shape=(4, 2)", "K"]),
    (lambda m: fl.matmul(np.ones((2, 2, 3), np.float32), np.ones((3, 3, 2), np.float32), model=m), ValueError,
     ["batch", "broadcast"]),
    (lambda m: fl.matmul(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32), np.ones((3, 3)), model=m),
     ValueError, ["C.shape=(3, 3)", "(2, 2)"]),
    (lambda m: fl.matmul(np.float32(1.0), np.ones((1, 1), np.float32), model=m), ValueError, ["dimension"]),
    (lambda m: fl.matmul(np.ones((2, 3), np.int32), np.ones((3, 2), np.float32), model=m), TypeError,
     ["A has dtype int32"]),
    (lambda m: fl.matmul(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32), model="h100"), ValueError,
     ["input is required"]),
    (lambda m: fl.matmul(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32), model=3), TypeError,
     ["model must be an MMAModel"]),
    (lambda m: fl.matmul(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32), model=m, round_inputs="yes"),
     TypeError, ["round_inputs"]),
])
def test_matmul_errors_are_clear(call, error, words):
    with pytest.raises(error) as raised:
        call(fl.mma_model("h100", "fp16"))
    for word in words:
        assert word in str(raised.value)


# ---- the command line --------------------------------------------------------------------------------

def test_cli_list(capsys):
    assert cli.main(["mma", "list"]) == 0
    output = capsys.readouterr().out
    assert "h100-e4m3fn-fp32" in output and "fp32_pairwise" in output and "separate" in output


def test_cli_check_runs_as_a_subprocess(tmp_path):
    # The measurements ship with fmtlab: run from a directory with no ../shared beside it.
    result = subprocess.run([sys.executable, "-m", "fmtlab", "mma", "check"], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "B200-e4m3 -> fp32" in result.stdout and "5000/5000" in result.stdout
    assert "open question" in result.stdout


def test_cli_check_with_a_missing_directory(capsys, tmp_path):
    assert cli.main(["mma", "check", "--data", str(tmp_path / "nowhere")]) == 2
    assert "--data" in capsys.readouterr().err
