"""Import the compiled C core, or fail with a message that says how to build it."""
try:
    from ._native import ffi, lib  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "fmtlab's compiled extension (fmtlab._native) is missing or does not load: "
        f"{error}. Build it with `pip install .` (or `pip install -e .` in a checkout; "
        "a C compiler and cffi are needed), or for a checkout `python build_native.py`."
    ) from error
