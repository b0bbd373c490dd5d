"""`fmtlab sweep` end to end in a temporary directory, and its one-line errors."""
import csv
import io
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from fmtlab import cli
from fmtlab._progress import ProgressBar

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
    (["--dist", "gaussian"], "distribution='gaussian' is unknown; choose one of normal, lognormal"),
    (["--bias", "3,99"], "biases has the value 99"),
    (["--bias", "low"], "bad item 'low'"),
    (["--rounding", "nearest"], "roundings has 'nearest', which is not a rounding mode"),
    (["--formats", "fp8"], "format name 'fp8' is unknown"),
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


def test_progress_bar_renders_and_stays_silent_off_a_terminal():
    stream = io.StringIO()
    bar = ProgressBar(4, "sweep", stream=stream, enabled=True, delay=0, interval=0)
    bar.update(2)
    bar.close()
    text = stream.getvalue()
    assert "sweep [" in text and "2/4" in text and "50%" in text and text.endswith("\n")
    quiet = io.StringIO()
    with ProgressBar(3, stream=quiet) as silent:  # StringIO is not a terminal
        silent.update(3)
    assert quiet.getvalue() == ""
    with pytest.raises(ValueError, match="total=-1 is not allowed"):
        ProgressBar(-1)
