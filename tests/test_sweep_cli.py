"""`fmtlab sweep` end to end in a temporary directory, and its one-line errors."""
import csv
import io
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from fmtlab import cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(*argv):
    return cli.main(["sweep", *argv])


def test_default_formats_end_to_end(tmp_path, capsys):
    status = run_cli("--size", "3000", "--out", str(tmp_path), "--jobs", "1")
    assert status == 0
    out = capsys.readouterr().out
    assert "best bias" in out and "cfloat8_1_4_3" in out and "lognormal" in out
    rows = list(csv.DictReader(io.StringIO((tmp_path / "sweep.csv").read_text())))
    # 2 tensors x (fp32, fp16, bf16 + 64 + 64 biases) x 2 roundings
    assert len(rows) == 2 * (3 + 64 + 64) * 2
    assert {row["rounding"] for row in rows} == {"nearest_even", "stochastic"}
    assert {row["tensor"] for row in rows} == {"normal", "lognormal"}
    for name in ("sqnr_vs_bias.png", "log2_histogram.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC
    assert "best bias" in (tmp_path / "summary.txt").read_text()


def test_input_file_with_options(tmp_path, capsys):
    np.savez(tmp_path / "acts.npz", layer0=np.linspace(-3, 3, 500, dtype=np.float32),
             layer1=np.geomspace(1e-4, 50, 400).astype(np.float32), step=np.arange(3))
    status = run_cli("--input", str(tmp_path / "acts.npz"), "--formats", "bf16,cfloat8_1_5_2:subnormals=tesla",
                     "--bias", "10-12,20", "--rounding", "toward_zero", "--out", str(tmp_path / "out"),
                     "--jobs", "1", "--no-plots")
    assert status == 0
    out = capsys.readouterr().out
    assert "skipped 1 tensor(s)" in out and "step" in out
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "sweep.csv").read_text())))
    assert {row["tensor"] for row in rows} == {"layer0", "layer1"}
    assert {row["format"] for row in rows} == {"bf16", "cfloat8_1_5_2:subnormals=tesla"}
    biases = {int(row["bias"]) for row in rows if row["format"] != "bf16"}
    assert {10, 11, 12, 20} <= biases
    assert not (tmp_path / "out" / "sqnr_vs_bias.png").exists()


def test_auto_bias_and_a_distribution(tmp_path):
    assert run_cli("--dist", "student_t", "--size", "500", "--scale", "0.01", "--bias", "auto",
                   "--rounding", "nearest_even", "--out", str(tmp_path), "--quiet", "--jobs", "1") == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "sweep.csv").read_text())))
    assert len(rows) == 5 and all(row["is_rule_bias"] == "True" for row in rows)


@pytest.mark.parametrize("argv, message", [
    (["--input", "/nonexistent/model.safetensors"], "input file '/nonexistent/model.safetensors' does not exist"),
    # In command-line terms (the flag, the value as typed, what is allowed): the demand.
    (["--dist", "gaussian"], "--dist gaussian is not allowed; allowed: normal, lognormal, uniform, laplace, student_t"),
    (["--dist", "normal,lognormall"], "--dist lognormall is not allowed (did you mean 'lognormal'?); allowed: normal"),
    (["--bias", "3,99"], "--bias 99 is not allowed; allowed: all, auto"),
    (["--bias", "low"], "--bias low is not allowed; allowed: all, auto"),
    (["--rounding", "nearest"], "--rounding nearest is not allowed (did you mean 'nearest_even'?)"),
    (["--formats", "fp8"], "--formats fp8 is not allowed; allowed: fp32"),
    (["--pool", "thread"], "--pool thread is not allowed (did you mean 'threads'?); allowed: threads, processes"),
])
def test_bad_inputs_give_one_line_errors(tmp_path, capsys, argv, message):
    assert run_cli(*argv, "--out", str(tmp_path), "--size", "100", "--jobs", "1") == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("fmtlab sweep: error: ") and err.count("\n") == 1


def test_corrupt_npz_gives_one_line_error(tmp_path, capsys):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    assert run_cli("--input", str(tmp_path / "bad.npz"), "--out", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "is not a readable .npz archive" in err and err.count("\n") == 1


def test_bad_size_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as caught:
        run_cli("--size", "0")
    assert caught.value.code == 2 and "'0' is not allowed: a positive integer" in capsys.readouterr().err


def test_command_line_entry_point_runs_in_a_process_pool(tmp_path):
    # A separate interpreter, the real `python -m fmtlab`, two worker processes.
    completed = subprocess.run([sys.executable, "-m", "fmtlab", "sweep", "--size", "2000", "--jobs", "2",
                                "--formats", "bf16,cfloat8_1_4_3", "--out", str(tmp_path), "--no-plots"],
                               capture_output=True, text=True, timeout=300,
                               cwd=pathlib.Path(__file__).resolve().parents[1])
    assert completed.returncode == 0, completed.stderr
    assert "cfloat8_1_4_3" in completed.stdout and (tmp_path / "sweep.csv").exists()


def test_the_summary_states_the_tie_rule(tmp_path, capsys):
    assert run_cli("--size", "500", "--formats", "cfloat8_1_4_3", "--bias", "5-9", "--rounding", "nearest_even",
                   "--out", str(tmp_path), "--jobs", "1", "--no-plots") == 0
    rule = "among equal SQNRs the bias\n  nearest the rule bias wins, then the smaller one."
    assert rule in capsys.readouterr().out
    assert rule in (tmp_path / "summary.txt").read_text()


def test_quiet_prints_only_the_final_line(tmp_path, capsys):
    assert run_cli("--size", "500", "--formats", "bf16", "--rounding", "nearest_even", "--out", str(tmp_path),
                   "--jobs", "1", "--no-plots", "--quiet") == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("2 results over 1,000 values in ")
    # issue 13: every run also writes its page, report.html, and says so in the final line.
    assert lines[0].endswith(f"wrote {tmp_path / 'sweep.csv'}, {tmp_path / 'summary.txt'}, {tmp_path / 'report.html'}")


def test_non_finite_inputs_are_named_and_counted(tmp_path, capsys):
    w = np.array([1.0, np.nan, 0.5, np.inf, 2.0, np.nan, 3.0, -np.inf], np.float32)
    np.savez(tmp_path / "acts.npz", w=w, clean=np.linspace(-1, 1, 8, dtype=np.float32))
    assert run_cli("--input", str(tmp_path / "acts.npz"), "--formats", "cfloat8_1_4_3", "--bias", "auto",
                   "--rounding", "nearest_even", "--out", str(tmp_path / "out"), "--jobs", "1", "--no-plots") == 0
    captured = capsys.readouterr()
    note = [line for line in captured.err.splitlines() if "non-finite" in line]
    assert note == ["fmtlab sweep: note: non-finite input values in w (2 NaN, 2 Inf of 8): they are left out of "
                    "the SQNR, RMSE and error columns (a format without NaN/Inf codes maps them to its max), Inf "
                    "counts as overflow; see the Inf/NaN in % column and nan_input_frac, inf_input_frac in "
                    "sweep.csv"]
    rows = {row["tensor"]: row for row in csv.DictReader(io.StringIO((tmp_path / "out" / "sweep.csv").read_text()))}
    assert (rows["w"]["nan_input_frac"], rows["w"]["inf_input_frac"]) == ("0.25", "0.25")
    assert (rows["w"]["nan_frac"], rows["w"]["inf_frac"]) == ("0.0", "0.0")  # CFloat8 maps them to max
    assert (rows["clean"]["nan_input_frac"], rows["clean"]["inf_input_frac"]) == ("0.0", "0.0")
    table = [line for line in captured.out.splitlines() if line.startswith(("w ", "clean "))]
    assert table[0].startswith("w ") and table[0].endswith(" 50")   # Inf/NaN in %: 4 of 8
    assert table[1].startswith("clean ") and table[1].endswith(" 0")


@pytest.mark.parametrize("make_out, message", [
    (lambda root: root / "a_file", "--out '{out}' is an existing file, not a directory"),
    (lambda root: root / "a_file" / "below", "--out '{out}' cannot be created: Not a directory"),
])
def test_a_bad_out_is_refused_before_any_work(tmp_path, capsys, monkeypatch, make_out, message):
    (tmp_path / "a_file").write_text("not a directory")
    out = make_out(tmp_path)

    def no_work(*args, **kwargs):
        raise AssertionError("work started before --out was checked")

    import fmtlab.drift.runner  # noqa: F401 (the module, for its run_experiment)
    monkeypatch.setattr(sys.modules["fmtlab.sweep"], "sweep", no_work)
    monkeypatch.setattr(sys.modules["fmtlab.sweep_mma"], "sweep_mma", no_work)
    monkeypatch.setattr(sys.modules["fmtlab.drift.runner"], "run_experiment", no_work)
    for command in (["sweep", "--size", "100"], ["sweep-mma", "--k", "16"], ["drift", "--steps", "1"]):
        assert cli.main([*command, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"fmtlab {command[0]}: error: {message.format(out=out)}") and err.count("\n") == 1


def test_an_out_that_does_not_exist_is_created_up_front(tmp_path):
    out = tmp_path / "new" / "deeper"
    assert run_cli("--size", "100", "--formats", "bf16", "--rounding", "nearest_even", "--out", str(out),
                   "--jobs", "1", "--no-plots", "--quiet") == 0
    assert (out / "sweep.csv").exists()


def test_a_size_that_does_not_fit_in_memory_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    from fmtlab import _cli_sweep

    monkeypatch.setattr(_cli_sweep, "available_memory", lambda: 50 << 20)  # 50 MiB
    assert run_cli("--size", str(1 << 20), "--jobs", "2", "--out", str(tmp_path)) == 2
    err = capsys.readouterr().err
    # Two synthetic tensors of 2^20 values: 2 x 4 MiB here, plus 42 MiB in each of 2 workers = 92 MiB.
    assert err == ("fmtlab sweep: error: --size 1048576 needs about 92.0 MiB for 2 synthetic tensor(s) (4 bytes "
                   "per value, plus about 42 per value in each of 2 worker(s) evaluating them), but 50.0 MiB of "
                   "memory is available; give a smaller --size (or --jobs 1)\n")
    assert not (tmp_path / "sweep.csv").exists()


def test_help_lists_the_block_and_rule_axes(capsys):
    with pytest.raises(SystemExit):
        run_cli("--help")
    out = capsys.readouterr().out
    assert "--block LIST" in out and "--rule LIST" in out and "16x16 (tiles)" in out


# ---- checkpoints: directories, patterns, chunks, Parquet, provenance, layer kinds ------------------------
def _checkpoint(directory):
    rng = np.random.default_rng(12)
    directory.mkdir()
    np.savez(directory / "shard1.npz", **{"model.layers.0.self_attn.q_proj.weight": rng.standard_normal((64, 32)).astype(np.float32),
                                         "model.layers.0.mlp.up_proj.weight": 0.1 * rng.standard_normal((48, 32)).astype(np.float32)})
    np.savez(directory / "shard2.npz", **{"model.norm.weight": rng.uniform(0.5, 2, 32).astype(np.float32),
                                         "model.embed_tokens.weight": rng.standard_normal((100, 32)).astype(np.float32)})
    return directory


def test_a_checkpoint_directory_with_patterns_chunks_parquet_and_provenance(tmp_path, capsys):
    import hashlib

    pyarrow_parquet = pytest.importorskip("pyarrow.parquet", reason="--parquet needs pyarrow (a test dependency)")
    inputs = _checkpoint(tmp_path / "ckpt")
    out = tmp_path / "out"
    assert run_cli("--input", str(inputs), "--exclude", "*embed*", "--formats", "bf16,cfloat8_1_4_3", "--bias", "auto",
                   "--rounding", "nearest_even", "--chunk", "100", "--parquet", "--jobs", "1", "--no-plots",
                   "--out", str(out)) == 0
    rows = list(csv.DictReader(io.StringIO((out / "sweep.csv").read_text())))
    assert {row["tensor"] for row in rows} == {"model.layers.0.self_attn.q_proj.weight",
                                               "model.layers.0.mlp.up_proj.weight", "model.norm.weight"}
    table = pyarrow_parquet.read_table(out / "sweep.parquet")
    assert table.column_names == list(rows[0]) and table.num_rows == len(rows)
    assert [str(value) for value in table.column("sqnr_db").to_pylist()] == [row["sqnr_db"] for row in rows]
    summary = (out / "summary.txt").read_text()
    for shard in ("shard1.npz", "shard2.npz"):
        digest = hashlib.sha256((inputs / shard).read_bytes()).hexdigest()
        assert f"{shard}: {(inputs / shard).stat().st_size:,} bytes, sha256 {digest}" in summary
    assert "fmtlab 0.1.0, written " in summary and "per layer kind" in summary
    kinds = [line.split()[0] for line in summary.split("per layer kind")[1].splitlines()[3:] if line.strip()]
    assert kinds[:6] == ["attention.q", "attention.q", "mlp", "mlp", "norm", "norm"]
    # chunked (100 values per task) = one task per tensor
    assert run_cli("--input", str(inputs), "--exclude", "*embed*", "--formats", "bf16,cfloat8_1_4_3", "--bias", "auto",
                   "--rounding", "nearest_even", "--jobs", "1", "--no-plots", "--quiet", "--out", str(tmp_path / "b")) == 0
    assert (tmp_path / "b" / "sweep.csv").read_text() == (out / "sweep.csv").read_text()


def test_a_chunk_that_does_not_fit_in_memory_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    from fmtlab import _cli_sweep

    inputs = _checkpoint(tmp_path / "ckpt")
    monkeypatch.setattr(_cli_sweep, "available_memory", lambda: 100_000)
    assert run_cli("--input", str(inputs), "--chunk", "2048", "--jobs", "2", "--out", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    # The largest piece: 2048 values (embed_tokens, 3200 values in rows of 32, cut at --chunk 2048).
    assert err == ("fmtlab sweep: error: --chunk 2048 needs about 168.0 KiB (2 worker(s) evaluating pieces of up to "
                   "2,048 values at about 42 bytes per value), but 97.7 KiB of memory is available; give a smaller "
                   "--chunk or --jobs\n")
    assert not (tmp_path / "out" / "sweep.csv").exists()


def test_parquet_without_pyarrow_is_refused_up_front(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert run_cli("--size", "100", "--parquet", "--out", str(tmp_path)) == 2
    assert capsys.readouterr().err == ("fmtlab sweep: error: --parquet needs pyarrow, which is not installed "
                                       "(pip install pyarrow)\n")


@pytest.mark.parametrize("name, kind", [
    ("model.layers.0.self_attn.q_proj.weight", "attention.q"), ("model.layers.0.self_attn.k_proj.weight", "attention.k"),
    ("model.layers.0.self_attn.v_proj.weight", "attention.v"), ("model.layers.0.self_attn.o_proj.weight", "attention.o"),
    ("h.0.attn.c_attn.weight", "attention.qkv"), ("h.0.attn.c_proj.weight", "attention.o"),
    ("h.0.mlp.c_proj.weight", "mlp"), ("model.layers.3.mlp.gate_proj.weight", "mlp"),
    ("encoder.layer.0.attention.self.query.weight", "attention.q"),
    ("encoder.layer.0.attention.output.dense.weight", "attention.o"), ("model.embed_tokens.weight", "embedding"),
    ("transformer.wte.weight", "embedding"), ("lm_head.weight", "embedding"), ("h.0.ln_1.weight", "norm"),
    ("model.layers.0.input_layernorm.weight", "norm"), ("conv1.weight", "other"), ("dense.weight", "other"),
])
def test_layer_kinds_from_the_usual_names(name, kind):
    from fmtlab._records import layer_kind

    assert layer_kind(name) == kind


def test_layer_summary_weights_each_tensor_by_its_values():
    from fmtlab.sweep import sweep

    rng = np.random.default_rng(3)
    tensors = {"a.self_attn.q_proj.weight": rng.standard_normal(300).astype(np.float32),
               "b.self_attn.q_proj.weight": (rng.standard_normal(100) * 1e-3).astype(np.float32),
               "a.mlp.fc1.weight": rng.standard_normal(50).astype(np.float32)}
    result = sweep(tensors, ["cfloat8_1_4_3"], "all", jobs=1)
    best = {r.tensor: r.sqnr_db for r in result if r.is_best_bias}
    rows = {row["kind"]: row for row in result.layer_summary()}
    assert rows["attention.q"]["tensors"] == 2 and rows["attention.q"]["values"] == 400
    assert rows["attention.q"]["mean_sqnr_db"] == pytest.approx(
        (300 * best["a.self_attn.q_proj.weight"] + 100 * best["b.self_attn.q_proj.weight"]) / 400, rel=1e-15)
    worst = min(("a.self_attn.q_proj.weight", "b.self_attn.q_proj.weight"), key=best.get)
    assert rows["attention.q"]["worst_tensor"] == worst
    assert rows["mlp"]["mean_sqnr_db"] == best["a.mlp.fc1.weight"]
    assert "attention.q" in result.layer_table()


def test_to_pandas_has_one_row_per_record_and_the_csv_columns(tmp_path):
    import pandas

    from fmtlab.sweep import sweep

    x = np.random.default_rng(3).standard_normal(512).astype(np.float32)
    result = sweep({"w": x}, ["bf16", "cfloat8_1_4_3"], biases=[5, 7], jobs=1)
    frame = result.to_pandas()
    assert isinstance(frame, pandas.DataFrame) and list(frame.columns) == list(result.columns)
    assert len(frame) == len(result) == 4   # bf16, and cfloat8 at 5, 7 and its rule bias (always evaluated)
    assert frame["sqnr_db"].tolist() == [record.sqnr_db for record in result]
    assert frame["bias"].tolist() == [record.bias for record in result]


def test_to_pandas_says_what_to_install(monkeypatch):
    from fmtlab.sweep import sweep

    result = sweep(np.ones(4, np.float32), "bf16", jobs=1)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"to_pandas\(\) needs pandas, which is not installed \(pip install pandas\)"):
        result.to_pandas()


@pytest.mark.parametrize("jobs, expected", [("1", 1), ("2", None)])
def test_the_report_of_a_sweep_draws_inline_unless_its_own_default_says_otherwise(tmp_path, monkeypatch, jobs,
                                                                                   expected):
    """--jobs counts the sweep's workers; the report's details take their own default (inline below
    40 tensors: worker processes that import matplotlib cost more than a few details), --jobs 1
    keeps them in this process."""
    import fmtlab.report

    seen = []
    real = fmtlab.report.finish_sweep
    monkeypatch.setattr(fmtlab.report, "finish_sweep", lambda *a, **k: seen.append(k["jobs"]) or real(*a, **k))
    assert run_cli("--size", "500", "--formats", "bf16", "--rounding", "nearest_even", "--jobs", jobs, "--no-plots",
                   "--quiet", "--out", str(tmp_path)) == 0
    assert seen == [expected] and (tmp_path / "report.html").exists()
