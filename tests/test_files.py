"""Atomic output files (fmtlab/_files.py)."""
import os
import stat

import pytest

from fmtlab._files import atomic_path, write_text


def test_write_text_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old")
    write_text(path, "a,b\n1,2\n")
    assert path.read_text() == "a,b\n1,2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_an_error_keeps_the_previous_file(tmp_path):
    path = tmp_path / "plot.png"
    path.write_bytes(b"previous")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as temporary:
            temporary.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert path.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"]


def test_outputs_get_the_mode_open_would_give(tmp_path):
    umask = os.umask(0o027)
    try:
        write_text(tmp_path / "a.txt", "x")
        (tmp_path / "b.txt").write_text("x")
    finally:
        os.umask(umask)
    mode = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o640
