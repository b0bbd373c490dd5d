"""A stopped run still gets its page: report.html of the finished work, marked partial.

Ctrl-C is simulated in this process: the task function of the pool raises KeyboardInterrupt
on its n-th call (run inline, the pool turns it into ``fmtlab._pool.Interrupted``, as a real
Ctrl-C between tasks; tests/test_interrupts.py sends real signals to the real command).  The
page must show exactly the groups (runs) that finished, say at its top that the run is
partial and list exactly the missing ones (counted here from the planned grid and the CSV);
``fmtlab report DIR`` keeps the mark, and a resumed run that finishes removes it.
"""
import csv
import importlib
import json

import numpy as np

from chromium import parse
from fmtlab.cli import main
from fmtlab.report import PARTIAL_FILE, REPORT_FILE

FORMATS = ("bf16", "e4m3fn")


def _interrupt_on_call(monkeypatch, module, name, call):
    real = getattr(module, name)
    calls = []

    def stopping(*args, **kwargs):
        calls.append(None)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, stopping)


def _partial_box(markup):
    dom = parse(markup)
    boxes = list(dom.find_all("section", id="partial"))
    if not boxes:
        return None
    return boxes[0].all_text(), [item.all_text() for item in boxes[0].find_all("li")]


def _csv_groups(path):
    with open(path, newline="") as handle:
        return {(row["tensor"], row["format"], row["rounding"]) for row in csv.DictReader(handle)}


def _heatmap_groups(markup):
    dom = parse(markup)
    columns = {header.attributes["data-c"]: (header.attributes["data-format"], header.attributes["data-rounding"])
               for header in dom.find_all("th", class_="column")}
    return {(row.attributes["data-tensor"],) + columns[cell.attributes["data-c"]]
            for row in dom.find_all("tr", class_="tensor-row") for cell in row.find_all("td", class_="cell")}


def test_a_stopped_sweep_writes_its_page_marked_partial(tmp_path, monkeypatch, capsys):
    sweep_module = importlib.import_module("fmtlab.sweep")  # the module (fmtlab.sweep is also the function)
    source = tmp_path / "model.npz"
    rng = np.random.default_rng(5)
    tensors = {f"layers.{index}.weight": rng.standard_normal((4, 8)).astype(np.float32) for index in range(4)}
    np.savez(source, **tensors)
    out = tmp_path / "run"
    argv = ["sweep", "--input", str(source), "--formats", ",".join(FORMATS), "--rounding", "nearest_even", "--jobs",
            "1", "--out", str(out), "--quiet", "--no-plots"]
    # 8 groups of one evaluation each; a task takes one tensor's groups (fmtlab._sweep_tasks: tensors
    # this small are one task each, inline): stopped at the third task, two tensors' groups finished
    _interrupt_on_call(monkeypatch, sweep_module, "evaluate_piece", 3)
    assert main(argv) == 130
    assert "interrupted: 4 of 8 results finished" in capsys.readouterr().err
    finished = _csv_groups(out / "sweep.csv")
    planned = {(name, spec, "nearest_even") for name in tensors for spec in FORMATS}
    assert len(finished) == 4 and finished < planned
    markup = (out / REPORT_FILE).read_text()
    assert _heatmap_groups(markup) == finished
    text, missing = _partial_box(markup)
    assert ("Partial results: this run was stopped (interrupted (Ctrl-C)) when 4 of 8 (tensor, format, rounding) "
            "groups had finished") in text
    assert sorted(missing) == sorted(" · ".join(group) for group in planned - finished)
    assert "(partial)" in next(parse(markup).find_all("h1")).all_text()
    # the rebuilt page keeps the mark; the detail of a finished tensor is there
    (out / REPORT_FILE).unlink()
    assert main(["report", str(out)]) == 0
    assert _partial_box((out / REPORT_FILE).read_text())[1] == missing
    # resumed to the end: the mark goes, the page is whole
    monkeypatch.undo()
    assert main(argv + ["--resume"]) == 0
    assert not (out / PARTIAL_FILE).exists()
    markup = (out / REPORT_FILE).read_text()
    assert _partial_box(markup) is None and _heatmap_groups(markup) == planned


def test_a_sweep_stopped_before_any_group_finished_leaves_no_stale_page(tmp_path, monkeypatch):
    sweep_module = importlib.import_module("fmtlab.sweep")
    out = tmp_path / "run"
    argv = ["sweep", "--dist", "normal", "--size", "64", "--formats", "bf16", "--rounding", "nearest_even", "--jobs",
            "1", "--out", str(out), "--quiet", "--no-plots"]
    assert main(argv) == 0 and (out / REPORT_FILE).exists()
    _interrupt_on_call(monkeypatch, sweep_module, "evaluate_piece", 1)
    assert main(argv) == 130
    assert not (out / REPORT_FILE).exists()  # the earlier run's page is not left to describe this one


def test_a_stopped_drift_run_writes_its_page_marked_partial(tmp_path, monkeypatch, capsys):
    runner = importlib.import_module("fmtlab.drift.runner")
    out = tmp_path / "drift"
    _interrupt_on_call(monkeypatch, runner, "train", 3)
    assert main(["drift", "--configs", "bf16_pure_sr", "--steps", "2", "--seeds", "2", "--eval-every", "1",
                 "--jobs", "1", "--out", str(out), "--quiet", "--no-plots"]) == 130
    assert "interrupted: 2 of 4 runs finished" in capsys.readouterr().err
    with open(out / "drift.csv", newline="") as handle:
        finished = {(row["config"], f"seed {row['seed']}") for row in csv.DictReader(handle)}
    planned = {(config, f"seed {seed}") for config in ("fp32", "bf16_pure_sr") for seed in (0, 1)}
    assert len(finished) == 2
    text, missing = _partial_box((out / REPORT_FILE).read_text())
    assert "when 2 of 4 runs had finished" in text
    assert sorted(missing) == sorted(" · ".join(run) for run in planned - finished)
    assert json.loads((out / PARTIAL_FILE).read_text())["planned"] == 4


def test_a_sweep_stopped_in_its_scan_pass_says_so_and_writes_no_page(tmp_path, monkeypatch, capsys):
    """Ctrl-C while the first pass (each tensor's amax and histogram) reads a file: no result
    exists yet, so one line says so, no page is written, and there is no traceback."""
    sweep_module = importlib.import_module("fmtlab.sweep")
    source = tmp_path / "model.npz"
    np.savez(source, **{f"layers.{index}.weight": np.ones((4, 8), np.float32) for index in range(3)})
    out = tmp_path / "run"
    _interrupt_on_call(monkeypatch, sweep_module, "scan_piece", 2)
    argv = ["sweep", "--input", str(source), "--formats", "bf16", "--jobs", "1", "--out", str(out), "--quiet",
            "--no-plots"]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.strip() == (f"fmtlab sweep: interrupted: it stopped in the scan pass, before any result "
                           f"({out / 'sweep.csv'} holds no row)")
    assert not (out / REPORT_FILE).exists() and len((out / "sweep.csv").read_text().splitlines()) == 1  # the header
