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
    assert lines[0].endswith(f"wrote {tmp_path / 'sweep.csv'}, {tmp_path / 'summary.txt'}")


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
                   "per value, plus about 42 per value in each of 2 process(es) evaluating them), but 50.0 MiB of "
                   "memory is available; give a smaller --size (or --jobs 1)\n")
    assert not (tmp_path / "sweep.csv").exists()


def test_help_lists_the_block_and_rule_axes(capsys):
    with pytest.raises(SystemExit):
        run_cli("--help")
    out = capsys.readouterr().out
    assert "--block LIST" in out and "--rule LIST" in out and "16x16 (tiles)" in out
