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
    "sweep-mma": ("fmtlab._cli_sweep_mma", "error of emulated tensor-core matmuls as K grows"),
    "mma": ("fmtlab._cli_mma", "list the tensor-core models, or check them against measured GPU data"),
    "drift": ("fmtlab.drift.cli", "training-loss drift of emulated formats against an FP32 baseline"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fmtlab", description="number-format precision laboratory")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        subparser.set_defaults(_module=module_name)
        importlib.import_module(module_name).configure(subparser)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, FileNotFoundError, OSError) as error:
        # Bad input is reported as one line, not a traceback.
        print(f"fmtlab {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
