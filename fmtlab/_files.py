"""Writing output files atomically: a reader (or a Ctrl-C) never sees half a file.

Each output is written to a temporary file in the same directory and moved over the
destination with ``os.replace``, which is atomic on POSIX and Windows.
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile

__all__ = ["atomic_path", "write_text", "output_directory"]


def _current_umask() -> int:
    umask = os.umask(0)  # the only way to read it: set, then put it back at once
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

        with atomic_path(out / "plot.png") as temporary:
            figure.savefig(temporary)
    """
    path = pathlib.Path(path)
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix + ".tmp", dir=path.parent)
    os.close(descriptor)
    temporary = pathlib.Path(name)
    # mkstemp creates the file 0600; an output file gets the mode open() would give it.
    os.chmod(temporary, 0o666 & ~_current_umask())
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def write_text(path, text: str) -> pathlib.Path:
    """Write ``text`` to ``path`` atomically (see the module docstring); return the path."""
    path = pathlib.Path(path)
    with atomic_path(path) as temporary:
        temporary.write_text(text, newline="")
    return path


def output_directory(path, argument: str = "--out") -> pathlib.Path:
    """``path`` as a directory that exists and can be written, created if need be.

    Called before any work, so that a bad ``--out`` fails at once rather than after the
    computation: an existing file, or a directory that cannot be created or written, is a
    ValueError naming ``argument``.
    """
    path = pathlib.Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{argument} {str(path)!r} is an existing file, not a directory; "
                         "give a directory to write the outputs into (it is created if need be)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"{argument} {str(path)!r} cannot be created: {error.strerror or error}") from None
    try:  # the one sure test of writability (os.access says yes to root on a read-only mount)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise ValueError(f"{argument} {str(path)!r} is not writable: {error.strerror or error}") from None
    return path
