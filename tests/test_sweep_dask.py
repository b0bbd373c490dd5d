"""Sweeps on Dask: a real LocalCluster (scheduler and worker processes) gives the inline results bit for bit.

File tensors travel to the workers as (path, offset, dtype, shape, rows): a task's arguments hold
no tensor data, so none passes through the scheduler; each worker reads its own rows.
"""
import csv
import io
import pickle

import numpy as np
import pytest

from fmtlab import cli
from fmtlab._inputs import tensor_sources
from fmtlab.sweep import sweep

distributed = pytest.importorskip("distributed", reason="dask[distributed] is a dependency of fmtlab")

ARGUMENTS = dict(formats=["bf16", "cfloat8_1_4_3", "fp16"], biases=[4, 8, 11], roundings=["nearest_even", "stochastic"],
                 seed=7)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("checkpoint")
    rng = np.random.default_rng(5)
    np.save(directory / "embed.npy", rng.standard_normal((400, 64)).astype(np.float32))
    np.save(directory / "head.npy", (rng.laplace(0, 1e-3, (128, 33))).astype(np.float32))
    return directory


def test_a_local_cluster_gives_the_inline_results_bit_for_bit(client, inputs):
    inline = sweep(inputs, jobs=1, **ARGUMENTS)
    on_dask = sweep(inputs, executor=client, chunk=3000, **ARGUMENTS)
    assert on_dask.to_csv() == inline.to_csv()
    assert sweep(inputs, executor=client.get_executor(), chunk=64 * 17, **ARGUMENTS).to_csv() == inline.to_csv()


def test_in_memory_arrays_on_dask(client):
    data = {"x": np.random.default_rng(1).standard_normal(6000).astype(np.float32)}
    assert sweep(data, executor=client, chunk=1000, **ARGUMENTS) == sweep(data, jobs=1, **ARGUMENTS)


def test_file_pieces_carry_no_tensor_data(inputs):
    for source in tensor_sources(inputs):
        piece = source.piece(0, source.rows)
        assert piece.data is None and len(pickle.dumps(piece)) < 1000 < source.nbytes


def test_the_command_line_runs_on_a_local_cluster(inputs, tmp_path):
    common = ["sweep", "--input", str(inputs), "--formats", "bf16,cfloat8_1_4_3", "--bias", "3,9",
              "--rounding", "stochastic", "--no-plots", "--quiet", "--chunk", "5000"]
    assert cli.main([*common, "--jobs", "1", "--out", str(tmp_path / "inline")]) == 0
    assert cli.main([*common, "--dask", "local", "--jobs", "2", "--out", str(tmp_path / "dask")]) == 0
    inline = (tmp_path / "inline" / "sweep.csv").read_text()
    assert (tmp_path / "dask" / "sweep.csv").read_text() == inline
    assert len(list(csv.DictReader(io.StringIO(inline)))) > 0


def test_a_scheduler_that_is_not_there_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(["sweep", "--size", "100", "--dask", "tcp://127.0.0.1:1", "--quiet", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fmtlab sweep: error: --dask 'tcp://127.0.0.1:1': no Dask scheduler answers there")
    assert err.count("\n") == 1


def test_a_killed_dask_worker_has_its_tasks_rerun_and_the_result_is_unchanged(client, inputs):
    """Dask reruns the tasks of a worker that dies (SIGKILL) on another one: the sweep still
    completes, with the inline results."""
    import os
    import signal
    import threading

    inline = sweep(inputs, jobs=1, **ARGUMENTS)
    pids = sorted(client.run(os.getpid).values())
    killer = threading.Timer(1.5, lambda: os.kill(pids[0], signal.SIGKILL))
    killer.start()
    try:
        result = sweep(inputs, executor=client, chunk=640, **ARGUMENTS)
    finally:
        killer.cancel()
    assert result.to_csv() == inline.to_csv()
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it, for the tests after this one


def test_ctrl_c_on_a_local_cluster_exits_130_with_one_clean_line_and_resumes(tmp_path):
    import os
    import pathlib
    import signal
    import subprocess
    import sys
    import threading
    import time

    root = pathlib.Path(__file__).resolve().parents[1]
    rng = np.random.default_rng(6)
    (tmp_path / "big").mkdir()
    for index in range(8):  # a run of about 20 s on two cores, to stop in the middle
        np.save(tmp_path / "big" / f"layer{index}.npy", rng.standard_normal((300, 1000)).astype(np.float32))
    common = ["sweep", "--input", str(tmp_path / "big"), "--formats", "bf16,cfloat8_1_4_3,cfloat8_1_5_2", "--bias", "all",
              "--rounding", "nearest_even,stochastic", "--no-plots", "--chunk", "10000"]
    out = tmp_path / "stopped"
    process = subprocess.Popen([sys.executable, "-m", "fmtlab", *common, "--dask", "local", "--jobs", "2",
                                "--out", str(out)], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, start_new_session=True, env={**os.environ, "PYTHONPATH": str(root)})
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    # The first pass (amax) is over when its progress reaches 100%: the evaluation is running.
    while not any("100%" in line for line in lines) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    time.sleep(1)
    assert process.poll() is None, lines
    os.killpg(process.pid, signal.SIGINT)
    stopped_at = time.monotonic()
    process.wait(timeout=60)
    reader.join(10)
    err = "".join(lines)
    assert process.returncode == 130, err
    assert time.monotonic() - stopped_at < 15
    lines = err.strip().splitlines()
    assert lines[-1].startswith("fmtlab sweep: interrupted: ") and lines[-1].endswith(f"written to {out}/"), err
    assert "Traceback" not in err and "WARNING" not in err and "Error" not in err, err
    assert cli.main([*common, "--jobs", "1", "--out", str(out), "--resume", "--quiet"]) == 0
    assert cli.main([*common, "--jobs", "1", "--out", str(tmp_path / "whole"), "--quiet"]) == 0
    assert (out / "sweep.csv").read_text() == (tmp_path / "whole" / "sweep.csv").read_text()


def test_the_drift_grid_runs_on_the_same_engine(client):
    """fmtlab drift's (configuration, seed) runs through the one pool helper on a Dask cluster:
    the same losses, bit for bit, as inline."""
    from fmtlab.drift.runner import run_experiment

    arguments = ("digits", ["fp32", "bf16_pure_sr"], [0, 1], 6, 3)
    inline = run_experiment(*arguments, jobs=1)
    on_dask = run_experiment(*arguments, executor=client)
    # repr: the rows hold NaN (no loss at step 0), which == would call unequal
    assert repr([(r.config, r.seed, r.rows, r.final_loss) for r in on_dask]) == \
        repr([(r.config, r.seed, r.rows, r.final_loss) for r in inline])


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_command_line_runs_on_a_tcp_scheduler_started_by_hand(inputs, tmp_path):
    """`dask scheduler` and `dask worker` as processes on localhost (free ports), then
    `fmtlab sweep --dask tcp://127.0.0.1:PORT`: the CSV of the inline run, byte for byte.  Both
    processes are stopped at the end, whatever happened (their whole process groups)."""
    import os
    import pathlib
    import signal
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    environment = {**os.environ, "PYTHONPATH": str(root), "DASK_LOGGING__DISTRIBUTED": "error"}
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    started = []

    def start(*arguments):
        started.append(subprocess.Popen([sys.executable, "-m", "dask", *arguments], cwd=tmp_path, env=environment,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))

    common = ["sweep", "--input", str(inputs), "--formats", "bf16,cfloat8_1_4_3,mxfp8_e4m3,nvfp4", "--bias", "3,9",
              "--rounding", "nearest_even,stochastic", "--no-plots", "--quiet", "--chunk", "5000"]
    try:
        start("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
        start("worker", address, "--nthreads", "1", "--nworkers", "1", "--no-nanny", "--no-dashboard")
        with distributed.Client(address, timeout=30) as probe:   # the scheduler answers ...
            probe.wait_for_workers(1, timeout=30)               # ... and has its worker
            worker_pids = list(probe.run(os.getpid).values())
        assert cli.main([*common, "--dask", address, "--out", str(tmp_path / "tcp")]) == 0
        assert cli.main([*common, "--jobs", "1", "--out", str(tmp_path / "inline")]) == 0
        assert (tmp_path / "tcp" / "sweep.csv").read_text() == (tmp_path / "inline" / "sweep.csv").read_text()
        assert worker_pids == [started[1].pid]      # the scheduler's one worker is the process started here
    finally:
        for process in reversed(started):
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)
    assert all(process.poll() is not None for process in started)


def test_the_documented_slurm_cluster_asks_for_single_threaded_workers():
    """docs/sweep.md's SLURMCluster arguments, as dask-jobqueue turns them into a Slurm job script
    (no Slurm needed to write it): one task of 8 CPUs per job, the partition, the walltime, and
    8 worker processes of one thread each (the sweep's tasks run the C loops on one thread)."""
    jobqueue = pytest.importorskip("dask_jobqueue", reason="dask-jobqueue is not installed (pip install dask-jobqueue)")
    with jobqueue.SLURMCluster(cores=8, processes=8, memory="16GB", walltime="02:00:00",
                               job_extra_directives=["--partition=cpu"]) as cluster:
        script = cluster.job_script()
    for line in ("#SBATCH -n 1", "#SBATCH --cpus-per-task=8", "#SBATCH -t 02:00:00", "#SBATCH --partition=cpu"):
        assert line in script.splitlines(), script
    worker = script.strip().splitlines()[-1]
    assert "dask_worker" in worker and "--nthreads 1" in worker and "--nworkers 8" in worker, worker
