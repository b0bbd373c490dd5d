"""``fmtlab drift`` end to end on tiny settings, and the run-level guarantees.

* the command writes drift.csv, summary.csv and both plots into a temporary folder, with the
  documented columns, one summary row per configuration (the FP32 baseline added);
* a run is a pure function of (task, configuration, seed): repeated runs give identical rows,
  and every configuration starts from the same weights on the same batches;
* a run that blows up is recorded as diverged, not raised;
* h100_fp8 runs when the tensor-core model is installed, and fails clearly when it is not.
"""
import csv
import importlib.util

import pytest

import fmtlab.drift as drift
from fmtlab.cli import main
from fmtlab.drift import configs, runner, tasks
from fmtlab.drift.summary import SUMMARY_COLUMNS

HAVE_MMA = importlib.util.find_spec("fmtlab.mma") is not None


def _read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_drift_runs_end_to_end_in_a_temporary_folder(tmp_path, capsys):
    out = tmp_path / "drift"
    status = main(["drift", "--configs", "bf16_pure_sr,fp16_mixed_dynscale,cfloat8", "--steps", "6",
                   "--seeds", "2", "--eval-every", "3", "--jobs", "1", "--out", str(out), "--no-progress"])
    assert status == 0
    for name in ("drift.csv", "summary.csv", "loss.png", "delta.png"):
        assert (out / name).stat().st_size > 0
    rows = _read(out / "drift.csv")
    assert list(rows[0]) == list(runner.RUN_COLUMNS)
    assert {(r["config"], r["seed"]) for r in rows} == {(c, s) for c in ("fp32", "bf16_pure_sr",
                                                                        "fp16_mixed_dynscale", "cfloat8")
                                                        for s in ("0", "1")}
    assert len(rows) == 4 * 2 * 7  # steps 0..6
    evaluated = [r["step"] for r in rows if r["config"] == "fp32" and r["seed"] == "0" and r["eval_loss"]]
    assert evaluated == ["0", "3", "6"]
    summary = _read(out / "summary.csv")
    assert list(summary[0])[:len(SUMMARY_COLUMNS)] == list(SUMMARY_COLUMNS)
    assert [r["config"] for r in summary] == ["fp32", "bf16_pure_sr", "fp16_mixed_dynscale", "cfloat8"]
    assert float(summary[0]["delta_vs_fp32"]) == 0.0
    assert float(summary[2]["loss_scale_mean"]) == 2.0 ** 16
    printed = capsys.readouterr().out
    assert "delta vs fp32" in printed and "cfloat8" in printed


def test_charlm_task_runs(tmp_path):
    status = main(["drift", "--task", "charlm", "--configs", "bf16_mixed", "--steps", "2", "--seeds", "1",
                   "--jobs", "1", "--out", str(tmp_path), "--no-plots", "--no-progress"])
    assert status == 0
    summary = _read(tmp_path / "summary.csv")
    assert [r["config"] for r in summary] == ["fp32", "bf16_mixed"]
    assert 3.0 < float(summary[0]["final_loss_mean"]) < 5.0  # about ln(96) after two steps


def test_runs_are_deterministic_and_share_initialisation_and_data():
    first = runner.train("digits", "bf16_pure_sr", 7, 5, 5)
    second = runner.train("digits", "bf16_pure_sr", 7, 5, 5)
    assert repr(first.rows) == repr(second.rows)
    baseline = runner.train("digits", "fp32", 7, 5, 5)
    # Same weights and batches: the initial evaluation agrees up to BF16 rounding of the compute.
    assert abs(first.rows[0]["eval_loss"] - baseline.rows[0]["eval_loss"]) < 1e-2
    other_seed = runner.train("digits", "fp32", 8, 5, 5)
    assert other_seed.rows[0]["eval_loss"] != baseline.rows[0]["eval_loss"]


def test_results_do_not_depend_on_the_number_of_jobs():
    serial = runner.run_experiment("digits", ["fp32", "bf16_pure_sr"], [0], 3, 3, jobs=1)
    parallel = runner.run_experiment("digits", ["fp32", "bf16_pure_sr"], [0], 3, 3, jobs=2)
    assert repr([r.rows for r in serial]) == repr([r.rows for r in parallel])  # repr: NaN equals NaN


def test_a_blown_up_run_is_recorded_as_diverged(monkeypatch):
    monkeypatch.setattr(tasks.DigitsMLP, "learning_rate", 1e30)
    result = runner.train("digits", "fp32", 0, 20, 5)
    assert result.diverged and result.diverged_step is not None and result.diverged_step <= 20
    assert result.final_loss != result.final_loss  # NaN


def test_name_lists_match_the_registries():
    assert drift.CONFIG_NAMES == tuple(configs.CONFIGS)
    assert drift.TASK_NAMES == tasks.TASKS


def test_bad_options_are_reported_in_one_line(tmp_path, capsys):
    assert main(["drift", "--configs", "fp32,bf8", "--out", str(tmp_path)]) == 2
    assert "bf8" in capsys.readouterr().err


def test_h100_fp8_fails_clearly_without_the_tensor_core_model(tmp_path, capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "fmtlab.mma", None)  # as if fmtlab.mma were not installed
    status = main(["drift", "--configs", "h100_fp8", "--steps", "2", "--seeds", "1", "--jobs", "1",
                   "--out", str(tmp_path), "--no-plots", "--no-progress"])
    assert status == 1
    assert "h100_fp8" in capsys.readouterr().err
    assert "fmtlab.mma" in _read(tmp_path / "summary.csv")[1]["note"]


@pytest.mark.skipif(not HAVE_MMA, reason="needs fmtlab.mma (the tensor-core model)")
def test_h100_fp8_runs_with_the_tensor_core_model(tmp_path):
    status = main(["drift", "--configs", "h100_fp8", "--steps", "2", "--seeds", "1", "--jobs", "1",
                   "--out", str(tmp_path), "--no-plots", "--no-progress"])
    assert status == 0
    assert _read(tmp_path / "summary.csv")[1]["diverged"] == "0"
