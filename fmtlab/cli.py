"""The ``fmtlab`` command: one subcommand per job, each defined in its own module.

Each subcommand module provides ``configure(parser)`` (adds its arguments) and
``run(args) -> int`` (the exit status).  :func:`main` imports only the module of the
subcommand it runs (``fmtlab --help`` imports none), so a subcommand's cost is paid only
when it is used; :func:`build_parser` without ``argv`` configures every subcommand, so
those modules must stay cheap to import (no torch at module level: heavy imports go
inside ``run``).

Errors are one line on stderr, never a traceback, with these exit statuses:

* 2: bad input, ``fmtlab CMD: error: ...`` (a ValueError, TypeError or OSError from
  ``run``; argparse's own usage errors also exit 2), and ``out of memory: ...``;
* 1: a worker process died (``fmtlab._pool.WorkerDied``) or another failure whose
  message is one line (a RuntimeError; one with a longer message is a bug and shows its
  traceback);
* 130: Ctrl-C, after the subcommand has kept what it had finished;
* 141: the reader of stdout went away (``fmtlab mma list | head``), silently.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from . import __version__

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

# name -> (module, one-line help)
SUBCOMMANDS = {
    "formats": ("fmtlab._cli_formats", "list the format presets and their limits"),
    "sweep": ("fmtlab._cli_sweep", "precision sweep of tensors over formats, biases and roundings"),
    "sweep-mma": ("fmtlab._cli_sweep_mma", "error of emulated tensor-core matmuls as K grows"),
    "mma": ("fmtlab._cli_mma", "list the tensor-core models, or check them against measured GPU data"),
    "drift": ("fmtlab.drift.cli", "training-loss drift of emulated formats against an FP32 baseline"),
    "report": ("fmtlab._cli_report", "rebuild report.html, the page of a finished run, from its output folder"),
}


def _command_in(argv) -> str | None:
    """The subcommand ``argv`` names: its first word that is not an option (the top-level
    parser has only the options --help and --version, neither of which takes a value)."""
    for word in argv:
        if not word.startswith("-"):
            return word
    return None


def build_parser(argv=None) -> argparse.ArgumentParser:
    """The parser of ``fmtlab``.  With ``argv``, only the subcommand it names is configured
    (the others are listed with their help but their modules are not imported)."""
    parser = argparse.ArgumentParser(prog="fmtlab", description="number-format precision laboratory")
    parser.add_argument("--version", action="version", version=f"fmtlab {__version__}",
                        help="print fmtlab's version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = None if argv is None else _command_in(argv)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        subparser.set_defaults(_module=module_name)
        if argv is None or name == wanted:
            importlib.import_module(module_name).configure(subparser)
    return parser


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it: poll() reports POLLERR on the
    write end of such a pipe (Linux, macOS); a terminal or a file never does."""
    try:
        import select
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _fd, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll() (Windows), or stdout is not a file
        return True


def _one_line(text: str) -> bool:
    return bool(text) and "\n" not in text.strip()


def main(argv=None) -> int:
    """Run ``fmtlab`` with ``argv`` (default: the process's arguments); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    module = importlib.import_module(args._module)
    args._argv = argv  # the command line as given, for the run's provenance
    prefix = f"fmtlab {args.command}"
    try:
        status = int(module.run(args) or 0)
        sys.stdout.flush()  # here, so that a closed pipe is reported below and not at exit
        return status
    except KeyboardInterrupt as interrupt:
        # The subcommand has already written what finished; the pool's Interrupted says how
        # much ("interrupted: 3 of 10 tasks had finished"), a bare Ctrl-C says nothing.
        text = " ".join(str(interrupt).split())
        if not text.startswith("interrupted"):
            text = "interrupted" + (f": {text}" if text else "")
        print(f"{prefix}: {text}", file=sys.stderr)
        return 130
    except MemoryError as error:
        # numpy's "Unable to allocate 7.45 TiB for an array with shape ..." says what did not fit.
        print(f"{prefix}: error: out of memory: {str(error).strip() or type(error).__name__}", file=sys.stderr)
        return 2
    except BrokenPipeError as error:
        # The reader of stdout went away (fmtlab mma list | head): nothing to report.  Any
        # other broken pipe (to a process of fmtlab's own) is an error like any OSError.
        if not _stdout_reader_gone():
            print(f"{prefix}: error: {' '.join(str(error).split())}", file=sys.stderr)
            return 2
        # stdout goes to /dev/null so that the interpreter's last flush does not fail again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is not a file (captured, replaced): nothing to flush
            pass
        return 141  # 128 + SIGPIPE, what a shell shows for a program stopped by the closed pipe
    except (ValueError, TypeError, OSError) as error:
        # Bad input is reported as one line, not a traceback.
        print(f"{prefix}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        # A dead worker or a failure that explains itself in a line; anything longer is a bug
        # whose traceback the user (and the bug report) needs.
        if not _one_line(str(error)):
            from ._pool import WorkerDied  # only here: the pool is not needed to report other errors

            if not isinstance(error, WorkerDied):
                raise
        print(f"{prefix}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
