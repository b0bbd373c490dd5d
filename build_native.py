"""cffi build script: compiles csrc/*.c into fmtlab._native (API mode).

The cdef is read from csrc/fmtlab.h between the CDEF markers, so the header is the
single source of truth for the C interface.  OpenMP is used when the compiler has it.

Environment switches:

* ``FMTLAB_NO_OPENMP=1``: build without OpenMP.
* ``FMTLAB_SANITIZE=1``: build the C core with AddressSanitizer and UndefinedBehaviorSanitizer
  (``-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all``, and
  ``-fno-wrapv`` so that signed overflow is reported, which Python's own ``-fwrapv`` would hide),
  ``-O1 -g``.  The object files go to build/cffi-sanitize; the library replaces
  fmtlab/_native*.so in place like the normal build (``python build_native.py`` again restores
  the normal one).  A Python host must load the ASan runtime first:
  ``LD_PRELOAD=$(cc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 python -m pytest ...``
  (.ci/run does this); any report aborts the process, so the run fails.
"""
import os
import pathlib
import subprocess
import sys
import tempfile

from cffi import FFI

ROOT = pathlib.Path(__file__).resolve().parent
CSRC = ROOT / "csrc"


def _cdef_text():
    header = (CSRC / "fmtlab.h").read_text()
    start = header.index("/* CDEF BEGIN */") + len("/* CDEF BEGIN */")
    return header[start:header.index("/* CDEF END */")]


def _compiler_has_openmp():
    if os.environ.get("FMTLAB_NO_OPENMP"):
        return False
    compiler = os.environ.get("CC", "cc")
    with tempfile.TemporaryDirectory() as tmp:
        source = pathlib.Path(tmp, "probe.c")
        source.write_text("#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n")
        try:
            result = subprocess.run([compiler, "-fopenmp", str(source), "-o", str(pathlib.Path(tmp, "probe"))],
                                    capture_output=True)
        except OSError:
            return False
        return result.returncode == 0


_openmp = _compiler_has_openmp() and sys.platform != "win32"
SANITIZE = os.environ.get("FMTLAB_SANITIZE") == "1"
SANITIZER_FLAGS = ["-fsanitize=address,undefined,float-cast-overflow", "-fno-sanitize-recover=all",
                   "-fno-omit-frame-pointer"]
_compile_args = ["-O3", "-std=c99", "-fno-math-errno"] + (["-fopenmp"] if _openmp else [])
_link_args = ["-fopenmp"] if _openmp else []
if SANITIZE:
    # later flags win: -O1 -g for usable reports, -fno-wrapv over Python's -fwrapv
    _compile_args += SANITIZER_FLAGS + ["-O1", "-g", "-fno-wrapv"]
    _link_args += SANITIZER_FLAGS



def make_builder(absolute_paths=False):
    """setuptools wants source paths relative to the project; an in-place build runs elsewhere."""
    def path_text(path):
        return str(path if absolute_paths else path.relative_to(ROOT))

    builder = FFI()
    builder.cdef(_cdef_text())
    builder.set_source(
        "fmtlab._native",
        '#include "fmtlab.h"\n',
        sources=[path_text(path) for path in sorted(CSRC.glob("*.c"))],
        include_dirs=[path_text(CSRC)],
        extra_compile_args=_compile_args,
        extra_link_args=_link_args,
        libraries=["m"],
    )
    return builder


ffibuilder = make_builder()

if __name__ == "__main__":
    # Developer shortcut: build the extension in place (python build_native.py).
    os.chdir(ROOT)
    work = ROOT / "build" / ("cffi-sanitize" if SANITIZE else "cffi")
    make_builder(absolute_paths=True).compile(tmpdir=str(work), verbose=False)
    built = sorted((work / "fmtlab").glob("_native*.so"))
    for library in built:
        destination = ROOT / "fmtlab" / library.name
        temporary = destination.with_suffix(".tmp")
        temporary.write_bytes(library.read_bytes())
        os.replace(temporary, destination)  # atomic: running processes keep the old mapping
        print(f"built {destination.relative_to(ROOT)}{' (sanitizers: ' + ', '.join(SANITIZER_FLAGS) + ')' if SANITIZE else ''}")
