"""The ``fmtlab`` command: one subcommand per job, each defined in its own module.

Each subcommand module provides ``configure(parser)`` (adds its arguments) and
``run(args) -> int`` (the exit status).  They are imported only when used, so that
``fmtlab formats`` does not pay for torch.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
SUBCOMMANDS = {
    "formats": ("fmtlab._cli_formats", "list the format presets and their limits"),
    "sweep": ("fmtlab._cli_sweep", "precision sweep of tensors over formats, biases and roundings"),
    "sweep-mma": ("fmtlab._cli_sweep", "error of emulated tensor-core matmuls as K grows"),
    "mma": ("fmtlab._cli_mma", "list the tensor-core models, or check them against measured GPU data"),
    "drift": ("fmtlab.drift.cli", "training-loss drift of emulated formats against an FP32 baseline"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fmtlab", description="number-format precision laboratory")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        subparser.set_defaults(_module=module_name)
        module = _import_subcommand(module_name)
        if module is not None:
            module.configure(subparser) if name != "sweep-mma" else module.configure_mma(subparser)
        if name == "sweep-mma":
            subparser.set_defaults(_entry="run_mma")
    return parser


def _import_subcommand(module_name):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and error.name.startswith("fmtlab"):
            return None  # that part of fmtlab is not built yet
        raise


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    module = _import_subcommand(args._module)
    if module is None:
        parser.error(f"subcommand {args.command!r} is not available in this build")
    entry = getattr(module, getattr(args, "_entry", "run"))
    try:
        return int(entry(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, FileNotFoundError, OSError) as error:
        # Bad input is reported as one line, not a traceback.
        print(f"fmtlab {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
