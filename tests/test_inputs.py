"""Loading sweep inputs: synthetic distributions, .npy, .npz, .pt, .safetensors, and clear errors."""
import sys

import ml_dtypes
import numpy as np
import pytest

from fmtlab import _inputs
from fmtlab._inputs import DISTRIBUTIONS, load_file, synthetic, tensor_dict


# ---- synthetic ------------------------------------------------------------------------------------
@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_synthetic_is_float32_reproducible_and_scaled(distribution):
    first = synthetic(distribution, 20000, scale=3.0, seed=4)
    assert first.dtype == np.float32 and first.shape == (20000,)
    np.testing.assert_array_equal(first, synthetic(distribution, 20000, scale=3.0, seed=4))
    assert not np.array_equal(first, synthetic(distribution, 20000, scale=3.0, seed=5))
    unit = synthetic(distribution, 20000, scale=1.0, seed=4)
    np.testing.assert_allclose(first, (unit.astype(np.float64) * 3).astype(np.float32), rtol=1e-6)


def test_synthetic_shapes_of_the_distributions():
    assert (synthetic("lognormal", 1000) > 0).all()
    uniform = synthetic("uniform", 10000, scale=2.0)
    assert uniform.min() >= -2 and uniform.max() <= 2
    assert abs(float(np.median(np.abs(synthetic("laplace", 100000)))) - np.log(2)) < 0.02
    assert abs(float(synthetic("normal", 100000).std()) - 1) < 0.02


@pytest.mark.parametrize("kwargs, message", [
    ({"distribution": "gaussian", "size": 10}, "distribution='gaussian' is not allowed; allowed: normal, lognormal"),
    ({"distribution": "lognormall", "size": 10}, "distribution='lognormall' is not allowed (did you mean 'lognormal'"),
    ({"distribution": "normal", "size": 0}, "size=0 is not allowed"),
    ({"distribution": "normal", "size": 10, "scale": -1.0}, "scale=-1.0 is not allowed"),
    ({"distribution": "normal", "size": 10, "scale": float("inf")}, "scale=inf is not allowed"),
    ({"distribution": "normal", "size": 10, "seed": -3}, "seed=-3 is not allowed"),
])
def test_synthetic_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        synthetic(**kwargs)


# ---- arrays and dicts ----------------------------------------------------------------------------------
def test_tensor_dict_accepts_arrays_dicts_and_widens_narrow_floats_exactly():
    values = np.array([1.5, -0.25, 3.0], dtype=np.float16)
    assert list(tensor_dict(values)) == ["tensor"]
    converted = tensor_dict({"a": values, "b": np.array([1.0, 2.0]),
                             "c": np.array([0.5, 2.0], dtype=ml_dtypes.bfloat16)})
    assert converted["a"].dtype == np.float32 and converted["a"].tolist() == [1.5, -0.25, 3.0]
    assert converted["b"].dtype == np.float64
    assert converted["c"].dtype == np.float32 and converted["c"].tolist() == [0.5, 2.0]


def test_tensor_dict_rejects_integers_empty_and_other_types():
    with pytest.raises(TypeError, match="tensor 'w' has dtype int64"):
        tensor_dict({"w": np.arange(3)})
    with pytest.raises(ValueError, match="tensor 'w' is empty"):
        tensor_dict({"w": np.zeros(0, np.float32)})
    with pytest.raises(ValueError, match="is empty"):
        tensor_dict({})
    with pytest.raises(TypeError, match="tensors=int is not allowed"):
        tensor_dict(3)


# ---- files ------------------------------------------------------------------------------------------------
def test_npy_and_npz(tmp_path):
    np.save(tmp_path / "weights.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
    assert list(load_file(tmp_path / "weights.npy")) == ["weights"]
    np.savez(tmp_path / "many.npz", a=np.ones(4, np.float32), b=np.arange(3), c=np.full(2, 0.5))
    skipped = []
    loaded = load_file(str(tmp_path / "many.npz"), skipped)
    assert list(loaded) == ["a", "c"]
    assert loaded["c"].dtype == np.float64
    assert [name for name, _reason in skipped] == ["b"]


def test_missing_file_is_a_one_line_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="input file .*nothing.npz' does not exist"):
        load_file(tmp_path / "nothing.npz")


@pytest.mark.parametrize("suffix, message", [
    (".npz", "is not a readable .npz archive"),
    (".npy", "is not a readable .npy array"),
    (".pt", "is not a readable PyTorch tensor file"),
    (".safetensors", "is not a readable .safetensors file"),
])
def test_corrupt_files_give_a_clear_value_error(tmp_path, suffix, message):
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(b"this is not a tensor file at all" * 3)
    with pytest.raises(ValueError, match=message) as caught:
        load_file(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_truncated_npz_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "whole.npz", a=np.ones(1000, np.float32))
    data = (tmp_path / "whole.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable .npz archive"):
        load_file(tmp_path / "cut.npz")


def test_unknown_suffix_and_no_float_tensors(tmp_path):
    (tmp_path / "data.csv").write_text("1,2\n")
    with pytest.raises(ValueError, match="suffix '.csv'; allowed: .npy, .npz"):
        load_file(tmp_path / "data.csv")
    np.savez(tmp_path / "ints.npz", a=np.arange(3))
    with pytest.raises(ValueError, match="holds no non-empty floating-point tensor"):
        load_file(tmp_path / "ints.npz")


def test_pytorch_state_dict_nested_with_bfloat16(tmp_path):
    torch = pytest.importorskip("torch")
    weight = torch.tensor([[1.5, -2.0], [0.125, 3.0]], dtype=torch.bfloat16)
    torch.save({"model": {"layer.weight": weight, "layer.bias": torch.zeros(2),
                          "steps": torch.tensor(7)}, "scales": [torch.ones(3, dtype=torch.float64)]},
               tmp_path / "checkpoint.pt")
    skipped = []
    loaded = load_file(tmp_path / "checkpoint.pt", skipped)
    assert list(loaded) == ["model.layer.weight", "model.layer.bias", "scales.0"]
    assert loaded["model.layer.weight"].dtype == np.float32
    assert loaded["model.layer.weight"].tolist() == [[1.5, -2.0], [0.125, 3.0]]
    assert loaded["scales.0"].dtype == np.float64
    assert [name for name, _ in skipped] == ["model.steps"]
    # A bare tensor is one tensor named "tensor"; torch tensors are accepted directly too.
    torch.save(torch.full((4,), 0.5), tmp_path / "bare.pth")
    assert list(load_file(tmp_path / "bare.pth")) == ["tensor"]
    assert tensor_dict({"t": weight})["t"].tolist() == [[1.5, -2.0], [0.125, 3.0]]


def test_safetensors_all_float_dtypes(tmp_path):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    tensors = {"bf16": torch.tensor([1.0, -0.5, 2.0 ** -20], dtype=torch.bfloat16),
               "f16": torch.tensor([65504.0, -1.0], dtype=torch.float16),
               "f32": torch.arange(6, dtype=torch.float32).reshape(2, 3),
               "e4m3": torch.tensor([448.0, -0.25], dtype=torch.float8_e4m3fn),
               "ids": torch.arange(4)}
    safetensors_torch.save_file(tensors, str(tmp_path / "model.safetensors"))
    skipped = []
    loaded = load_file(tmp_path / "model.safetensors", skipped)
    assert sorted(loaded) == ["bf16", "e4m3", "f16", "f32"]
    for name in loaded:
        assert loaded[name].tolist() == tensors[name].float().tolist()
        assert loaded[name].dtype == np.float32
    assert loaded["f32"].shape == (2, 3)
    assert [name for name, _ in skipped] == ["ids"]


def test_missing_torch_or_safetensors_gives_install_message(tmp_path, monkeypatch):
    (tmp_path / "a.pt").write_bytes(b"x" * 10)
    (tmp_path / "a.safetensors").write_bytes(b"x" * 10)
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "safetensors", None)
    with pytest.raises(ValueError, match=r"needs PyTorch, which is not installed \(pip install torch\)"):
        load_file(tmp_path / "a.pt")
    with pytest.raises(ValueError, match=r"needs the safetensors package.*pip install safetensors"):
        load_file(tmp_path / "a.safetensors")


def test_loaders_import_torch_only_when_needed():
    # The module's top level must not import torch or safetensors.
    source = open(_inputs.__file__).read().split("def ")[0]
    assert "import torch" not in source and "import safetensors" not in source


@pytest.mark.parametrize("dtype", [">f8", ">f4", ">f2"])
def test_big_endian_npy_keeps_its_values_and_precision(tmp_path, dtype):
    """np.save keeps a big-endian array big-endian; float64 must stay float64 (not be cut to float32)."""
    values = np.array([1.0 / 3.0, -2.5, 1e-30, 7.0])
    np.save(tmp_path / "big.npy", values.astype(dtype))
    loaded = load_file(tmp_path / "big.npy")["big"]
    assert loaded.dtype.isnative
    assert loaded.dtype == (np.float64 if dtype == ">f8" else np.float32)
    np.testing.assert_array_equal(loaded, values.astype(dtype).astype(loaded.dtype))


# ---- BF16 files are widened by a shift, without ml_dtypes ------------------------------------------
def _bf16_safetensors(path, words):
    import json

    header = json.dumps({"w": {"dtype": "BF16", "shape": [256, 256], "data_offsets": [0, words.nbytes]}}).encode()
    header += b" " * (-len(header) % 8)
    path.write_bytes(len(header).to_bytes(8, "little") + header + words.astype("<u2").tobytes())


def test_every_bf16_code_of_a_safetensors_file_reads_as_ml_dtypes_widens_it(tmp_path):
    """All 65,536 bfloat16 codes (NaN payloads, both zeros, subnormals, Inf) in a .safetensors
    file: the pieces a sweep reads equal ml_dtypes' widening bit for bit, whole and cut in rows."""
    words = np.arange(1 << 16, dtype=np.uint16)
    _bf16_safetensors(tmp_path / "all.safetensors", words)
    (source,) = _inputs.tensor_sources(tmp_path / "all.safetensors")
    assert source.dtype == "bfloat16" and source.nbytes == 2 << 16
    expected = words.view(ml_dtypes.bfloat16).astype(np.float32)
    whole = source.piece(0, source.rows).read()
    assert whole.dtype == np.float32 and np.array_equal(whole.view(np.uint32), expected.view(np.uint32))
    parts = np.concatenate([source.piece(start, min(256, start + 37)).read() for start in range(0, 256, 37)])
    assert np.array_equal(parts.view(np.uint32), expected.view(np.uint32))


def test_sweeping_a_bf16_checkpoint_does_not_import_ml_dtypes(tmp_path):
    import subprocess

    rng = np.random.default_rng(5)
    words = (rng.standard_normal(1 << 16).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    _bf16_safetensors(tmp_path / "w.safetensors", words)
    code = ("import sys, fmtlab as fl\n"
            f"r = fl.sweep({str(tmp_path / 'w.safetensors')!r}, 'e4m3fn,cfloat8_1_4_3', 'auto', jobs=1)\n"
            "print(len(r), 'ml_dtypes' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["2", "False"]
