"""Checkpoint-scale sweeps: tensors cut into row ranges merge exactly; lazy file inputs.

Every result must be the same, bit for bit, whatever the chunk size, the job count or the
input's form (in memory, .npy, .safetensors, a sharded index): the statistics of the pieces
merge exactly and stochastic rounding draws at global indices.
"""
import fractions
import json
import math

import ml_dtypes
import numpy as np
import pytest

import fmtlab as fl
from fmtlab._inputs import tensor_sources
from fmtlab.metrics import EXACT_EXPONENT, exact_signal, exact_statistics, merge_statistics
from fmtlab.sweep import sweep


def _data():
    rng = np.random.default_rng(11)
    wide = (rng.standard_normal((300, 37)) * np.exp(rng.uniform(-6, 6, (300, 37)))).astype(np.float32)
    wide[5, 3], wide[120, 0], wide[299, 36] = np.nan, np.inf, -np.inf
    line = rng.laplace(0, 0.02, 5000).astype(np.float32)
    return {"wide": wide, "line": line}


ARGUMENTS = dict(formats=["bf16", "cfloat8_1_4_3", "cfloat8_1_5_2:subnormals=tesla", "fp16"], biases=[3, 7, 12],
                 roundings=["nearest_even", "stochastic"], seed=5)


@pytest.fixture(scope="module")
def whole():
    return sweep(_data(), jobs=1, chunk=1 << 30, **ARGUMENTS)


@pytest.mark.parametrize("chunk", [7, 4096, 5000])
def test_chunked_equals_whole_bit_for_bit(whole, chunk):
    chunked = sweep(_data(), jobs=1, chunk=chunk, **ARGUMENTS)
    assert chunked.to_csv() == whole.to_csv()
    assert chunked == whole


def test_one_row_per_task_equals_whole_bit_for_bit(whole):
    """chunk=1: every task one row of 37 elements (a row is never split), 300 pieces merged."""
    chunked = sweep({"wide": _data()["wide"]}, jobs=1, chunk=1, **ARGUMENTS)
    assert list(chunked) == [r for r in whole if r.tensor == "wide"]


def test_two_jobs_and_a_thread_executor_equal_the_inline_run(whole):
    import concurrent.futures

    assert sweep(_data(), jobs=2, chunk=500, **ARGUMENTS).to_csv() == whole.to_csv()
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        assert sweep(_data(), executor=executor, chunk=37 * 7, **ARGUMENTS).to_csv() == whole.to_csv()


def test_stochastic_rounding_of_a_piece_is_that_of_the_whole_tensor(whole):
    """The stochastic records agree with fl.quantize of the whole tensor (exact rational reference
    for the SQNR over the finite values): the pieces drew at their global indices."""
    x = _data()["line"]
    fmt = fl.format("cfloat8_1_4_3", bias=7)
    q = fl.quantize(x, fmt, "stochastic", seed=5).astype(np.float64)
    signal = sum(fractions.Fraction(float(v)) ** 2 for v in x.astype(np.float64))
    noise = sum((fractions.Fraction(float(a)) - fractions.Fraction(float(b))) ** 2
                for a, b in zip(q, x.astype(np.float64)))
    expected = 10 * math.log10(signal / noise)
    for chunk in (7, 1 << 30):
        record = next(r for r in sweep({"line": x}, "cfloat8_1_4_3", [7], "stochastic", seed=5, jobs=1, chunk=chunk)
                      if r.bias == 7)
        assert record.sqnr_db == pytest.approx(expected, rel=1e-13)
        assert record.rmse == pytest.approx(math.sqrt(float(noise) / x.size), rel=1e-13)


def test_non_finite_inputs_are_left_out_in_every_piece(whole):
    records = [r for r in whole if r.tensor == "wide" and r.format == "fp16" and r.rounding == "nearest_even"]
    assert records[0].nan_input_frac == 1 / (300 * 37) and records[0].inf_input_frac == 2 / (300 * 37)
    x = _data()["wide"].astype(np.float64).reshape(-1)
    finite = np.isfinite(x)
    q = fl.quantize(x, fl.FP16).astype(np.float64)
    valid = finite & np.isfinite(q)
    signal = math.fsum(v * v for v in x[valid])
    noise = math.fsum(float(fractions.Fraction(a) - fractions.Fraction(b)) ** 2 for a, b in zip(q[valid], x[valid]))
    assert records[0].sqnr_db == pytest.approx(10 * math.log10(signal / noise), rel=1e-12)


def test_exact_sums_of_pieces_add_up_to_the_whole_for_any_cut():
    """Cut anywhere, the pieces' exact sums (ints of 2^EXACT_EXPONENT) add up to the exact
    rational sums of the whole: S = sum x^2, E = sum (q - x)^2, D = sum (q - x)."""
    rng = np.random.default_rng(4)
    x = (rng.standard_normal(3000) * np.exp(rng.uniform(-60, 60, 3000))).astype(np.float32).astype(np.float64)
    q = fl.quantize(x, fl.BF16).astype(np.float64)
    unit = fractions.Fraction(2) ** EXACT_EXPONENT
    exact_s = sum(fractions.Fraction(v) ** 2 for v in x)
    exact_e = sum((fractions.Fraction(b) - fractions.Fraction(a)) ** 2 for a, b in zip(x, q))
    exact_d = sum(fractions.Fraction(b) - fractions.Fraction(a) for a, b in zip(x, q))
    for cut in (1, 7, 4096, x.size):
        merged = None
        for start in range(0, x.size, cut):
            part = exact_statistics(x[start:start + cut], q[start:start + cut], fl.BF16)
            merged = part if merged is None else merge_statistics(merged, part)
        assert merged["signal"] * unit == exact_s
        assert merged["error_energy"] * unit == exact_e
        assert merged["error_sum"] * unit == exact_d
        assert merged["valid"] == merged["n"] == x.size


def test_the_exact_signal_sum_covers_the_whole_float64_range():
    """Squares from 2^-2148 (the smallest subnormal's) to near 2^2048 (the largest double's), and
    cancelling products, summed without any loss: the int is the exact rational sum."""
    values = [5e-324, -5e-324, 1.7976931348623157e308, -1e300, 1e-300, 3.0, math.ldexp(1, -1074) * 3]
    unit = fractions.Fraction(2) ** EXACT_EXPONENT
    assert exact_signal(np.array(values)) * unit == sum(fractions.Fraction(v) ** 2 for v in values)
    # q far from x (e not exact in float64): E still exact
    x = np.array([1e300, 3.0, -2.0 ** -1000])
    q = np.array([-2.0 ** -1074, 2.0 ** 80, 1e200])
    stats = exact_statistics(x, q, fl.FP32)
    assert stats["error_energy"] * unit == sum((fractions.Fraction(b) - fractions.Fraction(a)) ** 2
                                               for a, b in zip(x, q))
    assert stats["error_sum"] * unit == sum(fractions.Fraction(b) - fractions.Fraction(a) for a, b in zip(x, q))


# ---- lazy file inputs ----------------------------------------------------------------------------------
def _save_safetensors(path, tensors):
    from safetensors.numpy import save_file

    save_file(tensors, str(path))


def test_safetensors_bf16_shards_and_index_equal_the_in_memory_sweep(tmp_path):
    rng = np.random.default_rng(3)
    q_proj = rng.standard_normal((64, 48)).astype(ml_dtypes.bfloat16)
    mlp = (rng.standard_normal((96, 40)) * 0.05).astype(ml_dtypes.bfloat16)
    norm = rng.uniform(0.5, 1.5, 40).astype(np.float32)
    from safetensors.torch import save_file
    import torch

    save_file({"layers.0.attn.q_proj.weight": torch.from_numpy(q_proj.view(np.uint16).astype(np.int16)).view(torch.bfloat16),
               "layers.0.norm.weight": torch.from_numpy(norm)}, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file({"layers.0.mlp.up_proj.weight": torch.from_numpy(mlp.view(np.uint16).astype(np.int16)).view(torch.bfloat16),
               "step": torch.tensor([3])}, str(tmp_path / "model-00002-of-00002.safetensors"))
    index = {"metadata": {"total_size": 0}, "weight_map": {
        "layers.0.attn.q_proj.weight": "model-00001-of-00002.safetensors",
        "layers.0.norm.weight": "model-00001-of-00002.safetensors",
        "layers.0.mlp.up_proj.weight": "model-00002-of-00002.safetensors", "step": "model-00002-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    in_memory = {"layers.0.attn.q_proj.weight": q_proj.astype(np.float32), "layers.0.norm.weight": norm,
                 "layers.0.mlp.up_proj.weight": mlp.astype(np.float32)}
    expected = sweep(in_memory, jobs=1, **ARGUMENTS)
    from_index = sweep(tmp_path / "model.safetensors.index.json", jobs=1, chunk=100, **ARGUMENTS)
    assert sorted(from_index, key=_key) == sorted(expected, key=_key)
    from_directory = sweep(tmp_path, jobs=2, chunk=333, **ARGUMENTS)
    assert sorted(from_directory, key=_key) == sorted(expected, key=_key)
    picked = sweep(tmp_path, "bf16", jobs=1, include="*proj*", exclude="*mlp*")
    assert {r.tensor for r in picked} == {"layers.0.attn.q_proj.weight"}


def _key(record):
    return (record.tensor, record.format, record.rounding, record.bias)


def test_npy_is_memory_mapped_and_fortran_order_reads_in_c_order(tmp_path):
    values = np.random.default_rng(2).standard_normal((50, 30))
    np.save(tmp_path / "c.npy", values)
    np.save(tmp_path / "f.npy", np.asfortranarray(values))
    expected = sweep({"x": values}, ["bf16", "cfloat8_1_4_3"], [7], jobs=1)
    for name in ("c", "f"):
        got = sweep(tmp_path / f"{name}.npy", ["bf16", "cfloat8_1_4_3"], [7], jobs=1, chunk=90)
        assert [r.as_dict() | {"tensor": "x"} for r in got] == [r.as_dict() for r in expected]


def test_npz_members_stored_and_compressed_read_by_rows(tmp_path):
    values = np.random.default_rng(4).standard_normal((40, 25)).astype(np.float32)
    np.savez(tmp_path / "stored.npz", w=values, ids=np.arange(3))
    np.savez_compressed(tmp_path / "packed.npz", w=values)
    expected = sweep({"w": values}, "bf16", jobs=1)
    for name in ("stored", "packed"):
        sources = tensor_sources(tmp_path / f"{name}.npz")
        assert [s.name for s in sources] == ["w"]
        assert sweep(tmp_path / f"{name}.npz", "bf16", jobs=1, chunk=50) == expected


def test_npz_whose_header_declares_more_than_the_entry_holds_is_refused_before_unpacking(tmp_path):
    import zipfile

    header = np.lib.format  # a member whose .npy header claims 2^28 float32 values but holds 16 bytes
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        import io

        buffer = io.BytesIO()
        header.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": (1 << 28,)})
        archive.writestr("w.npy", buffer.getvalue() + b"\0" * 16)
    with pytest.raises(ValueError, match=r"bomb.npz' is not a readable .npz archive: member 'w' declares "
                                         r"1073741824 bytes of data but its zip entry holds 16"):
        tensor_sources(tmp_path / "bomb.npz")


def test_input_errors_name_the_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="input file 'nowhere' does not exist"):
        tensor_sources("nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is a directory with no tensor file"):
        tensor_sources(tmp_path / "empty")
    (tmp_path / "m.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "gone.safetensors"}}))
    with pytest.raises(FileNotFoundError, match="names the shard 'gone.safetensors', which does not exist"):
        tensor_sources(tmp_path / "m.safetensors.index.json")
    (tmp_path / "bad.index.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="is not a readable checkpoint index"):
        tensor_sources(tmp_path / "bad.index.json")
    np.save(tmp_path / "a.npy", np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"no non-empty floating-point tensor matching include zz\*"):
        tensor_sources(tmp_path / "a.npy", include="zz*")
    with pytest.raises(ValueError, match="chunk=0 is not allowed: a positive int"):
        sweep(np.ones(3), "bf16", chunk=0)


def test_the_same_name_in_two_files_gets_the_file_stem(tmp_path):
    np.savez(tmp_path / "one.npz", w=np.ones(3, np.float32))
    np.savez(tmp_path / "two.npz", w=np.full(3, 2.0, np.float32), v=np.ones(2, np.float32))
    assert [s.name for s in tensor_sources(tmp_path)] == ["one/w", "two/w", "v"]


def test_sub_blocks_inside_a_task_merge_exactly():
    """The fused kernel flushes its bins into the exact sums every 65536 values: a tensor of many
    flushes, cut at a chunk that is no multiple of anything, equals the whole-tensor run."""
    SUB_BLOCK = 1 << 18

    x = {"long": np.random.default_rng(9).standard_normal(2 * SUB_BLOCK + 12_345).astype(np.float32)}
    arguments = dict(formats=["cfloat8_1_4_3", "bf16"], biases=[6], roundings=["stochastic", "nearest_even"], seed=1)
    whole = sweep(x, jobs=1, chunk=1 << 30, **arguments)
    assert sweep(x, jobs=1, chunk=100_003, **arguments).to_csv() == whole.to_csv()
    record = next(r for r in whole if r.format == "cfloat8_1_4_3" and r.rounding == "stochastic" and r.bias == 6)
    q = fl.quantize(x["long"], fl.format("cfloat8_1_4_3", bias=6), "stochastic", seed=1).astype(np.float64)
    x64 = x["long"].astype(np.float64)
    assert record.sqnr_db == pytest.approx(10 * math.log10(math.fsum(x64 * x64) / math.fsum((q - x64) ** 2)),
                                           rel=1e-12)


# ---- a real published checkpoint ----------------------------------------------------------------------
def _silero_checkpoint():
    silero_vad = pytest.importorskip("silero_vad", reason="the silero-vad package (pip install silero-vad) ships "
                                                          "the published weights this test reads")
    import importlib.resources

    return importlib.resources.files(silero_vad) / "data" / "silero_vad_16k.safetensors"


def test_a_real_published_checkpoint_silero_vad():
    """silero-vad's shipped weights (15 float32 tensors): the names are the checkpoint's own, the
    SQNRs agree with an exact rational reference, and the figures docs/sweep.md quotes hold."""
    path = _silero_checkpoint()
    result = sweep(str(path), ["bf16", "e4m3fn", "cfloat8_1_4_3"], "all", jobs=1)
    rows = {(row["tensor"], row["format"]): row for row in result.summary()}
    assert len({tensor for tensor, _format in rows}) == 15 and ("lstm_cell.weight_ih", "bf16") in rows
    from safetensors.numpy import load_file

    weights = load_file(str(path))["lstm_cell.weight_ih"].astype(np.float64).reshape(-1)
    q = fl.quantize(weights, fl.E4M3FN).astype(np.float64)
    signal = sum(fractions.Fraction(v) ** 2 for v in weights)
    noise = sum((fractions.Fraction(a) - fractions.Fraction(b)) ** 2 for a, b in zip(q, weights))
    assert rows[("lstm_cell.weight_ih", "e4m3fn")]["best_sqnr_db"] == pytest.approx(
        10 * math.log10(signal / noise), rel=1e-13)
    # The table of docs/sweep.md ("A real checkpoint"), to 2 decimals.
    quoted = {("lstm_cell.weight_ih", "bf16"): (55.66, None), ("lstm_cell.weight_ih", "e4m3fn"): (31.51, None),
              ("lstm_cell.weight_ih", "cfloat8_1_4_3"): (31.51, 14), ("conv4.weight", "e4m3fn"): (32.55, None),
              ("conv4.weight", "cfloat8_1_4_3"): (32.57, 10), ("stft_conv.weight", "cfloat8_1_4_3"): (32.42, 15)}
    for key, (sqnr, bias) in quoted.items():
        assert round(rows[key]["best_sqnr_db"], 2) == sqnr, key
        if bias is not None:
            assert rows[key]["best_bias"] == rows[key]["rule_bias"] == bias, key
    assert round(100 * rows[("conv4.weight", "e4m3fn")]["underflow_frac"], 2) == 8.01
    assert round(100 * rows[("conv4.weight", "cfloat8_1_4_3")]["underflow_frac"], 2) == 1.01
    assert sweep(str(path), ["bf16", "e4m3fn", "cfloat8_1_4_3"], "all", jobs=2, chunk=1000) == result


def test_memory_follows_the_chunk_not_the_file(tmp_path):
    """Traced peak allocations of an inline sweep of .npy files: about the same for a file twice
    as large, below the file's own size, and growing with the chunk by a few bytes per value."""
    import tracemalloc

    rng = np.random.default_rng(0)
    for rows in (1024, 2048):  # 16 and 32 MB of float32
        np.save(tmp_path / f"x{rows}.npy", rng.standard_normal((rows, 4096)).astype(np.float32))

    def peak(path, chunk):
        tracemalloc.start()
        try:
            sweep(path, ["bf16", "cfloat8_1_4_3"], "auto", ["nearest_even", "stochastic"], jobs=1, chunk=chunk)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(tmp_path / "x1024.npy", 1 << 20), peak(tmp_path / "x2048.npy", 1 << 20)
    assert large < 1.15 * small and large < (tmp_path / "x2048.npy").stat().st_size
    bigger_chunk = peak(tmp_path / "x2048.npy", 1 << 22)
    assert bigger_chunk - large < 8 * 4 * ((1 << 22) - (1 << 20))  # under 8 float32 copies of the extra rows


def test_a_pytorch_checkpoint_is_read_by_rows_through_torch_mmap(tmp_path):
    torch = pytest.importorskip("torch", reason="reading .pt files needs PyTorch")
    weight = torch.randn(90, 20, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    torch.save({"model": {"layer.weight": weight, "step": torch.tensor(3)}}, tmp_path / "ckpt.pt")
    expected = sweep({"model.layer.weight": weight.float().numpy()}, ["bf16", "cfloat8_1_4_3"], [5, 9], jobs=1)
    assert sweep(tmp_path / "ckpt.pt", ["bf16", "cfloat8_1_4_3"], [5, 9], jobs=1, chunk=333) == expected


def test_scaled_formats_of_a_chunked_file_give_the_in_memory_records(tmp_path):
    """Scaled formats (block scales, NVFP4's tensor scale, the per-tensor bias) on a file cut into
    chunks (pieces of whole blocks, the tensor's amax from the scan): the same records as in
    memory (tests/test_sweep_scaled_pieces.py proves it at every cut)."""
    x = np.random.default_rng(0).standard_normal((64, 96)).astype(np.float32)
    np.save(tmp_path / "w.npy", x)
    arguments = dict(formats="mxfp8_e4m3,nvfp4,cfloat8_1_4_3", biases="auto", roundings="nearest_even,stochastic")
    expected = sweep({"w": x}, jobs=1, **arguments)
    assert sweep(tmp_path / "w.npy", jobs=2, chunk=500, **arguments) == expected
    assert {r.format.split(":")[0] for r in expected} == {"mxfp8_e4m3", "nvfp4", "cfloat8_1_4_3"}
