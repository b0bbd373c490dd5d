"""The public API is small and declared: every public module has an ``__all__`` of names that
exist, none of them a module or a private name, and a star import brings nothing else."""
import importlib
import types

import pytest

PUBLIC_MODULES = ["fmtlab", "fmtlab.formats", "fmtlab.codec", "fmtlab.mma", "fmtlab.mma_validation", "fmtlab.sweep",
                  "fmtlab.sweep_mma", "fmtlab.metrics", "fmtlab.torch", "fmtlab.drift", "fmtlab.plots", "fmtlab.cli"]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_module_declares_its_names(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    for exported in module.__all__:
        assert not exported.startswith("_") or exported == "__version__", f"{name} exports private {exported}"
        assert hasattr(module, exported), f"{name}.__all__ names {exported}, which does not exist"
        assert not isinstance(getattr(module, exported), types.ModuleType), f"{name} exports the module {exported}"


def test_star_import_of_fmtlab_torch_leaks_nothing():
    pytest.importorskip("torch")
    namespace = {}
    exec("from fmtlab.torch import *", namespace)
    leaked = {"np", "torch", "nn", "F", "math", "numbers", "dataclasses", "functools"} & set(namespace)
    assert not leaked


def test_the_package_exports_the_functions_not_the_submodules():
    import fmtlab as fl
    assert callable(fl.sweep) and callable(fl.sweep_mma) and callable(fl.format)
    assert {"encode", "decode", "quantize", "matmul", "mma_model", "Format", "sweep", "sweep_mma"} <= set(fl.__all__)
