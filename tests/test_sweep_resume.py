"""Resumable, loss-free sweeps: rows reach sweep.csv as each tensor finishes, --resume keeps them.

A run killed with SIGKILL (no chance to clean up) and resumed gives the same sweep.csv, byte for
byte, as a run that was never stopped; a torn last line is dropped; --resume refuses a run whose
arguments differ.
"""
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fmtlab import cli
from fmtlab._records import CsvAppender, read_records_csv, COLUMNS
from fmtlab.sweep import sweep

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _inputs(directory):
    rng = np.random.default_rng(8)
    directory.mkdir()
    for index in range(8):
        np.save(directory / f"layer{index}.npy", (rng.standard_normal((300, 200)) * 10.0 ** (index - 4)).astype(np.float32))
    return directory


ARGS = ("--formats", "bf16,cfloat8_1_4_3,cfloat8_1_5_2", "--bias", "all", "--rounding", "nearest_even,stochastic",
        "--no-plots", "--quiet")


def test_a_killed_run_resumes_to_the_csv_of_an_uninterrupted_run(tmp_path):
    inputs = _inputs(tmp_path / "inputs")
    assert cli.main(["sweep", "--input", str(inputs), *ARGS, "--jobs", "1", "--out", str(tmp_path / "whole")]) == 0
    expected = (tmp_path / "whole" / "sweep.csv").read_bytes()

    out = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "fmtlab", "sweep", "--input", str(inputs), *ARGS, "--jobs", "2",
                                "--chunk", "20000", "--out", str(out)], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:  # wait for some rows (whole tensors), then kill everything at once
            if (out / "sweep.csv").exists() and (out / "sweep.csv").read_text().count("\n") > 1 + 2 * 2 * 130:
                break
            assert process.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    streamed, _valid, _dropped = read_records_csv(out / "sweep.csv")
    assert 0 < len(streamed) < expected.count(b"\n") - 1
    assert cli.main(["sweep", "--input", str(inputs), *ARGS, "--jobs", "1", "--out", str(out), "--resume"]) == 0
    assert (out / "sweep.csv").read_bytes() == expected


def test_a_torn_last_line_is_dropped_and_recomputed(tmp_path, capsys):
    inputs = _inputs(tmp_path / "inputs")
    out = tmp_path / "out"
    assert cli.main(["sweep", "--input", str(inputs), *ARGS, "--jobs", "1", "--out", str(out)]) == 0
    expected = (out / "sweep.csv").read_bytes()
    cut = expected[: len(expected) * 2 // 3]
    assert not cut.endswith(b"\n")
    (out / "sweep.csv").write_bytes(cut)
    records, valid, dropped = read_records_csv(out / "sweep.csv")
    assert dropped == 1 and valid == cut.rindex(b"\n") + 1 and len(records) == cut.count(b"\n") - 1
    capsys.readouterr()
    assert cli.main(["sweep", "--input", str(inputs), *ARGS[:-1], "--jobs", "1", "--out", str(out), "--resume"]) == 0
    assert f"resuming: {len(records)} finished rows kept" in capsys.readouterr().out
    assert (out / "sweep.csv").read_bytes() == expected


@pytest.mark.parametrize("change, message", [
    (("--seed", "1"), "seed: was 0, now 1"),
    (("--bias", "auto"), "bias: was 'all', now 'auto'"),
])
def test_resume_refuses_other_arguments(tmp_path, capsys, change, message):
    inputs = _inputs(tmp_path / "inputs")
    out = tmp_path / "out"
    base = ["sweep", "--input", str(inputs), "--formats", "bf16", "--rounding", "nearest_even", "--bias", "all",
            "--no-plots", "--quiet", "--jobs", "1", "--out", str(out)]
    assert cli.main(base) == 0
    capsys.readouterr()
    assert cli.main([*base, *change, "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fmtlab sweep: error: --resume: the arguments differ from those of the run in ")
    assert message in err and err.count("\n") == 1


def test_resume_refuses_a_changed_input_file(tmp_path, capsys):
    inputs = _inputs(tmp_path / "inputs")
    out = tmp_path / "out"
    base = ["sweep", "--input", str(inputs), "--formats", "bf16", "--rounding", "nearest_even", "--no-plots",
            "--quiet", "--jobs", "1", "--out", str(out)]
    assert cli.main(base) == 0
    np.save(inputs / "layer0.npy", np.ones((300, 200), np.float32))
    capsys.readouterr()
    assert cli.main([*base, "--resume"]) == 2
    assert "inputs: was" in capsys.readouterr().err


def test_resume_without_an_earlier_run_is_refused(tmp_path, capsys):
    assert cli.main(["sweep", "--size", "100", "--out", str(tmp_path), "--resume", "--quiet"]) == 2
    assert "holds no earlier sweep (sweep.run.json and sweep.csv)" in capsys.readouterr().err


def test_done_records_are_reused_not_recomputed(tmp_path, monkeypatch):
    import importlib

    sweep_module = importlib.import_module("fmtlab.sweep")  # (fmtlab.sweep is also the function)
    x = {"a": np.linspace(-2, 2, 999, dtype=np.float32), "b": np.geomspace(1e-3, 9, 500).astype(np.float32)}
    full = sweep(x, ["bf16", "cfloat8_1_4_3"], [3, 9], jobs=1)
    evaluated = []  # (tensor, format, bias) of every evaluation a task ran
    real = sweep_module.evaluate_piece

    def recording(piece, items, *args, **kwargs):
        evaluated.extend((piece.name, sweep_module.record_format(fmt), bias) for fmt, _rounding, bias in items)
        return real(piece, items, *args, **kwargs)

    monkeypatch.setattr(sweep_module, "evaluate_piece", recording)
    again = sweep(x, ["bf16", "cfloat8_1_4_3"], [3, 9], jobs=1, done=[r for r in full if r.tensor == "a"])
    assert again == full
    # b's evaluations alone are run, each once
    assert sorted(evaluated) == sorted((r.tensor, r.format, r.bias) for r in full if r.tensor == "b")


def test_rows_are_appended_whole_and_read_back_exactly(tmp_path):
    result = sweep({"t": np.linspace(-1, 1, 50)}, ["fp16", "cfloat8_1_4_3"], [2, 7], ["stochastic"], seed=3, jobs=1)
    appender = CsvAppender(tmp_path / "rows.csv", COLUMNS)
    appender.append(result[:2])
    appender.append(result[2:])
    appender.close()
    assert (tmp_path / "rows.csv").read_text() == result.to_csv()
    records, valid, dropped = read_records_csv(tmp_path / "rows.csv")
    assert records == list(result) and dropped == 0 and valid == len(result.to_csv().encode())
