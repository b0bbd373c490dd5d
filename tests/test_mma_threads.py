"""The fast matmul kernel gives the same bits whatever the thread count and the SIMD copy.

Every output is computed by one thread from start to end, and the AVX2 / AVX-512 copies of the
fast path do lane for lane what the SSE2 one does (docs/tensor-cores.md §8), so neither the
number of threads nor the instruction set may change a bit.  FMTLAB_MMA_SIMD=sse2|avx2 makes the
kernel use a narrower copy than the CPU offers; on a CPU without AVX2 all three runs below use
SSE2 and agree trivially.
"""
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

import fmtlab as fl

FAST = ["h100-fp16-fp32", "h100-e4m3fn-fp32", "h100-bf16-fp32", "a100-tf32-fp32", "b200-e5m2-fp32",
        "ada-e4m3fn-fp16", "v100-fp16-fp16", "h100-e4m3fn-fp16"]


def _operands(model, m=96, k=200, n=80, seed=11):
    rng = np.random.default_rng(seed)
    a = fl.quantize((rng.standard_normal((m, k)) * 2.0 ** rng.integers(-6, 6, (m, 1))).astype(np.float32),
                    model.a_format)
    b = fl.quantize(rng.standard_normal((k, n)).astype(np.float32), model.b_format)
    c = fl.quantize(rng.standard_normal((m, n)).astype(np.float32), model.c_format)
    b[5, :] = 0.0  # lanes with a zero product, and
    a[7, :40] = 0.0  # a row whose first blocks have no nonzero term
    return a, b, c


@pytest.mark.parametrize("name", FAST)
def test_one_and_two_threads_give_the_same_bits(name):
    model = fl.mma_model(name)
    a, b, c = _operands(model)  # 96 x 200 x 80: above the kernel's threshold for going parallel
    previous = fl.get_threads()
    try:
        fl.set_threads(1)
        one = fl.matmul(a, b, c, model=model)
        fl.set_threads(2)
        two = fl.matmul(a, b, c, model=model)
    finally:
        fl.set_threads(previous)
    assert np.array_equal(one.view(np.uint32), two.view(np.uint32))


_DIGEST_SCRIPT = """
import hashlib, sys
import numpy as np
sys.path.insert(0, {tests!r})
import fmtlab as fl
from test_mma_threads import FAST, _operands
digests = []
for name in FAST:
    model = fl.mma_model(name)
    a, b, c = _operands(model)
    digests.append(hashlib.sha256(fl.matmul(a, b, c, model=model).tobytes()).hexdigest())
print(" ".join(digests))
"""


def test_every_simd_copy_gives_the_same_bits():
    tests = os.path.dirname(os.path.abspath(__file__))
    outputs = []
    for simd in ("sse2", "avx2", "native", "portable"):
        # FMTLAB_SIMD=portable (the codec's switch) selects the SSE2 kernels of the matmul too
        environment = dict(os.environ, FMTLAB_MMA_SIMD=simd) if simd != "portable" else \
            dict(os.environ, FMTLAB_SIMD="portable")
        result = subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT.format(tests=tests)], capture_output=True,
                                text=True, env=environment, timeout=300)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.split())
    assert len(outputs[0]) == len(FAST) and outputs[0] == outputs[1] == outputs[2] == outputs[3]
    # and the same bits as in this process
    here = []
    for name in FAST:
        model = fl.mma_model(name)
        a, b, c = _operands(model)
        here.append(hashlib.sha256(fl.matmul(a, b, c, model=model).tobytes()).hexdigest())
    assert outputs[2] == here
