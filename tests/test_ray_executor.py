"""Ray as a sweep executor (fmtlab.ray_executor.RayExecutor) on a real local Ray instance.

Ray is in the test extra, so these tests run in CI (a missing Ray fails them: no skip).
The records of a sweep run as Ray tasks must be those of the inline run bit for bit, for file
and in-memory tensors cut into pieces, element and scaled formats, nearest and stochastic; a
lost Ray worker must reach the sweep's engine as a BrokenExecutor (then WorkerDied).
"""
import concurrent.futures
import os

import numpy as np
import pytest

import ray  # in the test extra: a missing Ray fails these tests instead of skipping them

import fmtlab as fl  # noqa: E402
from fmtlab.ray_executor import RayExecutor  # noqa: E402


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """A local Ray instance of two worker CPUs, shut down at the end (also on failure)."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             _temp_dir=str(tmp_path_factory.mktemp("ray")))
    try:
        yield ray
    finally:
        ray.shutdown()


def test_a_sweep_on_ray_equals_the_inline_run_bit_for_bit(local_ray, tmp_path):
    rng = np.random.default_rng(3)
    matrix = (rng.standard_normal((256, 48)) * np.exp(rng.uniform(-4, 4, (256, 48)))).astype(np.float32)
    matrix[10, 3] = np.nan
    np.save(tmp_path / "w.npy", matrix)
    tensors = {"memory": rng.laplace(0, 0.1, (90, 20)).astype(np.float32)}
    arguments = dict(formats=["bf16", "cfloat8_1_4_3", "mxfp8_e4m3", "nvfp4", "fp8_block128x128"], biases=[5, 9],
                     roundings=["nearest_even", "stochastic"], seed=4, chunk=48 * 40, on_note=lambda line: None)
    for source in (tmp_path / "w.npy", tensors):
        inline = fl.sweep(source, jobs=1, **arguments)
        with RayExecutor() as executor:
            on_ray = fl.sweep(source, executor=executor, **arguments)
        assert on_ray.to_csv() == inline.to_csv()
        assert list(on_ray) == list(inline)


def test_a_lost_ray_worker_is_a_broken_executor(local_ray):
    with RayExecutor(max_retries=0) as executor:
        assert executor.submit(divmod, 17, 5).result(timeout=120) == (3, 2)
        with pytest.raises(ZeroDivisionError):                  # the task's own error, as raised
            executor.submit(divmod, 1, 0).result(timeout=120)
        lost = executor.submit(os._exit, 3)                      # the worker process dies
        with pytest.raises(concurrent.futures.BrokenExecutor, match="a Ray worker was lost: WorkerCrashedError"):
            lost.result(timeout=120)
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(divmod, 1, 1)
