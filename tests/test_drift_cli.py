"""``fmtlab drift`` end to end on tiny settings, and the run-level guarantees.

* the command writes drift.csv, summary.csv and both plots into a temporary folder, with the
  documented columns, one summary row per configuration (the FP32 baseline added);
* a run is a pure function of (task, configuration, seed): repeated runs give identical rows,
  and every configuration starts from the same weights on the same batches;
* a run that blows up is recorded as diverged, not raised;
* h100_fp8 runs (the tensor-core model is always installed);
* the printed table explains its columns; --out is checked before any work; --quiet
  prints only the final line; progress is counted in training steps.
"""
import csv
import re

import pytest

import fmtlab.drift as drift
from fmtlab.cli import main
from fmtlab.drift import configs, runner, tasks
from fmtlab.drift.summary import SUMMARY_COLUMNS


def _read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_drift_runs_end_to_end_in_a_temporary_folder(tmp_path, capsys):
    out = tmp_path / "drift"
    status = main(["drift", "--configs", "bf16_pure_sr,fp16_mixed_dynscale,cfloat8", "--steps", "6",
                   "--seeds", "2", "--eval-every", "3", "--jobs", "1", "--out", str(out)])
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
    captured = capsys.readouterr()
    printed = captured.out
    assert "delta vs fp32" in printed and "cfloat8" in printed
    # The columns are explained below the table, in words.
    assert "loss scale: the factor S the loss was multiplied by" in printed
    assert "non-finite steps: steps per run whose gradients were not all finite" in printed
    # issue 13: the run's page, report.html, is written too and named in the final line.
    assert f"written to {out}/ (drift.csv, summary.csv, loss.png, delta.png, report.html)" in printed
    assert (out / "report.html").stat().st_size > 0
    # Off a terminal, progress is plain lines counted in steps: 4 configurations x 2 seeds x 6 steps.
    progress_lines = [line for line in captured.err.splitlines() if line.startswith("drift: ")]
    assert progress_lines[0].startswith("drift: 0/48 steps (0%)")
    assert progress_lines[-1].startswith("drift: 48/48 steps (100%)")


def test_charlm_task_runs(tmp_path):
    status = main(["drift", "--task", "charlm", "--configs", "bf16_mixed", "--steps", "2", "--seeds", "1",
                   "--jobs", "1", "--out", str(tmp_path), "--no-plots", "--quiet"])
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


def test_h100_fp8_runs_with_the_tensor_core_model(tmp_path):
    status = main(["drift", "--configs", "h100_fp8", "--steps", "2", "--seeds", "1", "--jobs", "1",
                   "--out", str(tmp_path), "--no-plots", "--quiet"])
    assert status == 0
    assert _read(tmp_path / "summary.csv")[1]["diverged"] == "0"


def test_quiet_prints_only_the_final_line_and_no_progress_is_gone(tmp_path, capsys):
    status = main(["drift", "--configs", "fp32", "--steps", "2", "--seeds", "1", "--jobs", "1",
                   "--out", str(tmp_path), "--no-plots", "--quiet"])
    assert status == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(rf"digits: 2 steps, seeds 0\.\.0, \d+ s; written to {re.escape(str(tmp_path))}/ "
                        r"\(drift\.csv, summary\.csv, report\.html\)", lines[0])  # issue 13: the page too
    with pytest.raises(SystemExit) as caught:  # one flag for silence: --no-progress is gone
        main(["drift", "--no-progress"])
    assert caught.value.code == 2


def test_the_default_output_folder_follows_the_naming_scheme():
    from fmtlab.cli import build_parser

    assert build_parser(["drift"]).parse_args(["drift"]).out == "fmtlab-drift"


def test_progress_is_reported_per_training_step():
    calls = []
    runner.run_experiment("digits", ["fp32"], [0, 1], 4, 2, jobs=1, progress=lambda done, total: calls.append(done))
    assert calls == [0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 8]  # each step as it starts, then each run's end


def test_an_interrupted_experiment_keeps_the_finished_runs():
    from fmtlab._pool import Interrupted

    def progress(done, total):
        if done == 7:  # Ctrl-C in the second run's third step (5 steps per run)
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as caught:
        runner.run_experiment("digits", ["fp32", "bf16_mixed"], [0, 1], 5, 5, jobs=1, progress=progress)
    partial = caught.value.partial
    assert caught.value.planned == 4
    assert [(run.config, run.seed) for run in partial] == [("fp32", 0)]
    assert repr(partial[0].rows) == repr(runner.train("digits", "fp32", 0, 5, 5).rows)


def test_an_interrupted_parallel_experiment_stops_its_workers_and_keeps_the_finished_runs():
    from fmtlab._pool import Interrupted

    def progress(done, total):
        if done >= 2 * 30 + 1:  # two runs have finished (or one and more): interrupt
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as caught:
        runner.run_experiment("digits", ["fp32"], [0, 1, 2, 3, 4, 5], 30, 10, jobs=2, progress=progress)
    partial = caught.value.partial
    assert 1 <= len(partial) < 6 and caught.value.planned == 6
    for run in partial:
        assert repr(run.rows) == repr(runner.train("digits", "fp32", run.seed, 30, 10).rows)
