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
