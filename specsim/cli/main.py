"""Entry point of the ``specsim`` command.

Each subcommand lives in its own module of :mod:`specsim.cli` and exposes ``register(subparsers)``
(adds its parser and sets ``func``). Subcommands import heavy libraries (torch, transformers)
lazily inside ``func`` so that ``specsim --help`` and the hardware-side commands start fast.
"""

from __future__ import annotations

import argparse
import os
import sys

from specsim._version import __version__
from specsim.cli import formats_cmd, gemm_cmd, methods_cmd, plot_cmd, run_cmd, serving_cmd, sweep_cmd, trace_cmd
from specsim.errors import USER_ERROR_EXIT_CODE, SpecsimError, cut

INTERNAL_ERROR_EXIT_CODE = 70  #: EX_SOFTWARE: specsim itself failed


class _Parser(argparse.ArgumentParser):
    """argparse parser whose usage errors exit with the project's user-error code (2)."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        self.exit(USER_ERROR_EXIT_CODE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="specsim",
        description=(
            "Cycle-level simulator of SPEQ self-speculative decoding (4-bit drafts from the top bits "
            "of the target's own FP16 weights) on a reconfigurable PE array, with FP16, OliVe, Tender, "
            "ML-SpecQD and SpecMQuant baselines."
        ),
    )
    parser.add_argument("--version", action="version", version=f"specsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    formats_cmd.register(sub)
    trace_cmd.register(sub)
    gemm_cmd.register(sub)
    run_cmd.register(sub)
    sweep_cmd.register(sub)
    serving_cmd.register(sub)
    plot_cmd.register(sub)
    methods_cmd.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error (one line, exit code 2)
        return done.code if isinstance(done.code, int) else USER_ERROR_EXIT_CODE
    try:
        return int(args.func(args) or 0)
    except SpecsimError as err:
        print(f"specsim: error: {err}", file=sys.stderr)
        return USER_ERROR_EXIT_CODE
    except KeyboardInterrupt:
        print("specsim: interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RecursionError) as err:  # an input too large or nested too deep for a check
        if os.environ.get("SPECSIM_DEBUG"):
            raise
        print(
            f"specsim: error: the input is too large or nested too deeply to process ({type(err).__name__})",
            file=sys.stderr,
        )
        return USER_ERROR_EXIT_CODE
    except Exception as err:  # a bug: one line, not a traceback (SPECSIM_DEBUG=1 shows it)
        if os.environ.get("SPECSIM_DEBUG"):
            raise
        print(
            f"specsim: internal error: {type(err).__name__}: {cut(str(err), 200)} (a bug in specsim; rerun "
            "with SPECSIM_DEBUG=1 for the traceback and report it)",
            file=sys.stderr,
        )
        return INTERNAL_ERROR_EXIT_CODE


if __name__ == "__main__":
    sys.exit(main())
